#include "sentinelagent/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sentinel/base/files.h"

namespace sentinel::agent {

Result<InstanceLock> InstanceLock::Acquire(const std::string& database_path) {
  std::filesystem::path dir = std::filesystem::path(database_path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return PermissionDeniedError("cannot create data directory " + dir.string() + ": " + ec.message());
    RETURN_IF_ERROR(ChmodNoFollow(dir.string(), S_IFDIR, 0750));
  }
  // The data directory may belong to the service user: the lock file is
  // never opened through a link or a second hard link (it is truncated and
  // written below), see base/files.h.
  const std::string path = (dir / "sentinelagent.lock").string();
  auto opened = OpenRegularNoFollow(path, O_RDWR | O_CREAT, 0640);
  if (!opened.ok()) {
    if (IsRefusedPath(opened.status())) return opened.status();
    std::string msg = "cannot open lock file " + path + ": " + opened.status().message();
    return opened.status().code() == StatusCode::kPermissionDenied ? PermissionDeniedError(msg)
                                                                   : InternalError(msg);
  }
  UniqueFd lock = std::move(opened).value();
  const int fd = lock.get();
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) {
      holder.assign(buf, static_cast<size_t>(n));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    }
    if (err == EWOULDBLOCK) {
      return FailedPreconditionError(
          "another sentinelagent" + (holder.empty() ? "" : " (pid " + holder + ")") +
          " is already running on data directory " + dir.string() + " (lock file " + path + ")");
    }
    return InternalError("cannot lock " + path + ": " + std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds without the pid; only the message of a second agent is poorer.
  }
  return InstanceLock(std::move(lock), path);
}

}  // namespace sentinel::agent
