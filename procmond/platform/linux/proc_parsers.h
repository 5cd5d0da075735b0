// Pure parsers for /proc/PID files. They take the file contents and never
// touch the file system, so they are tested on captured (and hostile)
// samples. Every parser tolerates truncated or garbled input by returning
// an error instead of guessing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/base/status.h"

namespace sentinel::procmond::linux_proc {

// /proc/PID/stat. comm may contain spaces, ')' and newlines: it is whatever
// lies between the first '(' and the LAST ')'.
struct StatFields {
  int64_t pid = 0;
  std::string comm;
  char state = '?';
  int64_t ppid = 0;
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  int64_t num_threads = 0;
  uint64_t starttime_ticks = 0;  // since boot
  int64_t rss_pages = 0;
  uint64_t flags = 0;
};
Result<StatFields> ParseStat(std::string_view content);

// Kernel state letter in words: running, sleeping, disk-sleep, stopped,
// tracing-stop, zombie, dead, idle, parked, waking, wakekill.
std::string StateName(char state);

// /proc/PID/status: the fields the collector uses.
struct StatusFields {
  std::optional<int64_t> ruid, euid, suid, fsuid;
  std::optional<int64_t> rgid, egid, sgid, fsgid;
  std::optional<int64_t> threads;
  std::optional<int64_t> vm_rss_kb;
  std::optional<std::string> name;
};
Result<StatusFields> ParseStatus(std::string_view content);

// /proc/PID/cmdline: NUL-separated arguments. A trailing NUL is a separator,
// not an empty argument; an empty file is an empty argv (kernel threads,
// zombies). A process that rewrote its argv may leave no NULs: one argument.
std::vector<std::string> ParseCmdline(std::string_view content);

// /proc/stat: "btime" line (boot time, seconds since the epoch).
Result<int64_t> ParseBootTime(std::string_view proc_stat);

// The target of /proc/PID/exe; the kernel appends " (deleted)" when the file
// was unlinked. memfd executables read "/memfd:NAME (deleted)".
struct ExeInfo {
  std::string path;
  bool deleted = false;
  bool memfd = false;
};
ExeInfo ClassifyExe(std::string_view link_target);

}  // namespace sentinel::procmond::linux_proc
