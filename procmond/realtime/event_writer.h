// EventWriter: the real-time events' path to process_events.
//
// The source thread Push()es decoded events into a bounded queue and never
// blocks (a blocked consumer would only move the loss into the kernel, where
// it is counted less precisely). When the queue is full the event is
// dropped and counted in RealtimeStats::lost_queue. One writer thread
// enriches events (user name, executable hash through its own ExeHasher,
// /proc/PID/exe for deleted and memfd images) and writes them in batches:
// every `flush_ms` or `batch_size` events, one transaction per batch
// (EventStore::WriteEvents). A failed write is retried with backoff while
// new events keep queuing (up to capacity). Once Stop() is called a failing
// batch gets at most kStopAttempts more tries, kStopRetryMs apart; then it
// and everything queued are given up and counted in lost_write, so a full
// disk cannot hold a shutdown.
//
// Fork events are counted but not stored unless `store_forks` (docs/realtime.md).
//
// An exec row also gets its process's start_time (ProcessBootClock(), the
// scan's conversion) and its parent's executable, name, argv and start time,
// from the parent's own exec event or /proc/PPID.
//
// Thread-safety: Push from one thread (the source's); Stop from another.
#pragma once

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "procmond/hashing/exe_hasher.h"
#include "procmond/platform/linux/user_names.h"
#include "procmond/realtime/realtime_source.h"
#include "procmond/write_retry.h"
#include "sentinel/base/status.h"
#include "sentinel/base/write_health.h"
#include "sentinel/models/process.h"

namespace sentinel::procmond {

struct EventWriterOptions {
  size_t capacity = 65536;  // events waiting to be written
  size_t batch_size = 512;
  int64_t flush_ms = 200;
  bool store_forks = false;
  bool hash_executables = true;
  uint64_t max_hash_bytes = 268435456;
  std::string proc_root = "/proc";
  int64_t initial_backoff_ms = 100;
  int64_t max_backoff_ms = 5000;
  WriteHealth* health = nullptr;  // told of every batch write's outcome, when set
};

class EventWriter {
 public:
  using WriteFn = std::function<Result<int64_t>(const std::vector<models::ProcessEvent>&)>;

  EventWriter(WriteFn write, RealtimeStats* stats, EventWriterOptions options = {});
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Never blocks; false (and counted as lost) when the queue is full or stopped.
  bool Push(RealtimeEvent ev);
  // Writes what is queued (bounded by timeout_ms, and by kStopAttempts
  // tries of a failing batch) and joins the thread. DeadlineExceeded naming
  // how many events were not written (all counted in lost_write).
  Status Stop(int64_t timeout_ms);

  // The row an event becomes (enrichment included). Exposed for tests;
  // called on the writer thread only.
  models::ProcessEvent ToRow(const RealtimeEvent& ev);

  // collection.hash_executables / max_hash_bytes changed by a reload: events
  // enriched from now on follow them. Any thread.
  void SetHashing(bool enabled, uint64_t max_hash_bytes);

