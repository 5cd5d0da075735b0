#include "procmond/platform/linux/proc_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace sentinel::procmond {

namespace {

// "123/ns/pid" -> "ns/pid"; "stat" -> "stat": how errors name a file.
std::string_view BelowPidDir(const char* rel) {
  const char* slash = std::strchr(rel, '/');
  return slash ? slash + 1 : rel;
}

// The pid an entry of the root names, or 0.
int32_t PidOf(const char* name) {
  if (name[0] < '1' || name[0] > '9') return 0;
  int32_t pid = 0;
  const char* end = name + std::strlen(name);
  auto [ptr, ec] = std::from_chars(name, end, pid);
  return ec == std::errc() && ptr == end ? pid : 0;
}

class DirProcFs final : public ProcFs {
 public:
  DirProcFs(std::string root, UniqueFd fd, bool procfs)
      : root_(std::move(root)), fd_(std::move(fd)), procfs_(procfs) {}

  Status ReadFile(const char* rel, std::string* out, bool seq_file, UniqueFd* keep) override {
    UniqueFd fd(::openat(fd_.get(), rel, O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoError(errno, BelowPidDir(rel));
    out->clear();
    char buf[16384];
    while (true) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError(errno, BelowPidDir(rel));
      if (n == 0) break;
      out->append(buf, static_cast<size_t>(n));
      // stat and status are generated whole: a short read is all there is,
      // and saves the read() that would return 0.
      if (seq_file && static_cast<size_t>(n) < sizeof buf) break;
    }
    if (keep) *keep = std::move(fd);
    return Status::Ok();
  }

  bool Reread(int fd, std::string* out) override {
    // stat is at most ~1 KiB (a 64-byte comm and 52 numbers).
    char buf[4096];
    while (true) {
      ssize_t n = ::pread(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return false;
      out->assign(buf, static_cast<size_t>(n));
      return true;
    }
  }

  Status ReadLink(const char* rel, std::string* out) override {
    char link[PATH_MAX + 1];
    ssize_t n = ::readlinkat(fd_.get(), rel, link, sizeof link);
    if (n < 0) return ErrnoError(errno, BelowPidDir(rel));
    if (static_cast<size_t>(n) == sizeof link) return ErrnoError(ENAMETOOLONG, BelowPidDir(rel));
    out->assign(link, static_cast<size_t>(n));
    return Status::Ok();
  }

  Status ListPids(std::vector<int32_t>* pids) override {
    int dfd = ::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ErrnoError(errno, "listing " + root_);
    DIR* dir = ::fdopendir(dfd);
    if (!dir) {
      UniqueFd owned(dfd);
      return ErrnoError(errno, "listing " + root_);
    }
    pids->clear();
    while (dirent* de = ::readdir(dir)) {
      if (int32_t pid = PidOf(de->d_name)) pids->push_back(pid);
    }
    ::closedir(dir);  // closes dfd too
    return Status::Ok();
  }

  Result<FileLinks> LinksOf(const char* rel) override {
    struct stat st {};
    if (::fstatat(fd_.get(), rel, &st, 0) != 0) return ErrnoError(errno, BelowPidDir(rel));
    return FileLinks{static_cast<uint64_t>(st.st_nlink), st.st_uid};
  }

  Result<Owner> OwnerOf(const char* pid_dir) override {
    struct stat st {};
    if (::fstatat(fd_.get(), pid_dir, &st, 0) != 0) return ErrnoError(errno, pid_dir);
    return Owner{st.st_uid, st.st_gid};
  }

  ExeHasher::Outcome HashExe(ExeHasher* hasher, const char* rel) override {
    return hasher->Hash(fd_.get(), rel);
  }

  Result<FileId> StatFollow(const char* rel) override {
    struct stat st {};
    if (::fstatat(fd_.get(), rel, &st, 0) != 0) return ErrnoError(errno, BelowPidDir(rel));
    return FileId{st.st_dev, st.st_ino, st.st_nlink};
  }

  Result<uint32_t> MemfdSeals(const char* rel) override {
    UniqueFd fd(::openat(fd_.get(), rel, O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoError(errno, BelowPidDir(rel));
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (seals < 0) return ErrnoError(errno, std::string(BelowPidDir(rel)) + " seals");
    return static_cast<uint32_t>(seals);
  }

  bool KeepsFilesLive() const override { return procfs_; }

 private:
  std::string root_;
  UniqueFd fd_;
  bool procfs_;
};

}  // namespace

Result<std::unique_ptr<ProcFs>> OpenProcFs(const std::string& root) {
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "opening " + root);
  // Held files rely on procfs; anything else (a test's tree) is read by
  // path every time.
  struct statfs fs {};
  const bool procfs = ::fstatfs(fd.get(), &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
  return std::unique_ptr<ProcFs>(std::make_unique<DirProcFs>(root, std::move(fd), procfs));
}

}  // namespace sentinel::procmond
