// ProcessSource over Linux /proc. Parsing is done by proc_parsers.h; this
// file only reads.
//
// What is read, and when (a scan of N idle processes must cost well under
// the "floor" of reading stat+status+cmdline+exe for each of them):
//
//   every scan, every process:
//     stat                 pid, comm, state, ppid, utime/stime, starttime,
//                          rss, threads, tty, exec signature. Read once by
//                          path, then the file stays open and each scan is
//                          one pread() at offset 0 (the kernel regenerates
//                          it): measured 2.5 us against 7 us for
//                          open/read/close, the largest cost of a warm scan.
//                          The price is kernel memory: ~4.4 KiB per open
//                          stat file (its seq_file buffer), ~44 MiB at 10,000
//                          processes; `max_held_stat_files` bounds it, and
//                          processes beyond it are read by path. A held file
//                          belongs to its task: once the task is reaped it
//                          answers ESRCH, never for a new process reusing the
//                          pid.
//     fstatat("/proc/PID") the directory's owner. On Linux (checked on 6.18)
//                          the /proc/PID directory is always owned by the
//                          task's EFFECTIVE uid:gid, dumpable or not
//                          (task_dump_owner() applies the "non-dumpable ->
//                          root" rule only to the files inside it, e.g.
//                          status); kernel threads: root.
//     exec signature       where execve() laid the image out (stat fields
//                          26-28, 45-51: code, stack, argv and environment
//                          addresses; ASLR-randomized), from the same stat
//                          read: an execve, even one keeping comm (e.g.
//                          /tmp/x/sshd exec'd by sshd), moves it, so an exec
//                          is seen at the next scan without reading more.
//   readlink exe           at first sight, after an exec, when the signature
//                          moved, and every `exe_link_every_scans` scans per
//                          instance (spread by pid; default 4): catches an
//                          image deleted after start (" (deleted)") and backs
//                          the signature up (ASLR off, identical layout).
//                          Measured at 10,000 processes: readlink on every
//                          scan costs ~0.07x the floor.
//   status (uids/gids)     at first sight, after an exec, when the owner
//                          (euid:egid) of /proc/PID differs from the one seen
//                          when status was last read — an exploit's
//                          setuid(0)/commit_creds() changes the euid, so the
//                          new uid is seen at the next scan — and at the
//                          periodic refresh.
//   cmdline, cwd, cgroup,  at first sight of an instance, after an exec, and
//   ns, fds 0-2, environ,  at a periodic refresh of every instance once every
//   exe hash               `refresh_every_scans` scans (argv rewrites by
//                          setproctitle or argv masquerading, a changed cwd,
//                          ... are seen then). The refresh is spread across
//                          scans: an instance is refreshed on the scans where
//                          pid % N == scan % N, and not within N scans of its
//                          last full read, so a scan pays for ~1/N of them.
//
// From the kernel (collection.scan_source: ebpf/auto, procmond as root): the
// every-scan part above comes from one read of a BPF task iterator
// (task_sampler.h) instead: no stat file and no fstatat per process. It also
// gives every real and effective id each scan (status is then never read:
// a credential change of any of the four is seen at the next scan, the blind
// spot below does not apply), an exec counter (self_exec_id: an execve is
// seen exactly) and the executable's inode, device and unlinked state (a
// deleted or swapped image is seen at the next scan, so no staggered exe
// readlink). The once-per-instance reads stay as above. The name is the
// kernel's 15-byte comm: kernel worker threads are named without the
// workqueue suffix /proc/PID/stat adds ("kworker/0:1", not
// "kworker/0:1-events"), which also stops every change of that suffix from
// looking like a new image. /proc is still listed (getdents) every scan:
// a process it lists that the sample lacks is read from /proc as above
// (on 6.18 the task iterator never visits pid 1 and its threads), and an
// instance that moves between the two ways is judged by its exe link.
//
// Blind spot of /proc (bounded by the refresh): a credential change that leaves BOTH
// the effective uid and the effective gid unchanged is not seen until the
// instance's next refresh — e.g. a setuid-root program (ruid 1000, euid 0)
// calling setuid(0) changes only the real and saved uids; so do changes of
// the saved/fs ids, supplementary groups or capabilities alone. user_id is
// the REAL uid, so it can be stale for up to `refresh_every_scans` scans in
// that case. The deletion of a running image is seen within
// `exe_link_every_scans` scans.
//
// An instance is (pid, start ticks); an exec within it (comm, exec signature
// or exe link changed) is treated as a new image: everything above is read
// again.
// Storage keeps platform_data and exe_hash per instance at first sight, so
// reusing them loses nothing it would store. Every ScanRecord field is still
// filled for every process on every scan, from this cache.
//
// platform_data keys (a JSON object; keys absent when not applicable or not
// readable; the reason for an unreadable field is in "errors"):
//   "uid":  {"real": N, "effective": N}     from status when last read (see above; -1 unknown)
//   "gid":  {"real": N, "effective": N}     from status when last read (see above; -1 unknown)
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
// instance (and again on its refresh scans); their reasons stay in
// platform_data.errors while it is reused. A failed status or cmdline read
// stays in platform_data.errors until the next successful read.
// ENOENT/ESRCH (the process exited, or is a zombie) is not an error; nor is a
// size cap (hash_skipped "too_large" only).
//
// One instance per collector thread; not thread-safe.
#pragma once

