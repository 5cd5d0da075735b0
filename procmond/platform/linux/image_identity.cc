#include "procmond/platform/linux/image_identity.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "procmond/platform/linux/proc_parsers.h"

namespace sentinel::procmond {

namespace {

std::string Rel(const char* pid_dir, const char* file) {
  return std::string(pid_dir) + "/" + file;
}

std::string DevIno(uint64_t dev, uint64_t ino) {
  return std::to_string(dev) + ":" + std::to_string(ino);
}

// Root-owned and not writable by group or others.
bool RootOnly(const struct stat& st) {
  return st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

HostCheck Skipped(std::string why) {
  HostCheck c;
  c.skipped = std::move(why);
  return c;
}

}  // namespace

HostCheck CheckExeAgainstHost(ProcFs* fs, const char* pid_dir, std::string_view exe_link,
                              const ProcFs::FileId& host_root) {
  const linux_proc::ExeInfo exe = linux_proc::ClassifyExe(exe_link);
  if (exe.deleted || exe.memfd || exe_link.empty() || exe_link.front() != '/') return {};
  auto root = fs->StatFollow(Rel(pid_dir, "root").c_str());
  if (!root.ok()) return Skipped(root.status().message());
  // A container or chroot with its own root: the path is under that root.
  if (!(*root == host_root)) return Skipped("own_root");
  auto image = fs->StatFollow(Rel(pid_dir, "exe").c_str());
  if (!image.ok()) return Skipped(image.status().message());
  struct stat host {};
  HostCheck c;
  const std::string path(exe_link);
  if (::stat(path.c_str(), &host) != 0) {
    const int err = errno;
    if (err != ENOENT && err != ENOTDIR) return Skipped(std::string("host stat: ") + std::strerror(err));
    // No file there on the host, yet the image still has a name somewhere.
    if (image->nlink == 0) return Skipped("image unlinked");
    c.mismatch = true;
    c.reason = "no file at this path on the host";
    return c;
  }
  c.mismatch = !(ProcFs::FileId{host.st_dev, host.st_ino, host.st_nlink} == *image);
  if (*c.mismatch) {
    c.reason = "the host's file at this path is " + DevIno(host.st_dev, host.st_ino) + ", the image " +
               DevIno(image->dev, image->ino);
  }
  return c;
}

std::vector<std::string> RuntimeBinaryCandidates() {
  static constexpr const char* kDirs[] = {"/usr/bin", "/usr/sbin", "/usr/local/bin",     "/usr/local/sbin",
                                          "/bin",     "/sbin",     "/usr/libexec/docker"};
  static constexpr const char* kNames[] = {"runc", "docker-runc", "crun"};
  std::vector<std::string> out;
  for (const char* d : kDirs) {
    for (const char* n : kNames) out.push_back(std::string(d) + "/" + n);
  }
  return out;
}

std::optional<std::string> RuntimeBinaryWithHash(ExeHasher* hasher, const std::string& sha256,
                                                 const std::vector<std::string>& candidates) {
  for (const std::string& path : candidates) {
    struct stat st {};
    struct stat dir {};
    const std::string parent = path.substr(0, path.rfind('/'));
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !RootOnly(st)) continue;
    if (::stat(parent.c_str(), &dir) != 0 || !RootOnly(dir)) continue;
    ExeHasher::Outcome h = hasher->Hash(AT_FDCWD, path.c_str());
    if (h.sha256 && *h.sha256 == sha256) return path;
  }
  return std::nullopt;
}

}  // namespace sentinel::procmond
