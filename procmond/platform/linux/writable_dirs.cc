#include "procmond/platform/linux/writable_dirs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>

namespace sentinel::procmond {

namespace {

// File systems never walked: pseudo ones (nothing is stored there, and
// some are huge) and network or user-space ones (a walk could hang on them,
// and an automount point would be triggered).
const std::set<std::string, std::less<>> kSkippedFsTypes = {
    "proc",     "sysfs",  "cgroup", "cgroup2", "debugfs", "tracefs",  "securityfs",  "bpf",   "pstore",
    "efivarfs", "devpts", "autofs", "nfs",     "nfs4",    "cifs",     "smb3",        "smbfs", "fuse",
    "fuseblk",  "9p",     "ceph",   "afs",     "coda",    "configfs", "binfmt_misc", "nsfs",  "hugetlbfs"};

bool SkippedFsType(std::string_view type) {
  if (type.starts_with("fuse.")) return true;  // sshfs, s3fs, ...
  return kSkippedFsTypes.find(type) != kSkippedFsTypes.end();
}

// "\040" escapes of /proc/self/mountinfo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const std::string_view oct = s.substr(i + 1, 3);
    if (s[i] == '\\' && oct.size() == 3 && oct.find_first_not_of("01234567") == std::string_view::npos) {
      out.push_back(static_cast<char>(((oct[0] - '0') << 6) | ((oct[1] - '0') << 3) | (oct[2] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Mount point -> file system type, from /proc/self/mountinfo (empty when
// unreadable: every file system is then walked, within the bounds).
std::unordered_map<std::string, std::string> MountTypes() {
  std::unordered_map<std::string, std::string> types;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, devno, root, point, field;
    f >> id >> parent >> devno >> root >> point;
    while (f >> field && field != "-") {
    }
    std::string type;
    f >> type;
    if (!type.empty()) types[Unescape(point)] = type;
  }
  return types;
}

std::string Join(const std::string& dir, std::string_view name) {
  return dir.back() == '/' ? dir + std::string(name) : dir + "/" + std::string(name);
}

struct Pending {
  std::string path;
  int depth = 0;
  dev_t dev = 0;
};

// One walk: the queues (root-owned directories first), what was found.
class Walk {
 public:
  explicit Walk(const WritableDirOptions& o) : o_(o), mounts_(MountTypes()) {}

  void Run(WritableDirScan* out) {
    struct stat st {};
    if (::lstat(o_.root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
    system_.push_back({o_.root, 0, st.st_dev});
    while (!system_.empty() || !users_.empty()) {
      if (out->visited >= o_.max_visited) {
        out->truncated = true;
        return;
      }
      std::deque<Pending>& q = system_.empty() ? users_ : system_;
      Pending p = std::move(q.front());
      q.pop_front();
      ++out->visited;
      Visit(p);
    }
  }
  std::vector<std::pair<storage::WritableDir, int>>& found() { return found_; }

 private:
  bool Skipped(const std::string& path) const {
    std::string_view rel(path);
    rel.remove_prefix(std::min(rel.size(), o_.root.size()));
    while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
    return std::find(o_.skip.begin(), o_.skip.end(), rel) != o_.skip.end();
  }

  void Visit(const Pending& p) {
    const int fd = ::open(p.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      return;
    }
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name(e->d_name);
      if (name == "." || name == ".." || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)) continue;
      Child(p, ::dirfd(d), name);
    }
    ::closedir(d);
  }

  void Child(const Pending& parent, int dir_fd, std::string_view name) {
    struct stat st {};
    const std::string n(name);
    if (::fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0) return;
    if (!S_ISDIR(st.st_mode)) return;
    std::string path = Join(parent.path, name);
    if (Skipped(path)) return;
    if (st.st_dev != parent.dev) {
      auto m = mounts_.find(path);
      if (m != mounts_.end() && SkippedFsType(m->second)) return;
    }
    if (st.st_mode & S_IWOTH) {
      found_.push_back({{path, static_cast<int64_t>(st.st_mode & 07777), static_cast<int64_t>(st.st_uid)},
                        parent.depth + 1});
      return;  // what is under it is under it
    }
    if (parent.depth + 1 >= o_.max_depth) return;
    (st.st_uid == 0 ? system_ : users_).push_back({std::move(path), parent.depth + 1, st.st_dev});
  }

  const WritableDirOptions& o_;
  std::unordered_map<std::string, std::string> mounts_;
  std::deque<Pending> system_, users_;
  std::vector<std::pair<storage::WritableDir, int>> found_;  // with depth
};

// The well-known directories that exist, resolved.
std::vector<storage::WritableDir> WellKnown(const std::vector<std::string>& paths) {
  std::vector<storage::WritableDir> out;
  for (const std::string& p : paths) {
    char* real = ::realpath(p.c_str(), nullptr);
    if (!real) continue;
    const std::string path(real);
    std::free(real);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    out.push_back({path, static_cast<int64_t>(st.st_mode & 07777), static_cast<int64_t>(st.st_uid)});
  }
  return out;
}

bool Under(const std::string& path, const std::string& dir) {
  if (dir == "/") return path != "/";
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

}  // namespace

std::vector<storage::WritableDir> OutermostOnly(std::vector<storage::WritableDir> dirs) {
  std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  std::vector<storage::WritableDir> out;
  for (auto& d : dirs) {
    // Sorted, a directory's ancestors sort before it, but not always right
    // before it ("/a", "/a-b", "/a/c"): every kept one is checked.
    const bool nested = std::any_of(out.begin(), out.end(),
                                    [&](const auto& k) { return k.path == d.path || Under(d.path, k.path); });
    if (!nested) out.push_back(std::move(d));
  }
  return out;
}

WritableDirScan FindWritableDirs(const WritableDirOptions& options) {
  WritableDirScan scan;
  Walk walk(options);
  walk.Run(&scan);
  // Well-known first, then root's, then the shallowest: what is kept when
  // there are more than max_found.
  std::vector<storage::WritableDir> dirs = WellKnown(options.well_known);
  auto& found = walk.found();
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    const bool ra = a.first.owner_uid == 0, rb = b.first.owner_uid == 0;
    return ra != rb ? ra : a.second < b.second;
  });
  for (auto& [d, depth] : found) dirs.push_back(std::move(d));
  if (dirs.size() > options.max_found) {
    dirs.resize(options.max_found);
    scan.truncated = true;
  }
  scan.dirs = OutermostOnly(std::move(dirs));
  return scan;
}

}  // namespace sentinel::procmond
