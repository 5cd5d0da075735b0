// Opening SentinelD databases, and the event store's write path.
//
// OpenStore() opens (and in read-write mode creates, with mode 0640 in a
// 0750 directory, and migrates) an event store or audit ledger, in WAL mode
// with a busy timeout. A read-only open never creates or changes a file.
//
// EventStore writes scans incrementally: each process instance once, a state
// row only when ppid/cpu/memory/status/uid changed, and closes instances
// that disappeared — all of one scan in one transaction, so a crash leaves
// either the whole scan or none of it. One EventStore is used by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/models/process.h"
#include "sentinel/storage/migrations.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::storage {

struct StoreOptions {
  std::string path;
  OpenMode mode = OpenMode::kReadOnly;
  int64_t busy_timeout_ms = 5000;
  // SQLite page cache of this connection in KiB; 0: SQLite's default
  // (2,000 KiB). A writer that appends (procmond) needs little.
  int64_t cache_kib = 0;
};

// Opens and validates (read-only) or creates/migrates (read-write) a store.
// Errors: NotFound (read-only, missing file), PermissionDenied (directory or
// file not writable/readable), InvalidArgument (not an SQLite file),
// FailedPrecondition (foreign database, newer schema, read-only on an older
// schema).
Result<std::unique_ptr<Database>> OpenStore(DatabaseKind kind, const StoreOptions& options);

// Checks, writing nothing (read-only, and no statement runs, so no side file appears), that an
// existing file at `path` can be a store of `kind` for this binary: SQLite, not another kind's or
// another program's (application id; with no -wal beside it, a file without our id that holds
// tables), a schema not newer than this binary's and, with no -wal beside it, no fewer bytes than
// its header counts. OK when there is no file or an empty one (OpenStore creates it); damage
// inside the file is OpenStore's to find. Errors name the file and what is wrong: InvalidArgument
// (not SQLite), FailedPrecondition (not a regular file, foreign, newer), DataLoss (truncated).
Status CheckStoreFile(DatabaseKind kind, const std::string& path);

// CheckStoreFile of both stores a run writes (the event store, then the audit ledger): the first
// refusal.
Status CheckStoreFiles(const std::string& events_path, const std::string& audit_path);

struct RetentionResult {
  int64_t scans_deleted = 0;
  int64_t instances_deleted = 0;
  int64_t states_deleted = 0;
  int64_t events_deleted = 0;
};

struct MaintenanceResult {
  bool checkpoint_busy = false;
  int64_t wal_frames = 0;           // frames in the WAL
  int64_t checkpointed_frames = 0;  // of which are now in the database
};

// Runs `sql`, a DELETE whose ?1 is `bound` and whose ?2 limits it to
// chunk_rows rows, each time in its own short transaction, until it deletes
// fewer than chunk_rows: a writer (the collector's next scan) waits for one
// chunk at most, never for a whole purge. Returns the rows deleted; what was
// deleted before an error stays deleted.
Result<int64_t> DeleteInChunks(Database& db, const std::string& sql, int64_t bound, int64_t chunk_rows);

// A world-writable directory procmond found (table writable_dirs).
struct WritableDir {
  std::string path;
  int64_t mode = 0;  // st_mode & 07777
  int64_t owner_uid = 0;
  bool operator==(const WritableDir&) const = default;
};

class EventStore {
 public:
  static Result<std::unique_ptr<EventStore>> Open(const StoreOptions& options);

  Database& db() { return *db_; }

  // Writes one completed scan; returns its scan_id.
  Result<int64_t> WriteScan(const models::ScanRecord& scan);

  // Appends real-time events to process_events, all in one transaction with
  // one prepared statement, kept across calls (prepared on first use);
  // returns how many rows were written. On error nothing of the batch is
  // written.
  Result<int64_t> WriteEvents(const std::vector<models::ProcessEvent>& events);
  // Replaces the rows of writable_dirs with `dirs` (found at `found_at_ms`),
  // in one transaction. `dirs` must hold no path under another.
  Status ReplaceWritableDirs(const std::vector<WritableDir>& dirs, int64_t found_at_ms);

  // Deletes process history and events older than retention_days, keeping
  // the latest completed scan, in DeleteInChunks' short transactions.
  // Alerts have their own policy (alertstore/retention.h).
  Result<RetentionResult> ApplyRetention(int64_t now_ms, int64_t retention_days, int64_t chunk_rows = 2000);

  // PRAGMA optimize and a passive WAL checkpoint (never blocks writers).
  Result<MaintenanceResult> Maintain();

  Status SetMetadata(const std::string& key, const std::string& value);

 private:
  explicit EventStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}

  // A keyed 128-bit digest (crypto::SipHash128, random key per process) of
  // name, exe_path and argv: what makes an instance's image. Holding it
  // instead of copies of the strings keeps the cache small (10,000
  // processes' argv are megabytes); unforgeable without the key, so a
  // rewritten argv cannot be made to collide with the old one.
  struct ImageDigest {
    uint64_t lo = 0, hi = 0;
    bool operator==(const ImageDigest&) const = default;
  };
  static ImageDigest DigestImage(const std::string& name, const std::optional<std::string>& exe_path,
                                 const std::optional<std::vector<std::string>>& argv, std::string* scratch);
  struct OpenInstance {
    int64_t instance_id;
    ImageDigest image;
    std::optional<int64_t> ppid, memory_bytes, user_id, effective_uid;
    std::optional<double> cpu_percent;
    std::optional<std::string> status, user_name;
    int64_t seen_scan = 0;  // scan_id of the last scan that saw it
    // ProcessRecord::stdio_key last written (kStdioUnknown: loaded from the
    // file), and whether the state rows carry platform_data (it changed
    // since the instance row: every later state row carries it too).
    uint64_t stdio_key = 0;
    bool pd_in_states = false;
  };
  static constexpr uint64_t kStdioUnknown = 2;  // even: never a real key
  using Key = std::pair<int64_t, int64_t>;      // pid, start_time
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()(static_cast<uint64_t>(k.first) * 0x9e3779b97f4a7c15ULL ^
                                   static_cast<uint64_t>(k.second));
    }
  };
  Status LoadOpenInstances();
  Result<int64_t> WriteScanUnchecked(const models::ScanRecord& scan);
  // The steps of WriteScanUnchecked, in one transaction (store.cc).
  struct ScanWrite;
  Result<int64_t> InsertScanRow(const models::ScanRecord& scan);
  Status WriteProcess(ScanWrite& w, const models::ProcessRecord& p);
  Status InsertInstance(ScanWrite& w, const models::ProcessRecord& p, OpenInstance& inst,
                        const ImageDigest& image);
  Status InsertState(ScanWrite& w, const models::ProcessRecord& p, OpenInstance& inst);
  static bool StdioMoved(const models::ProcessRecord& p, OpenInstance& inst);
  Status CloseExited(ScanWrite& w);
  // WriteEvents' INSERTs (one row; kEventRowsPerInsert rows), prepared once per store.
  static constexpr int kEventRowsPerInsert = 16;
  Result<Statement*> EventInsert(bool many);

  std::unique_ptr<Database> db_;
  // Declared after db_: destroyed (finalized) before the connection closes.
  std::optional<Statement> insert_event_;
  std::optional<Statement> insert_events_;
  bool cache_loaded_ = false;
  // Instances open (not yet seen to exit), updated in place by each scan.
  std::unordered_map<Key, OpenInstance, KeyHash> open_;
  std::string scratch_;  // DigestImage's buffer
};

inline constexpr int64_t kOpenScanId = INT64_MAX;

}  // namespace sentinel::storage
