// ProcessSource over Linux /proc. Parsing is done by proc_parsers.h, the
// platform_data object by platform_data.h; this file reads.
//
// Every scan reads each process's stat and the owner of /proc/PID (or takes
// both from the BPF task iterator's sample, task_sampler.h); the exe link,
// status, cmdline, cwd, cgroup, ns, fds, environ and the exe hash are read
// once per instance (pid, start time), again after an exec, and at a
// periodic refresh spread across scans. Which reads a process gets on a scan
// is decided by read_plan.h; docs/collector.md explains the schedule, its
// costs and its blind spot (a credential change that keeps both the
// effective uid and gid is seen only at the instance's next refresh, so
// user_id can be stale for up to `refresh_every_scans` scans; the deletion of
// a running image is seen within `exe_link_every_scans` scans). All /proc
// I/O goes through ProcFs (proc_fs.h). Every ScanRecord field is filled for
// every process on every scan, from what is cached for the instance.
//
// platform_data keys (a JSON object; keys absent when not applicable or not
// readable; the reason for an unreadable field is in "errors"):
//   "uid":  {"real": N, "effective": N}     from status when last read (or the kernel; -1 unknown)
//   "gid":  {"real": N, "effective": N}     from status when last read (or the kernel; -1 unknown)
//   "threads": N                            every scan, from stat
//   "tty": "pts/3" | "tty1" | "ttyS0" | "console" | "MAJ:MIN"
//                                           every scan, from stat tty_nr; absent: no controlling tty
//   "kernel_thread": true                   kernel threads only (then none of the keys below)
//   "exe_deleted": true                     the exe link ends in " (deleted)"
//   "exe_memfd": true                       the exe link starts with "/memfd:"
//   "exe_memfd_seals": N                    a memfd image's F_SEAL_* bits
//   "exe_memfd_runtime": "/usr/bin/runc"    a "runc_cloned:" memfd holding an installed runtime's image
//   "exe_host_mismatch": bool (+ "exe_host_mismatch_reason")
//                                           the host's file at the exe path is not the image
//                                           (image_identity.h); absent when not compared
//   "exe_host_skipped": "own_root" | "..."  why it was not compared
//   "proc_hidden": true, "proc_hidden_reason": "..."
//                                           sampled from the kernel, but /proc/PID is missing,
//                                           unreadable, another file system's, another task's
//                                           or not listed: nothing else is read from it
//   "cwd": "/path"                          readlink cwd
//   "cgroup": "/path"                       cgroup v2 path (hybrid hosts: name=systemd path)
//   "ns": {"pid": N, "mnt": N, "net": N}    namespace inode numbers (readlink ns/*)
//   "exe_nlink": N, "exe_owner_uid": N     link count and owner of the executable's file (stat of
//                                           /proc/PID/exe); 0 links: deleted or a memfd
//   "fds": {"0": FD, "1": FD, "2": FD}      what stdin/stdout/stderr point at (re-read every scan for
//                                           shells and interpreters: stdio_watch.h), where FD is
//          {"type": "tty", "path": "/dev/pts/3"} | {"type": "null"} | {"type": "none"} (not open)
//          {"type": "pipe", "inode": N} | {"type": "socket", "inode": N}
//          {"type": "file", "path": "/tmp/x"} | {"type": "anon", "path": "anon_inode:[eventfd]"}
//   "loader_env": ["LD_PRELOAD", ...]       names (never values) of LD_PRELOAD, LD_LIBRARY_PATH,
//                                           LD_AUDIT set in environ, in that order; [] when none
//   "hash_skipped": "too_large" | "permission_denied" | "not_regular_file" | "gone" | "io_error" |
//                   "changed_while_hashing" | "disabled"   (exe_hash is NULL then)
//   "errors": {"status"|"cmdline"|"exe"|"cwd"|"cgroup"|"ns.pid"|"ns.mnt"|"ns.net"|"fd.0"|"fd.1"|
//              "fd.2"|"environ"|"exe_hash"|"exe_memfd_seals"|"exe_links"|"proc"|"access": "reason"}
//            "access": the exe link was EACCES (another user's process without root, or a
//            process we may not ptrace-read); cwd, ns, fds and environ sit behind the same
//            check and are not tried.
// Text that is not valid UTF-8 (paths) is stored with U+FFFD replacements.
//
// Error counting: each failed read is added to ScanErrors when it happens.
// The once-per-instance reads therefore count on the scan that first sees the
// instance (and again on its refresh scans); their reasons stay in
// platform_data.errors while it is reused. A failed status or cmdline read
// stays in platform_data.errors until the next successful read.
// ENOENT/ESRCH (the process exited, or is a zombie) is not an error; nor is a
// size cap (hash_skipped "too_large" only).
//
// One instance per collector thread; not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "procmond/hashing/exe_hasher.h"
#include "procmond/platform/linux/platform_data.h"
#include "procmond/platform/linux/proc_fs.h"
#include "procmond/platform/linux/proc_mounts.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "procmond/platform/linux/read_plan.h"
#include "procmond/platform/linux/stdio_watch.h"
#include "procmond/platform/linux/task_sampler.h"
#include "procmond/platform/linux/user_names.h"
#include "procmond/platform/process_source.h"