#include <sys/types.h>

#include <array>
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
#include "procmond/platform/linux/task_sampler.h"
#include "procmond/platform/process_source.h"

namespace sentinel::procmond {

struct LinuxProcessSourceOptions {
  std::string proc_root = "/proc";         // a fake tree in tests
  bool hash_executables = true;            // collection.hash_executables
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
  // How many /proc/PID/stat files stay open between scans (see above).
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
  // "From the kernel" above). If a sample fails, that scan and every later
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
  };
  const ReadCounters& last_read_counters() const { return reads_; }

 private:
  // The platform_data fields that can change without a full read (built
  // for ApplyScanFields; platform_data is re-serialized only when they
  // changed).
  struct ScanFields {
    bool have_status = false;
    int64_t ruid = -1, euid = -1, rgid = -1, egid = -1;
    int64_t threads = 0;
    int64_t tty_nr = 0;
    std::vector<std::pair<std::string, std::string>> errors;  // status/cmdline/exe failures
    bool operator==(const ScanFields&) const = default;
  };
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
    HeldFd(int fd, size_t* count) : fd_(fd), count_(count) {
      if (fd_ >= 0 && count_) ++*count_;
    }
    HeldFd(HeldFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)), count_(o.count_) {}
    HeldFd& operator=(HeldFd&& o) noexcept {
      if (this != &o) {
        Reset();
        fd_ = std::exchange(o.fd_, -1);
        count_ = o.count_;
      }
      return *this;
    }
    ~HeldFd() { Reset(); }
    void Reset();
    int get() const { return fd_; }

   private:
    int fd_ = -1;
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
    uint64_t exec_sig = 0;  // stat's exec signature, or the kernel's exec counter (0: not shown)
    uint64_t exe_key = 0;   // the kernel's executable identity (inode, device, unlinked); 0: none
    std::string comm;
    std::shared_ptr<const std::string> exe_link;            // interned (exe_links_); null: none
    const std::optional<std::string>* user_name = nullptr;  // in user_names_ (stable); null: none
    std::unique_ptr<ReadErrors> errors;                     // null: no failure
    // /proc/PID/cmdline as read (when has_cmdline): split into argv for each
    // record, which costs what copying a cached vector would, in a third of
    // the memory.
    std::string cmdline;
    std::string platform_data;  // serialized
    uint32_t owner_uid = 0, owner_gid = 0;
    HeldFd stat_fd;                      // /proc/PID/stat, open between scans (or -1)
    std::array<uint8_t, 32> exe_hash{};  // SHA-256, when has_hash
    bool has_hash = false;
    bool has_cmdline = false;
    bool owner_known = false;
    bool have_status = false;
    bool pd_dirty = false;     // platform_data's status/error part changed
    bool from_kernel = false;  // last observed through the kernel's sample
  };
  // Interned exe link targets: processes mostly share a few executables.
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
  std::shared_ptr<const std::string> InternExeLink(std::string_view link);
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
  };
  // Enumerate's body: records from index used_ (0 when reusing).
  Status Scan(std::vector<models::ProcessRecord>* out, ScanErrors* errors, bool reuse);
  // Reads pid's stat and the owner of /proc/PID, then Observe()s it.
  void ObserveFromProc(int32_t pid, int64_t now_mono, std::vector<models::ProcessRecord>* out,
                       ScanErrors* errors, int64_t* reused_hashes);
  // Matches `o` to its instance, does the reads it calls for and appends
  // its record (unless it turned out to be gone).
  void Observe(const Observation& o, HeldFd* opened, int64_t now_mono,
               std::vector<models::ProcessRecord>* out, ScanErrors* errors, int64_t* reused_hashes);
  static ScanFields CurrentScanFields(const Instance& inst, int64_t threads, int64_t tty_nr);

  static void ApplyScanFields(const ScanFields& f, nlohmann::json* pd);
  // Reads <rel> (e.g. "123/stat") relative to the /proc dir fd. ENOENT/ESRCH
  // mean the process is gone (NotFound). `seq_file`: the file is produced in
  // one piece (stat, status), so a short read is the end of it.
  // `keep_fd`: on success the file is left open and its fd stored there.
  Status ReadProcFile(const char* rel, std::string* out, bool seq_file = false, int* keep_fd = nullptr) const;
  // pread(fd, 0) of a held stat file into buf_; false when the task is gone.
  bool ReadHeldStat(int fd);
  // readlink <rel>; `what` names the field in errors.
  Result<std::string> ReadLink(const char* rel, std::string_view what) const;
  // The account name of `uid`, looked up once; the pointer stays valid.
  const std::optional<std::string>* UserName(int64_t uid);
  // Sets (or with nullopt clears) one of inst->errors' fields.
  static void SetError(Instance* inst, std::optional<std::string> ReadErrors::*field,
                       std::optional<std::string> reason);
  // status -> inst's uid/gid fields (errors recorded in inst.status_error).
  // NotFound when the process is gone.
  Status ReadStatus(const char* pid_dir, Instance* inst, ScanErrors* errors);
  // cmdline -> inst.cmdline.
  void ReadCmdline(const char* pid_dir, Instance* inst, ScanErrors* errors);
  // cwd, cgroup, ns, fds, environ, hash: a fresh platform_data (without the
  // ScanFields part) and exe_hash. `refresh`: a periodic refresh of an
  // unchanged image (keeps its hash if hashing was turned off since).
  void ReadOnceFields(const char* pid_dir, bool kernel_thread, bool dead, bool refresh,
                      const Status& exe_status, Instance* inst, nlohmann::json* pd, ScanErrors* errors);

  std::string proc_root_;
  int proc_fd_ = -1;
  int64_t boot_time_ms_ = -1;
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
  std::unordered_map<int64_t, std::optional<std::string>> user_names_;
  std::unordered_map<int64_t, Instance> instances_;
  std::unordered_set<std::shared_ptr<const std::string>, StringPtrHash, StringPtrEq> exe_links_;
  std::vector<int32_t> pids_;
  std::string buf_;
  size_t max_held_stat_files_ = 0;
  size_t held_stat_files_ = 0;  // kept by the HeldFds in instances_
  size_t used_ = 0;             // records of `out` filled so far this scan
  std::unique_ptr<TaskSampler> sampler_;
  std::vector<TaskSample> samples_;
  std::optional<std::string> sampler_failure_;
};

}  // namespace sentinel::procmond
