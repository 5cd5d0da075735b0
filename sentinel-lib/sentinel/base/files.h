// Filesystem work that must not be redirected (issue 14, docs/security.md).
//
// The data directory and the socket directory belong to the service user;
// anything SentinelD does there while it is root must not follow a name the
// service user swapped for a symbolic link, or a hard link to someone else's
// file. These helpers never follow a link at the last component of a path,
// act on a descriptor rather than on the name once it is opened, and refuse
// (FailedPrecondition, message "refusing <path>: ...") what is not what they
// expect. Directories above the last component are trusted: they belong to
// whoever wrote the configuration (root).
//
// On Windows (files_windows.cc) "link" means any reparse point (symbolic
// link, junction, mount point), a node opened with FILE_FLAG_OPEN_REPARSE_POINT
// is checked through its handle, and modes and owners are the ACLs the
// directory passes on: ChownNoFollow and ChmodNoFollow are Unimplemented.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "sentinel/base/status.h"

namespace sentinel {

#ifdef _WIN32
// Windows has no user or group ids: ChownNoFollow exists there only to say so.
using uid_t = unsigned int;
using gid_t = unsigned int;
#endif

// An owned file descriptor (closed on destruction; -1 when empty).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// The message of every refusal below: "refusing <path>: <why> (<advice>)".
Status RefusedPathError(const std::string& path, const std::string& why);

// True for a status made by RefusedPathError (a swapped or unsafe path:
// callers stop with exit 1 rather than carry on without the file).
bool IsRefusedPath(const Status& status);

// Ok when nothing exists at `path` or it is not a symbolic link; a refusal
// when it is a symbolic link (its target is not read, not followed).
Status RefuseSymlink(const std::string& path);

// Opens the directory `path` (O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC).
// Errors: a refusal (it is a symbolic link or not a directory), NotFound,
// or the errno of open().
Result<UniqueFd> OpenDirectoryNoFollow(const std::string& path);

// Opens `path` with `flags` | O_NOFOLLOW | O_CLOEXEC (mode for O_CREAT) and
// checks the descriptor: a regular file with exactly one link. A symbolic
// link, a hard-linked file or a non-regular file is refused.
// Errors: a refusal, NotFound, PermissionDenied or the errno of open().
Result<UniqueFd> OpenRegularNoFollow(const std::string& path, int flags, mode_t mode = 0600);

// Gives the node at `path` to uid:gid through an O_PATH | O_NOFOLLOW
// descriptor: a symbolic link, a node of another type than `type` (S_IFDIR,
// S_IFREG or S_IFSOCK; 0 for any), or a non-directory with more than one
// hard link is refused, never followed. NotFound when nothing is there.
Status ChownNoFollow(const std::string& path, mode_t type, uid_t uid, gid_t gid);
// Sets the permission bits of the node at `path` the same way.
Status ChmodNoFollow(const std::string& path, mode_t type, mode_t mode);

// Creates the missing directories of `dir` (like mkdir -p) with `mode`
// (under the umask) and returns those it created, outermost first. A
// symbolic link where a directory is expected at the last level is refused.
Result<std::vector<std::string>> CreateDirectories(const std::string& dir, mode_t mode);

}  // namespace sentinel
