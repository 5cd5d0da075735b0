// files.h on Linux: descriptors opened with O_NOFOLLOW / O_PATH and checked
// with fstat(). The Windows build uses files_windows.cc.
#include "sentinel/base/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace sentinel {
namespace {

const char* TypeName(mode_t type) {
  switch (type & S_IFMT) {
    case S_IFDIR: return "a directory";
    case S_IFREG: return "a regular file";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "of an unknown type";
  }
}

// The checks every descriptor-based helper makes before acting on a node.
Status CheckNode(const std::string& path, const struct stat& st, mode_t type) {
  if (S_ISLNK(st.st_mode)) return RefusedPathError(path, "it is a symbolic link");
  if (type != 0 && (st.st_mode & S_IFMT) != (type & S_IFMT)) {
    return RefusedPathError(path, std::string("it is ") + TypeName(st.st_mode) + ", not " + TypeName(type));
  }
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    return RefusedPathError(path, "it has " + std::to_string(st.st_nlink) + " hard links");
  }
  return Status::Ok();
}

Result<UniqueFd> OpenPath(const std::string& path, mode_t type) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return NotFoundError(path + ": not found");
    return ErrnoError(errno, "opening " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat " + path);
  RETURN_IF_ERROR(CheckNode(path, st, type));
  return fd;
}

}  // namespace

Status RefuseSymlink(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();  // nothing there (or not ours to judge)
  if (S_ISLNK(st.st_mode)) return RefusedPathError(path, "it is a symbolic link");
  return Status::Ok();
}

Result<UniqueFd> OpenDirectoryNoFollow(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ELOOP) return RefusedPathError(path, "it is a symbolic link");
    if (err == ENOTDIR) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
        return RefusedPathError(path, "it is a symbolic link");
      return RefusedPathError(path, "it is not a directory");
    }
    if (err == ENOENT) return NotFoundError(path + ": directory not found");
    return ErrnoError(err, "opening directory " + path);
  }
  return fd;
}

Result<UniqueFd> OpenRegularNoFollow(const std::string& path, int flags, mode_t mode) {
  // O_NONBLOCK: a FIFO planted at the name must not hang the open; cleared below.
  UniqueFd fd(::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ELOOP) return RefusedPathError(path, "it is a symbolic link");
    if (err == ENXIO) return RefusedPathError(path, "it is not a regular file");
    if (err == ENOENT) return NotFoundError(path + ": not found");
    if (err == EACCES || err == EPERM)
      return PermissionDeniedError("opening " + path + ": permission denied");
    return ErrnoError(err, "opening " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat " + path);
  RETURN_IF_ERROR(CheckNode(path, st, S_IFREG));
  if ((flags & O_NONBLOCK) == 0) {
    const int fl = ::fcntl(fd.get(), F_GETFL);
    if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0)
      return ErrnoError(errno, "fcntl " + path);
  }
  return fd;
}

Status ChownNoFollow(const std::string& path, mode_t type, uid_t uid, gid_t gid) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenPath(path, type));
  if (::fchownat(fd.get(), "", uid, gid, AT_EMPTY_PATH) != 0) return ErrnoError(errno, "chown " + path);
  return Status::Ok();
}

Status ChmodNoFollow(const std::string& path, mode_t type, mode_t mode) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenPath(path, type));
  // An O_PATH descriptor cannot be fchmod()ed; its /proc/self/fd entry names
  // exactly the node opened, whatever happens to `path` meanwhile.
  const std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  if (::chmod(proc.c_str(), mode) != 0) return ErrnoError(errno, "chmod " + path);
  return Status::Ok();
}

Result<std::vector<std::string>> CreateDirectories(const std::string& dir, mode_t mode) {
  std::vector<std::string> created;
  if (dir.empty()) return created;
  std::filesystem::path cur;
  for (const auto& part : std::filesystem::path(dir)) {
    if (part.empty()) continue;  // a trailing separator
    cur /= part;
    if (::mkdir(cur.c_str(), mode) == 0) {
      created.push_back(cur.string());
    } else if (errno != EEXIST) {
      return ErrnoError(errno, "creating directory " + cur.string());
    }
  }
  // The last level must be a real directory, not a link to one.
  struct stat st {};
  if (::lstat(cur.c_str(), &st) != 0) return ErrnoError(errno, "stat " + cur.string());
  if (S_ISLNK(st.st_mode)) return RefusedPathError(cur.string(), "it is a symbolic link");
  if (!S_ISDIR(st.st_mode)) return RefusedPathError(cur.string(), "it is not a directory");
  return created;
}

}  // namespace sentinel