namespace sentinel::procmond {

struct LinuxProcessSourceOptions {
  std::string proc_root = "/proc";  // read through OpenProcFs() unless `fs` is given
  ProcFs* fs = nullptr;             // the tree to read instead (a test's fake); must outlive the source
  bool hash_executables = true;     // collection.hash_executables
  uint64_t max_hash_bytes = 256ULL << 20;  // collection.max_hash_bytes
  size_t hash_cache_capacity = ExeHasher::kDefaultCapacity;
  // Every instance's once-per-instance reads (status, cmdline, cwd, cgroup,
  // ns, fds, environ, hash) are redone every this many scans, spread across
  // scans by pid. 0: never (first sight and exec only).
  uint32_t refresh_every_scans = 20;
  // readlink /proc/PID/exe every this many scans per instance (spread by
  // pid), besides first sight, exec and refresh and whenever stat's exec
  // signature moved. 1: every scan (~0.07x the floor at 10,000 processes);
  // 0: never otherwise. It catches an image deleted after start, and an
  // exec keeping comm that the signature missed (ASLR off and an identical
  // layout).
  uint32_t exe_link_every_scans = 4;
  // How many /proc/PID/stat files stay open between scans (docs/collector.md:
  // ~4.4 KiB of kernel memory each).
  // kAutoHeldStatFiles: the soft RLIMIT_NOFILE (raised to the hard limit)
  // minus 1,024 for everything else; 0: none (every read by path).
  static constexpr size_t kAutoHeldStatFiles = static_cast<size_t>(-1);
  size_t max_held_stat_files = kAutoHeldStatFiles;
};

class LinuxProcessSource final : public ProcessSource {
 public:
  LinuxProcessSource();
  explicit LinuxProcessSource(LinuxProcessSourceOptions options);
  ~LinuxProcessSource() override;
  LinuxProcessSource(const LinuxProcessSource&) = delete;
  LinuxProcessSource& operator=(const LinuxProcessSource&) = delete;

  Status Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) override;
  // Overwrites the records already in `out` in place (their strings keep
  // their storage), appends what more is needed and drops the rest.
  Status EnumerateReusing(std::vector<models::ProcessRecord>* out, ScanErrors* errors) override;
  HashCounters LastHashCounters() const override { return last_hash_counters_; }

  // For SIGHUP reloads. Instances already seen keep what was recorded for them;
  // a new max_hash_bytes starts an empty hash cache.
  void SetHashing(bool enabled, uint64_t max_hash_bytes);

  // Takes every scan's per-process sample from `sampler` (the BPF task
  // iterator) instead of /proc/PID/stat and the owner of /proc/PID (see
  // "From the kernel" in docs/collector.md). If a sample fails, that scan and every later
  // one read /proc, and TakeSamplerFailure() returns the reason once.
  void SetTaskSampler(std::unique_ptr<TaskSampler> sampler);
  bool sampling_from_kernel() const { return sampler_ != nullptr; }
  std::optional<std::string> TakeSamplerFailure();

  // The hasher's own counters since construction (hits/misses/skips by reason).
  const ExeHasher::Counters& hasher_counters() const { return hasher_->counters(); }
  size_t tracked_instances() const { return instances_.size(); }
  size_t held_stat_files() const { return held_stat_files_; }

