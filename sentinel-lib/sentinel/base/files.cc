// The platform-neutral part of files.h; the rest is in files_posix.cc
// (Linux) and files_windows.cc.
#include "sentinel/base/files.h"

#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

namespace sentinel {
namespace {

void CloseFd(int fd) {
#ifdef _WIN32
  ::_close(fd);
#else
  ::close(fd);
#endif
}

}  // namespace

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) CloseFd(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) CloseFd(fd_);
    fd_ = o.release();
  }
  return *this;
}

Status RefusedPathError(const std::string& path, const std::string& why) {
  return FailedPreconditionError("refusing " + path + ": " + why +
                                 " (SentinelD does not follow links in its data and socket directories; "
                                 "remove it and check who put it there)");
}

bool IsRefusedPath(const Status& status) {
  return status.code() == StatusCode::kFailedPrecondition &&
         status.message().find("refusing ") != std::string::npos &&
         status.message().find("SentinelD does not follow links") != std::string::npos;
}

}  // namespace sentinel
