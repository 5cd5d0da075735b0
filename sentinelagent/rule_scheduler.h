// The detection cycle of sentinelagent (SPEC §6): load the rule set, record
// it in detection_rules, run every enabled rule against the event store in
// the sandbox, and turn findings into deduplicated alerts.
//
// Rules run on a small pool of worker threads, each with its own read-only
// connection, so a slow rule (bounded by rule_timeout_secs and a VM-step
// budget) holds up one worker, never the others. Alerts and run records are
// written by the calling thread on its read-write connection, one
// transaction per rule run.
//
// Not thread-safe: one RuleScheduler is driven by one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sentinel/alerting/alert_store.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/detection/rule.h"
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

  // Runs every enabled rule once.
  Result<CycleReport> RunCycle();

  const std::vector<detection::Rule>& rules() const { return rules_; }

  // MonotonicMs() when the running RunCycle() began; 0 when none runs.
  // Thread-safe (health reads it while a cycle runs).
  int64_t CycleStartedMs() const { return cycle_started_ms_.load(); }

  // Called for each security-relevant rule event (loaded/changed/rejected):
  // the audit ledger hook. action, rule id, details.
  using AuditHook = std::function<void(const std::string&, const std::string&, const std::string&)>;
  void SetAuditHook(AuditHook hook) { audit_ = std::move(hook); }

 private:
  config::Config cfg_;
  storage::Database& rw_;
  int workers_;
  std::vector<detection::Rule> rules_;
  AuditHook audit_;
  std::atomic<int64_t> cycle_started_ms_{0};
};

}  // namespace sentinel::agent