  // What the last Enumerate() read, for tests and benchmarks.
  struct ReadCounters {
    int64_t stat = 0;           // /proc/PID/stat files read
    int64_t owner = 0;          // fstatat of /proc/PID
    int64_t exe_link = 0;       // readlink of /proc/PID/exe
    int64_t status = 0;         // /proc/PID/status files read
    int64_t cmdline = 0;        // /proc/PID/cmdline files read
    int64_t full_reads = 0;     // instances given the once-per-instance reads
    int64_t refreshes = 0;      //   of which periodic refreshes
    int64_t owner_changes = 0;  // credentials changed (/proc: the owner moved and status was re-read)
    int64_t stat_held = 0;      //   of the stat reads, by pread on a held file
    int64_t sampled = 0;        // processes taken from the kernel's sample (no stat, no owner)
    int64_t unsampled = 0;      //   listed by /proc but not in the sample: read from /proc
    int64_t verified = 0;       // sampled processes whose /proc entry was checked before reading it
    int64_t hidden = 0;         //   of which the entry was missing, unreadable or another task's
    int64_t stdio = 0;          // fds 0-2 re-read between full reads (shells, interpreters: stdio_watch.h)
    int64_t stdio_changes = 0;  //   of which changed (platform_data.fds rewritten)
  };
  const ReadCounters& last_read_counters() const { return reads_; }

 private:
  // Why the last status/cmdline/exe read failed (rare: kept out of line).
  struct ReadErrors {
    std::optional<std::string> status, cmdline, exe;
    bool empty() const { return !status && !cmdline && !exe; }
  };
  // An open /proc/PID/stat kept between scans; closes itself and keeps the
  // source's count of held files.
  class HeldFd {
   public:
    HeldFd() = default;
    HeldFd(UniqueFd fd, size_t* count) : fd_(std::move(fd)), count_(count) {
      if (fd_.get() >= 0 && count_) ++*count_;
    }
    HeldFd(HeldFd&& o) noexcept : fd_(std::move(o.fd_)), count_(o.count_) {}
    HeldFd& operator=(HeldFd&& o) noexcept {
      if (this != &o) {
        Reset();
        fd_ = std::move(o.fd_);
        count_ = o.count_;
      }
      return *this;
    }
    ~HeldFd() { Reset(); }
    void Reset();
    int get() const { return fd_.get(); }

