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
  int64_t tty_nr = 0;  // controlling terminal, encoded dev_t; 0 = none
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  int64_t num_threads = 0;
  uint64_t starttime_ticks = 0;  // since boot
  int64_t rss_pages = 0;
  uint64_t flags = 0;
  // A digest of where execve() laid the image out: startcode, endcode,
  // startstack (fields 26-28) and start_data .. env_end (45-51). A new
  // execve() gives new values (ASLR randomizes them; without it, a different
  // binary or argv/environment size still moves them). 0 when the kernel
  // shows them as 0: a kernel thread, a zombie, or a process the reader may
  // not ptrace-read (the same check as the exe link).
  uint64_t exec_sig = 0;
};
Result<StatFields> ParseStat(std::string_view content);

// Kernel state letter in words: running, sleeping, disk-sleep, stopped,
// tracing-stop, zombie, dead, idle, parked, waking, wakekill.
std::string StateName(char state);

// /proc/PID/status: the fields the collector uses.
struct StatusFields {
  std::optional<int64_t> ppid;
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
// The same into `args`, reusing its strings' storage (a recycled record).
void ParseCmdlineInto(std::string_view content, std::vector<std::string>* args);

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

// stat's tty_nr as a name: "pts/3", "tty1", "ttyS0", "console", ...; a device
// without a known name is "MAJOR:MINOR". nullopt when tty_nr is 0 (no
// controlling terminal).
std::optional<std::string> TtyName(int64_t tty_nr);

// /proc/PID/cgroup: the cgroup v2 path (the "0::" entry). On a pure v2 host
// the file is one entry, and the path is everything after "0::" up to the
// final newline, so a cgroup name containing a newline is kept whole. On a
// hybrid v1/v2 host the "0::" line is used, else the "name=systemd" one.
Result<std::string> ParseCgroup(std::string_view content);

// readlink of /proc/PID/ns/<type>: "pid:[4026531836]" -> 4026531836. The
// prefix must be `type`.
Result<uint64_t> ParseNsLink(std::string_view link_target, std::string_view type);

// readlink of /proc/PID/fd/N, classified:
//   tty    /dev/pts/*, /dev/tty*, /dev/console, /dev/ptmx   (path set)
//   null   /dev/null
//   pipe   "pipe:[INODE]"                                   (inode set)
//   socket "socket:[INODE]"                                 (inode set)
//   anon   "anon_inode:..." and other non-path targets      (path set to the target)
//   file   any other absolute path, " (deleted)" kept       (path set)
// ("none" — the fd is not open — is decided by the caller from ENOENT.)
struct FdTarget {
  std::string type;
  std::string path;
  std::optional<uint64_t> inode;
};
FdTarget ClassifyFdTarget(std::string_view link_target);

// The loader variables SPEC §5 names (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT)
// that are set in a NUL-separated /proc/PID/environ, in that order, each at
// most once. Only names are compared — each entry is scanned up to its first
// '=' — and no value is ever copied out. An entry without '=' is not a
// variable (and is ignored).
std::vector<std::string> LoaderEnvNames(std::string_view environ);

}  // namespace sentinel::procmond::linux_proc
