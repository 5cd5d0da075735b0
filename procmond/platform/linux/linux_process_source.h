// ProcessSource over Linux /proc. Parsing is done by proc_parsers.h; this
// file only reads.
//
// Every scan reads, for every process: stat, status (uid changes such as an
// exploit's setuid(0) show at the next scan), cmdline and the exe link.
// Everything else — cwd, cgroup, namespaces, fds 0-2, loader variables in
// environ and the executable's hash — is read once per process instance and
// reused while the instance is unchanged. An instance is (pid, start ticks,
// comm, exe link target): an execve changes comm or the exe link (or both),
// and an image deleted after start changes the link (" (deleted)"), so those
// are read again. Storage keeps platform_data and exe_hash per instance at
// first sight, so reusing them loses nothing it would store.
//
// platform_data keys (a JSON object; keys absent when not applicable or not
// readable; the reason for an unreadable field is in "errors"):
//   "uid":  {"real": N, "effective": N}     every scan, from status (-1 unknown)
//   "gid":  {"real": N, "effective": N}     every scan, from status (-1 unknown)
//   "threads": N                            every scan, from stat
//   "tty": "pts/3" | "tty1" | "ttyS0" | "console" | "MAJ:MIN"
//                                           every scan, from stat tty_nr; absent: no controlling tty
//   "kernel_thread": true                   kernel threads only (then none of the keys below)
//   "exe_deleted": true                     the exe link ends in " (deleted)"
//   "exe_memfd": true                       the exe link starts with "/memfd:"
//   "cwd": "/path"                          readlink cwd
//   "cgroup": "/path"                       cgroup v2 path (hybrid hosts: name=systemd path)
//   "ns": {"pid": N, "mnt": N, "net": N}    namespace inode numbers (readlink ns/*)
//   "fds": {"0": FD, "1": FD, "2": FD}      what stdin/stdout/stderr point at, where FD is
//          {"type": "tty", "path": "/dev/pts/3"} | {"type": "null"} | {"type": "none"} (not open)
//          {"type": "pipe", "inode": N} | {"type": "socket", "inode": N}
//          {"type": "file", "path": "/tmp/x"} | {"type": "anon", "path": "anon_inode:[eventfd]"}
//   "loader_env": ["LD_PRELOAD", ...]       names (never values) of LD_PRELOAD, LD_LIBRARY_PATH,
//                                           LD_AUDIT set in environ, in that order; [] when none
//   "hash_skipped": "too_large" | "permission_denied" | "not_regular_file" | "gone" | "io_error" |
//                   "changed_while_hashing" | "disabled"   (exe_hash is NULL then)
//   "errors": {"status"|"cmdline"|"exe"|"cwd"|"cgroup"|"ns.pid"|"ns.mnt"|"ns.net"|"fd.0"|"fd.1"|
//              "fd.2"|"environ"|"exe_hash"|"access": "reason"}
//            "access": the exe link was EACCES (another user's process without root, or a
//            process we may not ptrace-read); cwd, ns, fds and environ sit behind the same
//            check and are not tried.
// Text that is not valid UTF-8 (paths) is stored with U+FFFD replacements.
//
// Error counting: each failed read is added to ScanErrors when it happens.
// The once-per-instance reads therefore count on the scan that first sees the
// instance; their reasons stay in platform_data.errors while it is reused.
// ENOENT/ESRCH (the process exited, or is a zombie) is not an error; nor is a
// size cap (hash_skipped "too_large" only).
//
// One instance per collector thread; not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "procmond/hashing/exe_hasher.h"
#include "procmond/platform/process_source.h"

namespace sentinel::procmond {

struct LinuxProcessSourceOptions {
  std::string proc_root = "/proc";         // a fake tree in tests
  bool hash_executables = true;            // collection.hash_executables
  uint64_t max_hash_bytes = 256ULL << 20;  // collection.max_hash_bytes
  size_t hash_cache_capacity = ExeHasher::kDefaultCapacity;
};

class LinuxProcessSource final : public ProcessSource {
 public:
  LinuxProcessSource();
  explicit LinuxProcessSource(LinuxProcessSourceOptions options);
  ~LinuxProcessSource() override;
  LinuxProcessSource(const LinuxProcessSource&) = delete;
  LinuxProcessSource& operator=(const LinuxProcessSource&) = delete;

  Status Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) override;
  HashCounters LastHashCounters() const override { return last_hash_counters_; }

  // For SIGHUP reloads. Instances already seen keep what was recorded for them;
  // a new max_hash_bytes starts an empty hash cache.
  void SetHashing(bool enabled, uint64_t max_hash_bytes);

  // The hasher's own counters since construction (hits/misses/skips by reason).
  const ExeHasher::Counters& hasher_counters() const { return hasher_->counters(); }
  size_t tracked_instances() const { return instances_.size(); }

 private:
  struct InstanceKey {
    int64_t pid;
    uint64_t start_ticks;
    bool operator==(const InstanceKey&) const = default;
  };
  struct InstanceKeyHash {
    size_t operator()(const InstanceKey& k) const {
      return std::hash<uint64_t>()(static_cast<uint64_t>(k.pid) * 0x9e3779b97f4a7c15ULL ^ k.start_ticks);
    }
  };
  // The platform_data fields refreshed every scan; platform_data is
  // re-serialized only when they differ from the previous scan's.
  struct ScanFields {
    bool have_status = false;
    int64_t ruid = -1, euid = -1, rgid = -1, egid = -1;
    int64_t threads = 0;
    int64_t tty_nr = 0;
    std::vector<std::pair<std::string, std::string>> errors;  // status/cmdline/exe failures
    bool operator==(const ScanFields&) const = default;
  };
  // What is remembered of a process between scans.
  struct Instance {
    std::string comm;
    std::optional<std::string> exe_link;
    uint64_t cpu_ticks = 0;
    int64_t cpu_mono_ms = 0;
    std::optional<std::string> exe_hash;
    std::string platform_data;  // serialized; rebuilt when `scan_fields` change
    ScanFields scan_fields;     // what platform_data was built from
  };

  static void ApplyScanFields(const ScanFields& f, nlohmann::json* pd);
  // Reads PID/<file> relative to the /proc dir fd. ENOENT/ESRCH mean the
  // process is gone (NotFound).
  Status ReadProcFile(const std::string& pid_dir, const char* file, std::string* out) const;
  // readlink PID/<rel>; `what` names the field in errors.
  Result<std::string> ReadLink(const std::string& pid_dir, const char* rel, std::string_view what) const;
  std::optional<std::string> UserName(int64_t uid);

  std::string proc_root_;
  int proc_fd_ = -1;
  int64_t boot_time_ms_ = -1;
  long ticks_per_sec_;
  long page_size_;
  bool hash_executables_;
  size_t hash_cache_capacity_;
  std::unique_ptr<ExeHasher> hasher_;
  HashCounters last_hash_counters_;
  std::unordered_map<int64_t, std::optional<std::string>> user_names_;
  std::unordered_map<InstanceKey, Instance, InstanceKeyHash> instances_;
  std::string buf_;
};

}  // namespace sentinel::procmond