   private:
    UniqueFd fd_;
    size_t* count_ = nullptr;
  };
  // What is remembered of a process between scans (keyed by pid). Kept
  // small: there is one per process, for as long as it runs.
  struct Instance {
    uint64_t start_ticks = 0;
    uint64_t seen_scan = 0;  // scan_ of the last scan that saw it
    uint64_t full_scan = 0;  // scan_ of the last once-per-instance reads
    uint64_t cpu_ns = 0;     // the group's CPU time when last seen
    int64_t cpu_mono_ms = 0;
    // From status (-1 unknown), read with the /proc/PID owner seen just before.
    int64_t ruid = -1, euid = -1, rgid = -1, egid = -1;
    // stat's threads and tty_nr that platform_data was built from.
    int64_t pd_threads = 0, pd_tty = 0;
    uint64_t exec_sig = 0;   // stat's exec signature, or the kernel's exec counter (0: not shown)
    uint64_t exe_key = 0;    // the kernel's executable identity (inode, device, unlinked); 0: none
    uint64_t stdio_key = 0;  // fds 0-2 as last read (StdioKey) of a shell or interpreter; 0: not watched
    std::string comm;
    std::shared_ptr<const std::string> exe_link;            // interned (interned_); null: none
    std::shared_ptr<const std::string> exe_hash;            // SHA-256 hex, interned; null: none
    const std::optional<std::string>* user_name = nullptr;  // in user_names_ (stable); null: none
    std::unique_ptr<ReadErrors> errors;                     // null: no failure
    // /proc/PID/cmdline as read (when has_cmdline): split into argv for each
    // record, which costs what copying a cached vector would, in a third of
    // the memory.
    std::string cmdline;
    std::string platform_data;  // serialized
    uint32_t owner_uid = 0, owner_gid = 0;
    HeldFd stat_fd;  // /proc/PID/stat, open between scans (or -1)
    bool has_cmdline = false;
    bool owner_known = false;
    bool have_status = false;
    bool pd_dirty = false;     // platform_data's status/error part changed
    bool from_kernel = false;  // last observed through the kernel's sample
    bool proc_hidden = false;  // its /proc entry was not its own (recorded from the sample alone)
  };
  // Interned strings (exe link targets, hashes): processes mostly share a
  // few executables.
  struct StringPtrHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
    size_t operator()(const std::shared_ptr<const std::string>& s) const {
      return (*this)(std::string_view(*s));
    }
  };
  struct StringPtrEq {
    using is_transparent = void;
    static std::string_view V(std::string_view s) { return s; }
    static std::string_view V(const std::shared_ptr<const std::string>& s) { return *s; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return V(a) == V(b);
    }
  };
  std::shared_ptr<const std::string> Intern(std::string_view s);
  // One process as a scan sees it before the once-per-instance reads: from
  // /proc/PID/stat and the owner of /proc/PID, or from the kernel's sample.
  struct Observation {
    int32_t pid = 0;
    const char* pid_dir = nullptr;  // "PID" if already formatted
    int64_t ppid = 0;
    char state = '?';
    bool kernel_thread = false;
    uint64_t start_ticks = 0;
    uint64_t cpu_ns = 0;
    int64_t rss_bytes = 0;
    int64_t threads = 0;
    int64_t tty_nr = 0;
    std::string_view comm;
    uint64_t exec_sig = 0;
    bool from_kernel = false;
    // /proc: the owner of /proc/PID (euid:egid).
    bool owner_known = false;
    uint32_t owner_uid = 0, owner_gid = 0;
    // Kernel: every id, and the executable's identity.
    int64_t ruid = -1, euid = -1, rgid = -1, egid = -1;
    uint64_t exe_key = 0;
    bool unlisted = false;  // kernel: absent from this scan's listing of /proc
  };
  // The exe link as read for one Observe (exe_buf_ holds its text).
  struct ExeLinkRead {
    bool read = false;
    std::optional<std::string_view> now;  // null: no link (kernel thread, gone, error)
    Status status;                        // the error (NotFound is not one)
  };
  // What one scan needs throughout.
  struct ScanContext {
    int64_t now_mono = 0;
    std::vector<models::ProcessRecord>* out = nullptr;
    ScanErrors* errors = nullptr;
    int64_t reused_hashes = 0;
  };

  // Enumerate's body: records from index used_ (0 when reusing).
  Status Scan(std::vector<models::ProcessRecord>* out, ScanErrors* errors, bool reuse);
  // The tree and the boot time, at the first scan.
  Status OpenTree();
  // The kernel's sample of every process when there is a sampler; false
  // (and for good) once it failed.
  bool TakeSample(ScanErrors* errors);
  // Observes the sample, and what only /proc listed, in ascending pid order.
  void ObserveSampled(ScanContext* ctx);
  Observation FromSample(const TaskSample& t) const;
  // Forgets what this scan did not see; sums the hash counters.
  void EndScan(const ExeHasher::Counters& hasher_before, int64_t reused_hashes);
  // Reads pid's stat and the owner of /proc/PID, then Observe()s it.
  void ObserveFromProc(int32_t pid, ScanContext* ctx);
  // pid's stat into buf_ (from a held file when there is one); false when
  // it could not be read (gone, or counted in errors). *opened: a stat file
  // opened by path, to keep if there is room.
  bool ReadStat(int32_t pid, const char* pid_dir, HeldFd* opened, ScanErrors* errors);
  // Matches `o` to its instance, does the reads it calls for and appends
  // its record (unless it turned out to be gone).
  void Observe(const Observation& o, HeldFd* opened, ScanContext* ctx);
  // The instance of `o` (a new one when the pid's start time changed); *fresh:
  // nothing remembered.
  Instance& Track(const Observation& o, HeldFd* opened, bool* fresh);
  ReadInputs PlanInputs(const Observation& o, const Instance& inst, bool fresh) const;
  ExeLinkRead ReadExeLink(const char* pid_dir, bool kernel_thread, ScanErrors* errors);
  // The ids from the kernel's sample, or status read again when the plan
  // says so; false when the process is gone.
  bool UpdateCredentials(const Observation& o, const ReadPlan& plan, bool fresh, const char* pid_dir,
                         Instance* inst, ScanErrors* errors);
  void AdoptKernelIds(const Observation& o, bool fresh, Instance* inst);
  // The next record of ctx->out (a recycled one is overwritten in place).
  models::ProcessRecord& NextRecord(std::vector<models::ProcessRecord>* out);
  // The every-scan fields of p.
  void FillScanFields(const Observation& o, const Instance& inst, bool fresh, int64_t now_mono,
                      models::ProcessRecord* p) const;
  // The once-per-instance reads (plan.full) or the update of the cached
  // platform_data.
  void UpdateInstance(const Observation& o, const ReadPlan& plan, const ExeLinkRead& exe, const char* pid_dir,
                      Instance* inst, ScanContext* ctx);
  // The fields of p cached for the instance.
  static void FillInstanceFields(const Observation& o, const Instance& inst, models::ProcessRecord* p);
  static ScanFields CurrentScanFields(const Instance& inst, int64_t threads, int64_t tty_nr);

  // The account name of `uid`, looked up once; the pointer stays valid.
  const std::optional<std::string>* UserName(int64_t uid);
  // Sets (or with nullopt clears) one of inst->errors' fields.
  static void SetError(Instance* inst, std::optional<std::string> ReadErrors::*field,
                       std::optional<std::string> reason);
  // status -> inst's uid/gid fields (errors recorded in inst.status_error).
  // NotFound when the process is gone.
  Status ReadStatus(const char* pid_dir, Instance* inst, ScanErrors* errors);
  void AdoptStatus(const linux_proc::StatusFields& ids, Instance* inst);
  // cmdline -> inst.cmdline.
  void ReadCmdline(const char* pid_dir, Instance* inst, ScanErrors* errors);
  // cwd, cgroup, ns, fds, environ, hash: a fresh platform_data (without the
  // ScanFields part) and exe_hash. `refresh`: a periodic refresh of an
  // unchanged image (keeps its hash if hashing was turned off since).
  nlohmann::json ReadOnceFields(const char* pid_dir, const Observation& o, bool refresh,
                                const Status& exe_status, Instance* inst, ScanErrors* errors);
  // cwd, ns, fds and environ: behind the ptrace read check. Returns the
  // digest of fds 0-2 (StdioKey).
  uint64_t ReadPtraceGuarded(const char* pid_dir, OnceFieldsBuilder* b);
  // fds 0-2 into `b`; their digest.
  uint64_t ReadStdio(const char* pid_dir, OnceFieldsBuilder* b);
  // Between full reads, for a watched instance: fds 0-2 read again and
  // platform_data.fds rewritten when they changed (stdio_watch.h).
  void RefreshStdio(const char* pid_dir, Instance* inst);
  void HashExe(const char* pid_dir, bool refresh, const Status& exe_status, Instance* inst,
               OnceFieldsBuilder* b);
  // exe_host_mismatch and the memfd facts (image_identity.h); real /proc only.
  void CheckImage(const char* pid_dir, const Instance& inst, OnceFieldsBuilder* b);
  // Why the /proc entry of the sampled `o` is not its own (missing while the
  // task runs, unreadable, on another file system, another task's, or not
  // listed); nullopt when it is, or when the process exited since.
  std::optional<std::string> VerifyProcEntry(const Observation& o, const char* pid_dir);
  // Whether this scan checks the sampled `o`'s /proc entry: before any read
  // of it, and every scan while it is hidden.
  bool ShouldVerify(const Observation& o, const ReadInputs& in, const ReadPlan& first,
                    const Instance& inst) const;
  // Records a hidden process from the kernel's sample alone.
  void ObserveHidden(const Observation& o, const std::string& reason, bool fresh, Instance* inst,
                     ScanContext* ctx);
  // What every observed instance keeps for the next scan.
  void Remember(const Observation& o, Instance* inst, int64_t now_mono);

  std::string proc_root_;
  std::unique_ptr<ProcFs> own_fs_;  // opened from proc_root_ at the first scan
  ProcFs* fs_ = nullptr;
  // Epoch ns of boot: BootClock on the real procfs, btime of the given /proc otherwise.
  std::optional<int64_t> boot_epoch_ns_;
  long ticks_per_sec_;
  long page_size_;
  bool hash_executables_;
  size_t hash_cache_capacity_;
  uint32_t refresh_every_;
  uint32_t exe_every_;
  std::unique_ptr<ExeHasher> hasher_;
  HashCounters last_hash_counters_;
  ReadCounters reads_;
  uint64_t scan_ = 0;  // scans done
  UserNames user_names_;
  std::unordered_map<int64_t, Instance> instances_;
  std::unordered_set<std::shared_ptr<const std::string>, StringPtrHash, StringPtrEq> interned_;
  std::vector<int32_t> pids_;
  std::string buf_;
  std::string exe_buf_;   // the exe link read by ReadExeLink
  std::string link_buf_;  // the other links
  size_t max_held_stat_files_ = 0;
  size_t held_stat_files_ = 0;  // kept by the HeldFds in instances_
  size_t used_ = 0;             // records of `out` filled so far this scan
  std::unique_ptr<TaskSampler> sampler_;
  std::optional<ProcFs::FileId> host_root_;      // procmond's root directory (CheckImage)
  std::optional<ProcFs::FileId> proc_root_id_;   // the /proc directory itself (VerifyProcEntry)
  std::unique_ptr<ProcMountWatch> proc_mounts_;  // mounts over /proc/PID (kernel sampling, real /proc)
  std::vector<TaskSample> samples_;
  std::optional<std::string> sampler_failure_;
};

}  // namespace sentinel::procmond
