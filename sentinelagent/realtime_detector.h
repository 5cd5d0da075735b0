// The agent's real-time detector (SPEC §12, docs/realtime.md "Detection"):
// evaluates every enabled `on: exec` rule over each new batch of exec events
// soon after procmond commits it.
//
// Where it stands is persisted per rule in detection_cursors (the highest
// process_events.id the rule has evaluated). A batch is (cursor, next] of
// process_events ids, at most chunk_events ids: the events are loaded into
// the query worker's `exec_events`, the rules run there (sandboxed, like
// scan rules), and the batch's alerts of every rule and the advance of those
// rules' cursors commit in one transaction on the detector's own read-write
// connection. A SIGKILL at any point therefore loses nothing and repeats
// nothing: every exec is evaluated by every enabled exec rule exactly once.
// Rules at different cursors (a rule added later, one that failed) are
// evaluated in groups, lowest cursor first, until they meet.
//
// A rule seen without a cursor starts after the events stamped before
// (now - interval_ms), i.e. one scan interval back: a new rule does not
// replay the whole history, and a first start catches what the previous
// interval's scan rules would have seen. A rule that fails on a batch is
// retried on the next wake-up; after kMaxRuleFailures failures in a row on
// the same batch its cursor moves past it (logged as an error, counted).
//
// Wake-up: a subscription to procmond.sock ("subscribe_events"); after a
// notice the detector evaluates at most batch_ms later (several notices in
// that time make one batch). While procmond is unreachable it retries the
// connection every second and evaluates what is pending each time (the only
// timer; an idle host with procmond up costs no wake-up at all).
//
// Thread-safety: Start/Stop/CatchUp from the owning thread; SetRules and
// Stats from any thread. The alerts hook runs on the detector's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/files.h"
#include "sentinel/base/status.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/rule.h"
#include "sentinel/detection/rule_store.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::agent {

struct RealtimeOptions {
  std::string database_path;
  int64_t busy_timeout_ms = 5000;
  std::string procmond_socket;   // ipc.socket_dir/procmond.sock
  int64_t batch_ms = 250;        // detection.realtime_batch_ms
  int64_t interval_ms = 30'000;  // detection.interval_secs: where a rule without a cursor starts
  int64_t rule_timeout_ms = 30'000;
  int64_t dedup_window_ms = 3'600'000;
  int64_t chunk_events = 5000;  // process_events ids per batch (bounded catch-up)
  int64_t reconnect_ms = 1000;
};

inline constexpr int kMaxRuleFailures = 3;

struct RealtimeStats {
  bool connected = false;        // subscribed to procmond.sock
  uint64_t notices = 0;          // events_written notices received
  uint64_t batches = 0;          // batches committed
  uint64_t exec_events = 0;      // exec events evaluated (rows of exec_events, per batch)
  uint64_t alerts = 0;           // alerts created
  uint64_t rule_failures = 0;    // rule runs that failed on a batch
  uint64_t skipped_batches = 0;  // batches a rule gave up on after kMaxRuleFailures
  int64_t cursor = 0;            // lowest cursor of the enabled exec rules
  int64_t last_event_id = 0;     // highest process_events.id seen
  int64_t last_batch_ms = 0;     // wall clock of the last committed batch
  int64_t rules = 0;             // enabled exec rules
  int64_t lag_events() const { return last_event_id > cursor ? last_event_id - cursor : 0; }
};

class RealtimeDetector {
 public:
  using AlertsHook = std::function<void(const std::vector<alerting::Alert>&)>;

  RealtimeDetector(RealtimeOptions options, AlertsHook on_alerts);
  ~RealtimeDetector();  // Stop()
  RealtimeDetector(const RealtimeDetector&) = delete;
  RealtimeDetector& operator=(const RealtimeDetector&) = delete;

  // Opens the detector's read-write connection to the event store.
  Status Open();
  // SIGHUP: batch_ms, interval_ms, rule_timeout_ms and dedup_window_ms of
  // `o` apply from the next batch (the store and socket paths need a restart).
  void Reconfigure(const RealtimeOptions& o);
  // The loaded rules; only `on: exec` ones are kept. Wakes the thread.
  void SetRules(const std::vector<detection::Rule>& rules);
  // Starts the detector's thread (subscription, batches).
  Status Start();
  // Stops the thread; a batch in progress is abandoned uncommitted (its
  // query worker killed): it is evaluated again at the next start.
  void Stop();
  // Evaluates every pending exec event now, on the calling thread, in
  // batches (--once, tests). Not while the thread runs.
  Status CatchUp();

  RealtimeStats Stats() const;

 private:
  struct Group;
  Status ReadPlan(Group* g, std::map<std::string, int64_t>* cursors,
                  std::vector<const detection::Rule*>* rules);
  void Loop();
  // One batch of the lowest-cursor group; false when nothing is pending.
  Result<bool> Step();
  Result<bool> PlanGroup(Group* group);
  Status LoadBatch(Group& group);
  Status EvaluateGroup(Group& group);
  bool GiveUp(const std::string& id, const Status& error, const Group& group);
  Status Commit(Group& group, const std::vector<Result<detection::RuleResult>>& results);
  Status EnsureWorker(std::optional<int64_t> scan_id);
  // Waits for a notice, a wake-up or the reconnect timer.
  void Wait();
  void TryConnect();

  RealtimeOptions opts_;
  std::atomic<int64_t> batch_ms_{0}, interval_ms_{0}, rule_timeout_ms_{0}, dedup_window_ms_{0};
  AlertsHook on_alerts_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<detection::QueryWorker> worker_;
  std::unique_ptr<ipc::Subscription> sub_;
  int64_t next_connect_ms_ = 0;
  // The first warning that procmond.sock is unreachable waits this long after Start().
  static constexpr int64_t kConnectLogGraceMs = 10'000;
  int64_t next_connect_log_ms_ = 0;
  int64_t last_eval_ms_ = 0;
  std::map<std::string, int> failures_;  // rule id -> failures in a row on its current batch

  mutable std::mutex mu_;  // rules_, stats_
  // Replaced whole by SetRules, never changed in place: a batch holds the
  // set it started with without copying it.
  std::shared_ptr<const std::vector<detection::Rule>> rules_ =
      std::make_shared<std::vector<detection::Rule>>();
  RealtimeStats stats_;

  UniqueFd wake_fd_;  // eventfd: Stop() and SetRules() wake the thread
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace sentinel::agent
