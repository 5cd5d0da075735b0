// The detection cycle of sentinelagent (SPEC §6): load the rule set, record
// it in detection_rules, run every enabled rule against the event store in
// the sandbox, and turn findings into deduplicated alerts.
//
// Rules run in query worker processes (detection/query_worker.h), driven
// by a small pool of threads: each worker opens the store read-only, builds
// the cycle's frozen snapshot and runs rules under a seccomp filter. A rule
// still running at rule_timeout_secs gets its worker SIGKILLed (whatever
// SQLite is doing inside one step); that rule fails with DeadlineExceeded
// and the next rules run on a fresh worker. Alerts and run records are
// written by the calling thread on its read-write connection, one
// transaction per rule run.
//
// Not thread-safe: one RuleScheduler is driven by one thread (except
// CycleStartedMs, which any thread may read).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/detection/rule.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/rule_store.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::agent {

struct RuleRunReport {
  std::string rule_id;
  int64_t duration_ms = 0;
  int64_t findings = 0;
  int64_t alerts = 0;
  int64_t suppressed = 0;
  bool truncated = false;
  Status status;
};

struct CycleReport {
  std::vector<RuleRunReport> runs;
  std::vector<alerting::Alert> alerts;  // created this cycle
  // Alerts whose store write failed (id 0): delivered from memory by the
  // caller (Dispatcher::DeliverUnrecorded), counted as unrecorded.
  std::vector<alerting::Alert> unrecorded;
  // Writes of alert and rule-run records this cycle; the last error.
  int64_t record_writes_ok = 0, record_writes_failed = 0;
  std::string record_error;
  int64_t duration_ms = 0;
  int64_t failed = 0;
  // Ended early by the stop check (shutdown): the rules not finished are
  // neither in `runs` nor recorded as run.
  bool stopped = false;
};

class RuleScheduler {
 public:
  // `rw` is the agent's read-write connection to the event store; worker
  // connections are opened read-only on cfg.database.path.
  RuleScheduler(const config::Config& cfg, storage::Database& rw, int workers);

  // (Re)loads rules from the built-ins and detection.rules_dirs, validates
  // each query against the store's schema (a rejected rule is logged, skipped
  // and recorded) and syncs detection_rules. Logs every added, changed,
  // removed or rejected rule.
  Status LoadRules(const config::Config& cfg);

  // Runs every enabled rule once. When the stop check (SetStopCheck) turns
  // true during the cycle, the workers are killed at once and the report
  // of what finished comes back with `stopped` set.
  Result<CycleReport> RunCycle();

  // Called on the cycle's thread right after a rule's new alerts are
  // committed, so delivery need not wait for the end of the cycle.
  void SetAlertsCommittedHook(std::function<void()> hook) { alerts_committed_ = std::move(hook); }

  // Polled (every ~100 ms) while a cycle waits for its rules: shutdown.
  void SetStopCheck(std::function<bool()> check) { stop_check_ = std::move(check); }

  // MonotonicMs() at which the cycle in progress started; 0 when idle.
  // Thread-safe (health reads it to spot a stuck cycle).
  int64_t CycleStartedMs() const { return cycle_started_ms_.load(); }

  const std::vector<detection::Rule>& rules() const { return rules_; }

  // Called for each security-relevant rule event (loaded/changed/rejected):
  // the audit ledger hook. action, rule id, details.
  using AuditHook = std::function<void(const std::string&, const std::string&, const std::string&)>;
  void SetAuditHook(AuditHook hook) { audit_ = std::move(hook); }

  struct Job;   // a rule to run this cycle
  struct Done;  // a rule's outcome, from a worker thread

 private:
  using RuleStates = std::map<std::string, detection::RuleState>;
  std::deque<Job> EnabledJobs(const RuleStates& states) const;
  // Enabled exec rules: id -> checksum.
  std::map<std::string, std::string> ExecRuleSignature(const RuleStates& states) const;
  // Records one finished rule (alerts, run record, log); its report.
  RuleRunReport RecordRun(Done& d, const RuleStates& states, std::optional<int64_t> scan_id,
                          CycleReport& report);
  // The error text of the run ("" when the alerts were stored).
  std::string StoreFindings(const detection::Rule& rule, int64_t version, const detection::RuleResult& result,
                            std::optional<int64_t> scan_id, RuleRunReport& run, CycleReport& report);

  config::Config cfg_;
  storage::Database& rw_;
  int workers_;
  std::vector<detection::Rule> rules_;
  AuditHook audit_;
  std::function<bool()> stop_check_;
  std::function<void()> alerts_committed_;
  // The scan every exec rule of exec_base_rules_ judged in full or in its
  // changes (decision 71): the next cycle's exec rules see only the
  // processes changed since. Reset when a cycle's exec rules did not all
  // run, so the next cycle judges every process.
  std::optional<int64_t> exec_base_scan_;
  std::map<std::string, std::string> exec_base_rules_;
  std::atomic<int64_t> cycle_started_ms_{0};
};

}  // namespace sentinel::agent
