// Mounts over /proc/PID or anything below it (/proc/PID/cmdline,
// /proc/PID/exe), as procmond's own mount namespace (the host's) has them:
// the way a root attacker hides a process from every /proc reader (a bind of
// another process's entry, an empty directory, a tmpfs) or forges one of its
// files. Nothing legitimate mounts there in the host's namespace (containers
// mount their own /proc in their own).
//
// The mount table is re-read only when it changed: /proc/self/mountinfo
// signals POLLPRI on every mount or unmount, so an unchanged table costs one
// poll() per scan.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sentinel/base/files.h"

namespace sentinel::procmond {

// The mount points below `proc_root`/PID/ in a mountinfo text, by pid (the
// first one of each pid). Mount points are unescaped (\040 is a space).
std::unordered_map<int32_t, std::string> ParseProcMounts(std::string_view mountinfo,
                                                         std::string_view proc_root);

class ProcMountWatch {
 public:
  // `proc_root`: where procfs is mounted ("/proc"); `mountinfo`: the table
  // to watch ("/proc/self/mountinfo").
  ProcMountWatch(std::string proc_root, std::string mountinfo);
  // Re-reads the table if it changed since the last call (or never was
  // read). An unreadable table leaves nothing known.
  void Refresh();
  // The mount point over pid's entry, or nullptr.
  const std::string* MountOver(int32_t pid) const {
    auto it = mounts_.find(pid);
    return it == mounts_.end() ? nullptr : &it->second;
  }
  bool any() const { return !mounts_.empty(); }

 private:
  std::string proc_root_, mountinfo_;
  UniqueFd fd_;
  std::unordered_map<int32_t, std::string> mounts_;
  std::string buf_;
};

}  // namespace sentinel::procmond
