// The durable side of alert delivery (SPEC §4, §7; docs/alert-delivery.md):
// what is still to be delivered (delivery_queue), every attempt
// (alert_deliveries) and what gave up (dead_letter_queue), in the event
// store. The database is the source of truth; the dispatcher's memory only
// caches it.
//
// Life of one (alert, sink) delivery:
//   EnqueueNewAlerts  queue row for every alert committed since the cursor
//   BeginAttempts     attempts+1 and an 'in_flight' attempt row, committed
//                     before anything is sent
//   FinishAttempts    the attempt row becomes success/failure/skipped; the
//                     queue row is deleted (success, dead letter) or
//                     rescheduled; a dead letter is one DLQ row per (alert,
//                     sink), updated if it fails again after a retry
//   Recover           at start: 'in_flight' rows of a crashed agent become
//                     'unknown' (the peer may have the alert)
//
// DeliveryStore owns its own read-write connection and serialises every use
// of it with a mutex: it may be called from any thread. Transactions are
// short and never span network I/O. Errors are the storage module's
// (Unavailable when the database stays locked past the busy timeout, ...).
//
// The free functions at the end are for sentinelcli and take the caller's
// connection.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/status.h"
#include "sentinel/models/severity.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::alerting {

// An enabled sink as the queue sees it.
struct SinkRoute {
  std::string name;
  std::optional<models::Severity> min_severity;
};

struct QueueEntry {
  int64_t id = 0;
  int64_t alert_id = 0;
  std::string sink;
  int attempts = 0;  // attempts made so far
  int64_t next_attempt_ms = 0;
  int64_t delivery_id = 0;  // the attempt row while in flight
};

enum class AttemptStatus { kSuccess, kFailure, kSkipped, kUnknown, kNotAttempted };
std::string_view AttemptStatusName(AttemptStatus s);  // the alert_deliveries.status value

struct AttemptOutcome {
  AttemptStatus status = AttemptStatus::kFailure;
  std::string error;
  int64_t duration_ms = 0;
  std::optional<int> http_status;
  // Failure/skipped/unknown: when to try again, or nullopt to dead-letter.
  std::optional<int64_t> next_attempt_ms;
  std::string payload;  // dead letters: the alert JSON
};

struct RecoveryReport {
  int64_t unknown = 0;                     // in-flight attempts of a previous run, now 'unknown'
  int64_t orphaned = 0;                    // pending deliveries of sinks no longer configured, dead-lettered
  std::map<std::string, int64_t> pending;  // per configured sink
};

class DeliveryStore {
 public:
  // Opens `path` read-write (it must be an event store at the latest schema:
  // open it with storage::OpenStore first).
  static Result<std::unique_ptr<DeliveryStore>> Open(const std::string& path, int64_t busy_timeout_ms);
  explicit DeliveryStore(std::unique_ptr<storage::Database> db) : db_(std::move(db)) {}

  // Queue rows for every alert above the cursor, for each route whose
  // min_severity the alert meets, and the cursor moved past them: one
  // transaction. Returns the new rows per sink.
  Result<std::map<std::string, int64_t>> EnqueueNewAlerts(const std::vector<SinkRoute>& routes,
                                                          int64_t now_ms);

  // Start-of-run repair: see the file comment. `configured` is every sink
  // name of the configuration, enabled or not; pending rows of other names
  // are dead-lettered ("sink no longer configured").
  Result<RecoveryReport> Recover(const std::set<std::string>& configured, int64_t now_ms);

  // Up to `limit` queue entries of `sink`, soonest first.
  Result<std::vector<QueueEntry>> Pending(const std::string& sink, int64_t limit);
  Result<int64_t> PendingCount(const std::string& sink);

  // Marks the start of one attempt for each entry (one transaction): fills
  // delivery_id and increments attempts in `entries`.
  Status BeginAttempts(std::vector<QueueEntry>& entries, int64_t now_ms);
  // Records the outcomes (one transaction). kNotAttempted undoes
  // BeginAttempts for an entry that was never sent.
  Status FinishAttempts(const std::vector<QueueEntry>& entries, const std::vector<AttemptOutcome>& outcomes,
                        int64_t now_ms);

  Result<Alert> LoadAlert(int64_t alert_id);
  Result<int64_t> DeadLetterCount();

 private:
  std::mutex mu_;
  std::unique_ptr<storage::Database> db_;
};

// ---- sentinelcli (the caller's connection) ----

struct DeadLetter {
  int64_t id = 0;
  int64_t alert_id = 0;
  std::string sink;
  int64_t failed_at = 0;
  int64_t attempts = 0;
  std::string last_error;
  std::optional<int64_t> retry_requested_at_ms;
  bool queued = false;  // back in delivery_queue, waiting for the agent
  std::string rule_id, severity, title;
};

// Dead letters, oldest first; `sink` "" for all.
Result<std::vector<DeadLetter>> ListDeadLetters(storage::Database& db, const std::string& sink);

struct RetryReport {
  int64_t queued = 0;          // put back into delivery_queue now
  int64_t already_queued = 0;  // waiting for the agent from an earlier retry
};

// Puts dead letters back into delivery_queue with a fresh retry budget (one
// transaction, on a read-write connection). `ids` empty means every dead
// letter (of `sink` when not ""). NotFound naming the first id that is not
// a dead letter. The entries leave the DLQ only when delivered.
Result<RetryReport> RetryDeadLetters(storage::Database& db, const std::vector<int64_t>& ids,
                                     const std::string& sink, int64_t now_ms);

}  // namespace sentinel::alerting
