// Real-time process events: the sources that see a process that lives for
// milliseconds, which a /proc scan every interval_secs never does (SPEC §5,
// docs/realtime.md).
//
// A RealtimeSource is opened (everything that needs root: loading the BPF
// program, subscribing to the proc connector) BEFORE procmond drops its
// privileges, then Start()ed: it runs its own consumer thread that decodes
// kernel records into RealtimeEvents and hands each to the sink. Two
// implementations: EbpfSource (BTF tracepoints + ring buffer, argv read in
// the kernel) and NetlinkSource (proc connector + a /proc read per exec).
// OpenRealtimeSource() picks one from collection.realtime_source.
//
// Thread-safety: Start/Stop from one thread (procmond's main thread); the
// sink is called on the source's thread only. RealtimeStats may be read from
// any thread at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sentinel/base/status.h"

namespace sentinel::procmond {

enum class RealtimeEventType { kExec = 1, kFork = 2, kExit = 3 };
const char* RealtimeEventTypeName(RealtimeEventType t);  // "exec" | "fork" | "exit"

// The executed image as the kernel saw it at exec (eBPF): what stat() of
// /proc/PID/exe would say, so the writer can find the image's hash in its
// cache without a syscall (docs/realtime.md).
struct ExecImage {
  uint64_t dev = 0;  // user-space dev_t (makedev of the kernel's major/minor)
  uint64_t ino = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t nlink = 0;  // 0: unlinked before the exec
};
// A timestamp as one number for comparing identities (wraps instead of
// overflowing on an absurd time a file's owner may set).
inline int64_t IdentityNs(int64_t sec, int64_t nsec) {
  return static_cast<int64_t>(static_cast<uint64_t>(sec) * 1'000'000'000u + static_cast<uint64_t>(nsec));
}

// The loader and shell variables an exec event keeps from the new program's
// environment (names allow-listed; values cut at kEnvValueMax bytes).
struct ExecEnv {
  std::vector<std::pair<std::string, std::string>> vars;  // in block order, each name once
  bool truncated = false;  // the block was longer than the capture bound, or a value was cut
};

// One decoded event. Fields a source could not capture stay empty and
// `incomplete` names why (e.g. "proc_gone": the process had exited before
// its /proc entry was read).
struct RealtimeEvent {
  RealtimeEventType type = RealtimeEventType::kExec;
  int64_t time_ms = 0;  // epoch ms
  int64_t pid = 0;      // process id (tgid)
  std::optional<int64_t> ppid;
  std::optional<int64_t> uid;
  std::optional<int64_t> gid;
  std::optional<std::string> comm;      // kernel task name (15 bytes at most)
  std::optional<std::string> exe_path;  // exec: the path that was executed
  std::optional<std::vector<std::string>> argv;
  bool argv_truncated = false;         // argv longer than the source's bound: argv = its start and end
  std::optional<int64_t> args_length;  // bytes of the whole argument block
  int64_t argc = -1;                   // exec: the kernel's argc; -1 unknown
  std::optional<int64_t> exit_code;    // exit: code, or 128 + signal when killed
  std::optional<uint64_t> cgroup_id;
  // Process start and its parent's (CLOCK_BOOTTIME ns, what the scan's task
  // iterator reads: converted with the same BootClock, both give the same ms).
  std::optional<uint64_t> start_boottime_ns;
  std::optional<uint64_t> parent_start_boottime_ns;
  // exec only:
  std::optional<int64_t> login_uid;  // empty when never set (4294967295)
  std::optional<int64_t> euid;
  std::optional<int64_t> egid;
  std::optional<bool> cred_change;  // AT_SECURE, euid != uid or egid != gid
  std::optional<std::string> tty;   // "pts/3", "tty1" as ps shows it; empty: none or unknown
  std::optional<std::string> cwd;   // " (deleted)" appended when removed, as /proc shows it
  std::optional<ExecEnv> env;       // empty: the block could not be read
  std::optional<ExecImage> image;
  // The task's root directory (eBPF): exe_path is checked against the
  // host's file at that path only when this is the host's root.
  std::optional<std::pair<uint64_t, uint64_t>> root_dev_ino;  // user-space dev_t, inode
  std::optional<int64_t> memfd_seals;                         // F_SEAL_* of a memfd image
  bool interpreted = false;  // a script (#!): `image` is its interpreter, exe_path the script
  std::string incomplete;    // "" when everything the source offers was read
};

// Counters of one procmond's real-time pipeline. Lock-free increments from
// the source and writer threads; Get() from any thread (the IPC "stats"
// command and /metrics read it through procmond::CurrentRealtimeStats()).
class RealtimeStats {
 public:
  struct Snapshot {
    std::string source;         // "ebpf" | "netlink" | "off"
    std::string source_detail;  // why this source (and why the others failed)
    int64_t received_exec = 0, received_fork = 0, received_exit = 0;
    int64_t stored_exec = 0, stored_fork = 0, stored_exit = 0;
    // Lost before they reached procmond: the BPF ring buffer was full, or
    // the netlink socket overflowed (ENOBUFS; how many is unknown, so each
    // overflow counts 1).
    int64_t lost_kernel = 0;
    int64_t lost_queue = 0;  // dropped because procmond's own queue was full
    int64_t lost_write = 0;  // dropped after the store refused a batch
    int64_t incomplete = 0;  // stored with fields missing (e.g. /proc already gone)
    int64_t argv_truncated = 0;
    int64_t fork_not_stored = 0;  // fork events are counted but not stored (docs/realtime.md)
    int64_t hashed_by_proc_exe = 0, hashed_by_path = 0, hash_skipped = 0;
    int64_t batches_written = 0;
    int64_t queued = 0;
    int64_t lost_total() const { return lost_kernel + lost_queue + lost_write; }
  };

  void SetSource(std::string name, std::string detail);
  void AddReceived(RealtimeEventType t);
  void AddStored(RealtimeEventType t, int64_t n = 1);
  // The kernel-side lost count is an absolute value the source reads.
  void SetLostKernel(int64_t n) { lost_kernel_.store(n, std::memory_order_relaxed); }
  // Forks the kernel counted without sending them (absolute): received and not stored.
  void SetForksCountedInKernel(int64_t n) {
    received_[static_cast<int>(RealtimeEventType::kFork)].store(n, std::memory_order_relaxed);
    fork_not_stored.store(n, std::memory_order_relaxed);
  }
  void AddLostKernel(int64_t n) { lost_kernel_.fetch_add(n, std::memory_order_relaxed); }

  std::atomic<int64_t> lost_queue{0}, lost_write{0}, incomplete{0}, argv_truncated{0}, fork_not_stored{0};
  std::atomic<int64_t> hashed_by_proc_exe{0}, hashed_by_path{0}, hash_skipped{0};
  std::atomic<int64_t> batches_written{0}, queued{0};

  Snapshot Get() const;

 private:
  mutable std::mutex mu_;  // guards the strings
  std::string source_ = "off", detail_;
  std::atomic<int64_t> received_[4] = {}, stored_[4] = {};
  std::atomic<int64_t> lost_kernel_{0};
};

// The stats of this procmond process (one pipeline per process).
RealtimeStats& CurrentRealtimeStats();

using RealtimeSink = std::function<void(RealtimeEvent&&)>;

class RealtimeSource {
 public:
  virtual ~RealtimeSource() = default;
  virtual const char* name() const = 0;
  // Starts the consumer thread. The sink is called on that thread.
  virtual Status Start(RealtimeSink sink) = 0;
  // Stops and joins the consumer thread; events already received were
  // handed to the sink. Idempotent.
  virtual void Stop() = 0;
};

// The consumer thread both sources run: Start() calls Prepare(), then Run()
// on a new thread, which returns once stop_ is set; Stop() sets it, joins,
// then calls Stopped(). A derived destructor must call Stop().
class ThreadedRealtimeSource : public RealtimeSource {
 public:
  Status Start(RealtimeSink sink) final {
    sink_ = std::move(sink);
    Prepare();
    stop_ = false;
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }
  void Stop() final {
    if (!thread_.joinable()) return;
    stop_ = true;
    Interrupt();
    thread_.join();
    Stopped();
  }

 protected:
  virtual void Prepare() {}
  virtual void Run() = 0;
  // Called by Stop() after stop_ is set: wakes Run() if it waits.
  virtual void Interrupt() {}
  virtual void Stopped() {}

  RealtimeSink sink_;
  std::atomic<bool> stop_{false};

 private:
  std::thread thread_;
};

struct RealtimeOptions {
  std::string mode = "auto";  // auto | ebpf | netlink | off
  // eBPF: a ring-buffer record per fork. Off (the default), the program only
  // counts forks (received_fork, fork_not_stored): the writer would drop
  // them anyway unless EventWriterOptions::store_forks (docs/realtime.md).
  bool emit_forks = false;
};

// Opens the source `options.mode` asks for (needs root for ebpf and
// netlink; call before dropping privileges). `auto` tries ebpf, then
// netlink, and returns nullptr (off) with a warning when neither works.
// Records the choice and the reasons in `stats`.
// Errors: Unavailable / PermissionDenied naming the source when a source
// asked for by name cannot be opened; nullptr (not an error) for off.
Result<std::unique_ptr<RealtimeSource>> OpenRealtimeSource(const RealtimeOptions& options,
                                                           RealtimeStats* stats);

// The individual sources (realtime/ebpf_source.cc, realtime/netlink_source.cc).
Result<std::unique_ptr<RealtimeSource>> OpenEbpfSource(const RealtimeOptions& options, RealtimeStats* stats);
Result<std::unique_ptr<RealtimeSource>> OpenNetlinkSource(const RealtimeOptions& options,
                                                          RealtimeStats* stats);

}  // namespace sentinel::procmond