 private:
  enum class Next { kBatch, kNothing, kExit };
  using StoredCounts = std::array<int64_t, 4>;  // rows by RealtimeEventType
  void Run();
  // Waits for events and moves the next batch out of the queue (kNothing:
  // look again; kExit: abandoned).
  Next NextBatch(std::unique_lock<std::mutex>& lock, std::vector<RealtimeEvent>* batch);
  StoredCounts ToRows(const std::vector<RealtimeEvent>& batch, std::vector<models::ProcessEvent>* rows);
  // Writes rows, retrying until written, given up or abandoned.
  void WriteRows(const std::vector<models::ProcessEvent>& rows, const StoredCounts& by_type,
                 WriteRetry* retry);
  // After a failed write of `rows` rows: false when they are given up.
  bool WaitToRetry(size_t rows, int* failed_while_stopping, WriteRetry* retry);
  // SetHashing's latest values, applied before an event is enriched.
  void TakeHashingUpdate();
  // The file an exec ran, to hash ("" none); may set row's exe_path and name.
  std::string ResolveExecImage(const RealtimeEvent& ev, models::ProcessEvent* row);
  void HashImage(const std::string& path, models::ProcessEvent* row);
  // The fast path when the kernel told the executed image's identity: true
  // when the path the caller named still leads to it (one stat), then the
  // hash comes from the identity cache (or the path on a miss).
  // `path_stat`: stat() of ev.exe_path (StatExecPath), nullptr when it failed.
  bool HashKnownImage(const RealtimeEvent& ev, const struct stat* path_stat, models::ProcessEvent* row);
  // exe_host_mismatch: whether the host's file at exe_path is the image the
  // kernel executed (only for a task whose root is the host's).
  void CheckHostPath(const RealtimeEvent& ev, const struct stat* path_stat, int path_errno,
                     models::ProcessEvent* row) const;
  std::optional<std::string> UserName(int64_t uid);
  // stat() of an exec's path, or the result of one taken less than
  // kPathStatReuseMs ago that led to the very image this exec ran (same
  // device and inode); errno (0 on success). Only such a match is reused:
  // a path whose file differs from the image, or that failed, is looked up
  // again every time. Most execs of a storm are of a few programs, and this
  // one lookup was a tenth of procmond's CPU in it.
  int StatExecPath(const RealtimeEvent& ev, struct stat* out);

  // Parents (docs/realtime.md): what a process's own exec event said, or
  // /proc/PID when it did not exec while procmond watched. Keyed by pid,
  // checked against the parent's start time, dropped on its exit event,
  // cleared when kMaxParents are held.
  struct ParentInfo {
    std::optional<int64_t> start_time_ms;  // empty: unknown, not checked
    std::optional<std::string> exe_path, name;
    std::shared_ptr<const models::EncodedArgv> argv;  // encoded once, written with each child
  };
  static constexpr size_t kMaxParents = 16384;
  void FillExecContext(const RealtimeEvent& ev, models::ProcessEvent* row);
  void FillParent(const RealtimeEvent& ev, models::ProcessEvent* row);
  const ParentInfo* FindParent(int64_t ppid, std::optional<int64_t> start_time_ms);
  void Remember(int64_t pid, ParentInfo info);
  void ForgetExited(const RealtimeEvent& ev);

  // Hashes of executed images by identity (ExecImage without nlink).
  struct ImageKey {
    uint64_t dev, ino;
    int64_t size, mtime_ns, ctime_ns;
    bool operator==(const ImageKey&) const = default;
  };
  struct ImageKeyHash {
    size_t operator()(const ImageKey& k) const;
  };
  static constexpr size_t kMaxImageHashes = 4096;
  struct PathSeen {
    struct stat st;
    int64_t seen_ms;  // steady clock
  };
  static constexpr int64_t kPathStatReuseMs = 1000;
  static constexpr size_t kMaxPathsSeen = 4096;

  WriteFn write_;
  RealtimeStats* stats_;
  EventWriterOptions options_;
  std::unique_ptr<ExeHasher> hasher_;
  // SetHashing's latest values, taken by the writer thread in ToRow.
  std::mutex hashing_mu_;
  std::optional<std::pair<bool, uint64_t>> hashing_update_;
  std::atomic<bool> hashing_changed_{false};
  UserNames users_;
  std::unordered_map<int64_t, ParentInfo> parents_;
  std::unordered_map<ImageKey, std::string, ImageKeyHash> image_hashes_;
  std::unordered_map<std::string, PathSeen> paths_seen_;
  std::string scratch_;                                     // /proc reads
  std::optional<std::pair<uint64_t, uint64_t>> host_root_;  // dev, inode of procmond's "/"

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<RealtimeEvent> queue_;
  size_t in_flight_ = 0;
  int64_t given_up_ = 0;  // events given up after Stop() (kStopAttempts failures)
  bool stopping_ = false;
  bool abandon_ = false;
  std::thread thread_;
};

}  // namespace sentinel::procmond
