// World-writable directories (issue 17, case 8): where any local user, and
// so an attacker who got a foothold as www-data or nobody, can drop and run
// a payload. procmond looks for them once at its start, records them in the
// event store's writable_dirs table, and rules (proc-exec-from-tmp) test an
// executable's path against them instead of a fixed list.
//
// The walk: breadth-first from "/" down to `max_depth` levels (the depth of
// /var/lib/php/sessions is 4), never following a symbolic link or crossing
// into a pseudo or network file system (proc, sysfs, cgroup, autofs, NFS,
// SMB, FUSE, ...), never entering /proc, /sys or /dev, and never entering a
// directory it records (its subdirectories are under it anyway). Directories
// owned by root are visited before any owned by other users, so a user who
// creates thousands of directories in a home only spends the budget left
// after the system's tree. A directory is recorded when others may write it
// (mode o+w, sticky or not); the well-known ones (/tmp, /var/tmp, /dev/shm,
// /run/lock, /dev/mqueue, ...) are recorded when they exist, whatever their
// mode. Bounded: `max_visited` directories read, `max_found` recorded
// (well-known first, then root-owned, then by depth); `truncated` says a
// bound was hit.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sentinel/storage/store.h"

namespace sentinel::procmond {

struct WritableDirOptions {
  std::string root = "/";  // the tree to walk (tests: a temporary directory)
  // Paths under `root` neither entered nor recorded ("proc" for /proc).
  std::vector<std::string> skip = {"proc", "sys", "dev"};
  // Recorded when they exist, resolved (/var/lock -> /run/lock); absolute.
  std::vector<std::string> well_known = {
      "/tmp",      "/var/tmp",    "/dev/shm",   "/run/shm",     "/run/lock",
      "/var/lock", "/dev/mqueue", "/var/crash", "/var/metrics", "/var/lib/php/sessions"};
  int max_depth = 4;
  size_t max_visited = 20000;
  size_t max_found = 1024;
};

struct WritableDirScan {
  std::vector<storage::WritableDir> dirs;  // sorted by path; none under another
  size_t visited = 0;                      // directories read
  bool truncated = false;                  // max_visited or max_found was hit
};

WritableDirScan FindWritableDirs(const WritableDirOptions& options = {});

// `dirs` sorted by path, without the paths that lie under another of them.
std::vector<storage::WritableDir> OutermostOnly(std::vector<storage::WritableDir> dirs);

}  // namespace sentinel::procmond
