// One sentinelagent per data directory (issue 7): a second agent on the same
// event store would run every rule twice and deliver every alert twice. The
// lock is an flock(2) on `<data dir>/sentinelagent.lock`, which the kernel
// releases whenever the holder dies (even by SIGKILL), so a stale file never
// blocks a restart; the file holds the holder's pid for the error message.
#pragma once

#include <string>

#include "sentinel/base/files.h"
#include "sentinel/base/status.h"

namespace sentinel::agent {

class InstanceLock {
 public:
  // Creates the directory of `database_path` (0750) when missing, then takes
  // the lock. FailedPrecondition naming the running agent's pid and the lock
  // file when another process holds it; PermissionDenied/Internal when the
  // file cannot be created; a refusal (IsRefusedPath, base/files.h) when a
  // symbolic link, a hard-linked file or a non-regular file is in its place.
  static Result<InstanceLock> Acquire(const std::string& database_path);

  InstanceLock(InstanceLock&& other) noexcept = default;
  InstanceLock& operator=(InstanceLock&&) = delete;
  InstanceLock(const InstanceLock&) = delete;
  ~InstanceLock() = default;  // closing the file releases the lock

  const std::string& path() const { return path_; }

 private:
  InstanceLock(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

}  // namespace sentinel::agent
