#include "sentinelagent/rule_scheduler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "sentinel/base/time.h"
#include "sentinel/config/fleet_dirs.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/rule_store.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::agent {

using telemetry::LogDebug;
using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

struct RuleScheduler::Job {
  std::size_t index;  // into rules_
  int64_t last_run_ms;
};

struct RuleScheduler::Done {
  std::size_t index;
  int64_t started_ms;
  Result<detection::RuleResult> result;
};

using Job = RuleScheduler::Job;
using Done = RuleScheduler::Done;

RuleScheduler::RuleScheduler(const config::Config& cfg, storage::Database& rw, int workers)
    : cfg_(cfg), rw_(rw), workers_(std::max(1, workers)) {}

Status RuleScheduler::LoadRules(const config::Config& cfg) {
  cfg_ = cfg;
  detection::RuleSet set =
      detection::LoadRuleSet(cfg.detection.builtin_rules, config::RuleDirsWithFleet(cfg));
  for (const auto& dir : set.missing_dirs) {
    LogInfo("rule directory does not exist; no user rules from it", {{"dir", dir}});
  }
  for (const auto& p : set.problems) {
    LogError("rule rejected", {{"file", p.path}, {"error", p.status.message()}});
    if (audit_) audit_("rule_rejected", p.path, p.status.message());
  }
  // Validated as they run: the current schema with the cycle's snapshot.
  ASSIGN_OR_RETURN(auto schema, detection::OpenSchemaOnlyEventStore());
  std::vector<detection::Rule> valid;
  for (auto& r : set.rules) {
    Status s = detection::ValidateRuleQuery(*schema, r);
    if (!s.ok()) {
      LogError("rule rejected", {{"rule", r.id}, {"file", r.source_path}, {"error", s.message()}});
      if (audit_) audit_("rule_rejected", r.id, s.message());
      continue;
    }
    valid.push_back(std::move(r));
  }
  ASSIGN_OR_RETURN(auto changes, detection::SyncRules(rw_, valid, NowMs()));
  std::map<detection::SyncChange, int64_t> counts;
  for (const auto& c : changes) {
    const std::string action = c.change == detection::SyncChange::kAdded ? "rule_loaded" : "rule_changed";
    ++counts[c.change];
    // Counted in "rules loaded"; each one is in the audit ledger.
    LogDebug("rule " + std::string(detection::SyncChangeName(c.change)),
             {{"rule", c.id}, {"version", c.version}, {"checksum", c.checksum}});
    if (audit_) {
      audit_(action, c.id,
             std::string(detection::SyncChangeName(c.change)) + " version " + std::to_string(c.version) +
                 " checksum " + c.checksum);
    }
  }
  rules_ = std::move(valid);
  LogInfo("rules loaded", {{"rules", rules_.size()},
                           {"added", counts[detection::SyncChange::kAdded]},
                           {"changed", counts[detection::SyncChange::kVersionBumped] +
                                           counts[detection::SyncChange::kUpdated]},
                           {"removed", counts[detection::SyncChange::kRemoved]},
                           {"problems", set.problems.size()}});
  return Status::Ok();
}

namespace {

// The threads of one cycle: each takes rules from `jobs`, runs them in a
// query worker of its own (replacing a worker killed at a deadline or dead)
// and hands back the results; Next() takes them on the cycle's thread.
class WorkerPool {
 public:
  WorkerPool(const std::vector<detection::Rule>& rules, std::deque<Job> jobs, detection::WorkerSetup setup,
             detection::RunLimits limits, detection::RunParams base, std::size_t threads)
      : rules_(rules),
        jobs_(std::move(jobs)),
        setup_(std::move(setup)),
        limits_(limits),
        base_(std::move(base)) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerPool() { Finish(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // The next finished rule, or nullopt when `stop_check` turned true first:
  // then nothing waits for a rule still running (its worker is killed).
  std::optional<Done> Next(const std::function<bool()>& stop_check) {
    std::unique_lock<std::mutex> lock(mu_);
    while (done_.empty()) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (done_.empty() && stop_check && stop_check()) {
        stop_ = true;
        for (auto* w : live_) w->Cancel();
        return std::nullopt;
      }
    }
    Done d = std::move(done_.front());
    done_.pop_front();
    return d;
  }

  // Stops handing out rules and joins the threads.
  void Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  bool TakeJob(Job* job) {
    std::lock_guard<std::mutex> lock(mu_);
    if (jobs_.empty() || stop_) return false;
    *job = jobs_.front();
    jobs_.pop_front();
    return true;
  }

  void Forget(detection::QueryWorker* worker) {
    if (worker == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(std::remove(live_.begin(), live_.end(), worker), live_.end());
  }

  // A usable worker in `worker`, or the reason there is none in d->result.
  void EnsureWorker(std::unique_ptr<detection::QueryWorker>& worker, Done* d) {
    if (worker && worker->usable()) return;
    Forget(worker.get());
    worker.reset();
    auto started = detection::QueryWorker::Start(setup_);
    if (!started.ok()) {
      d->result = Status(started.status().code(), "query worker: " + started.status().message());
      return;
    }
    worker = std::move(*started);
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) worker->Cancel();
    live_.push_back(worker.get());
  }

  void Loop() {
    std::unique_ptr<detection::QueryWorker> worker;
    // The Sigma prefilter of every rule over the cycle's exec_events
    // (decision 70; every worker of a cycle holds the same snapshot), asked
    // once per thread: a rule it rules out has no findings and is neither
    // compiled nor run. Empty when the request failed: every rule runs.
    std::vector<bool> candidates;
    bool asked = false;
    Job job{};
    while (TakeJob(&job)) {
      // A Result holds a value or an error, never an OK status (asserted in debug builds).
      Done d{job.index, NowMs(), InternalError("rule not run")};
      EnsureWorker(worker, &d);
      if (worker && !asked) {
        asked = true;
        auto c = worker->SigmaCandidates(rules_, limits_.guard.timeout_ms);
        candidates = c.ok() ? std::move(*c) : std::vector<bool>();
        if (!worker->usable()) EnsureWorker(worker, &d);
      }
      if (worker && job.index < candidates.size() && !candidates[job.index]) {
        d.result = detection::RuleResult{};
      } else if (worker) {
        detection::RunParams params = base_;
        params.last_run_ms = job.last_run_ms;
        d.result = worker->RunRule(rules_[job.index], params, limits_);
      }
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(d));
      cv_.notify_one();
    }
    Forget(worker.get());
  }

  const std::vector<detection::Rule>& rules_;
  std::deque<Job> jobs_;
  const detection::WorkerSetup setup_;
  const detection::RunLimits limits_;
  const detection::RunParams base_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Done> done_;
  bool stop_ = false;
  // The live worker of each thread, for killing them all at shutdown.
  std::vector<detection::QueryWorker*> live_;
  std::vector<std::thread> threads_;
};

void LogRun(const RuleRunReport& run, const std::string& error) {
  if (run.status.ok()) {
    // Counted in the agent's summary line; one per rule per cycle is debug.
    LogDebug("rule run", {{"rule", run.rule_id},
                          {"duration_ms", run.duration_ms},
                          {"findings", run.findings},
                          {"alerts", run.alerts},
                          {"suppressed", run.suppressed}});
  } else {
    LogError("rule run failed", {{"rule", run.rule_id}, {"duration_ms", run.duration_ms}, {"error", error}});
  }
}

}  // namespace

std::map<std::string, std::string> RuleScheduler::ExecRuleSignature(const RuleStates& states) const {
  std::map<std::string, std::string> out;
  for (const auto& r : rules_) {
    if (r.on == detection::RuleTrigger::kExec && detection::EffectiveEnabled(r, states))
      out[r.id] = r.Checksum();
  }
  return out;
}

std::deque<Job> RuleScheduler::EnabledJobs(const RuleStates& states) const {
  std::deque<Job> jobs;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (!detection::EffectiveEnabled(rules_[i], states)) continue;
    auto it = states.find(rules_[i].id);
    const int64_t last = it == states.end() ? 0 : it->second.last_run_ms.value_or(0);
    jobs.push_back({i, last});
  }
  return jobs;
}

// The findings of a successful run as alerts (deduplicated, one transaction);
// when the store refuses them, as unrecorded alerts the caller delivers from memory.
std::string RuleScheduler::StoreFindings(const detection::Rule& rule, int64_t version,
                                         const detection::RuleResult& result, std::optional<int64_t> scan_id,
                                         RuleRunReport& run, CycleReport& report) {
  const int64_t dedup_ms = cfg_.alerting.dedup_window_secs * 1000;
  auto rec = alerting::RecordFindings(rw_, rule, version, result, scan_id, NowMs(), dedup_ms);
  if (!rec.ok()) {
    run.status = rec.status();
    ++report.record_writes_failed;
    report.record_error = "storing alerts: " + rec.status().message();
    // Not stored, still delivered (from memory) by the caller.
    for (auto& a : alerting::CandidateAlerts(rw_, rule, version, result, scan_id, NowMs(), dedup_ms)) {
      report.unrecorded.push_back(std::move(a));
    }
    return report.record_error;
  }
  run.alerts = static_cast<int64_t>(rec->created.size());
  run.suppressed = rec->suppressed;
  for (auto& a : rec->created) report.alerts.push_back(std::move(a));
  ++report.record_writes_ok;
  if (!rec->created.empty() && alerts_committed_) alerts_committed_();
  return "";
}

RuleRunReport RuleScheduler::RecordRun(Done& d, const RuleStates& states, std::optional<int64_t> scan_id,
                                       CycleReport& report) {
  const detection::Rule& rule = rules_[d.index];
  RuleRunReport run;
  run.rule_id = rule.id;
  std::string error;
  if (d.result.ok()) {
    run.duration_ms = d.result->duration_ms;
    run.findings = static_cast<int64_t>(d.result->rows.size());
    run.truncated = d.result->truncated;
    auto st = states.find(rule.id);
    const int64_t version = st == states.end() ? 1 : st->second.version;
    error = StoreFindings(rule, version, *d.result, scan_id, run, report);
    if (run.truncated) LogWarn("rule findings truncated", {{"rule", rule.id}, {"kept", run.findings}});
  } else {
    run.status = d.result.status();
    error = d.result.status().message();
    run.duration_ms = NowMs() - d.started_ms;
  }
  if (!run.status.ok()) ++report.failed;
  if (Status rs = detection::RecordRuleRun(rw_, rule.id, d.started_ms, run.duration_ms, error); !rs.ok()) {
    LogError("recording a rule run failed", {{"rule", rule.id}, {"error", rs.message()}});
    ++report.record_writes_failed;
    report.record_error = "recording a rule run: " + rs.message();
  } else {
    ++report.record_writes_ok;
  }
  LogRun(run, error);
  return run;
}

Result<CycleReport> RuleScheduler::RunCycle() {
  CycleReport report;
  const int64_t cycle_start = MonotonicMs();
  cycle_started_ms_ = cycle_start;
  struct Idle {
    std::atomic<int64_t>& started;
    ~Idle() { started = 0; }
  } idle{cycle_started_ms_};
  ASSIGN_OR_RETURN(auto states, detection::ReadRuleStates(rw_));
  detection::RunParams base;
  base.now_ms = NowMs();
  RETURN_IF_ERROR(detection::FillScanIds(rw_, &base));
  std::deque<Job> jobs = EnabledJobs(states);
  if (jobs.empty()) return report;

  detection::RunLimits limits;
  limits.guard.timeout_ms = cfg_.detection.rule_timeout_secs * 1000;
  detection::WorkerSetup setup;
  setup.database_path = cfg_.database.path;
  setup.busy_timeout_ms = cfg_.database.busy_timeout_ms;
  // Every rule of the cycle sees the scan :scan_id names.
  setup.rule_snapshot = true;
  setup.scan_id = base.scan_id;
  setup.start_timeout_ms = limits.guard.timeout_ms + cfg_.database.busy_timeout_ms;
  // Exec rules judge only what changed since the scan they all judged last
  // (decision 71), while the exec rules are those that judged it.
  const std::map<std::string, std::string> exec_rules = ExecRuleSignature(states);
  if (exec_base_scan_ && base.scan_id && *exec_base_scan_ <= *base.scan_id &&
      exec_rules == exec_base_rules_) {
    setup.exec_since_scan = exec_base_scan_;
  }

  const std::size_t total = jobs.size();
  const std::optional<int64_t> scan_id = base.scan_id;
  WorkerPool pool(rules_, std::move(jobs), std::move(setup), limits, std::move(base),
                  std::min<std::size_t>(static_cast<std::size_t>(workers_), total));
  for (std::size_t handled = 0; handled < total; ++handled) {
    std::optional<Done> d = pool.Next(stop_check_);
    if (!d) {
      // Shutdown: rules not finished are not recorded as run.
      report.stopped = true;
      break;
    }
    report.runs.push_back(RecordRun(*d, states, scan_id, report));
  }
  pool.Finish();
  // The next cycle's base: this scan, when every exec rule judged all of it
  // (a run whose findings were cut at max_rows did not).
  bool exec_all_ok = !report.stopped && scan_id.has_value();
  std::size_t exec_runs = 0;
  for (const auto& run : report.runs) {
    if (!exec_rules.contains(run.rule_id)) continue;
    ++exec_runs;
    exec_all_ok = exec_all_ok && run.status.ok() && !run.truncated;
  }
  if (exec_all_ok && exec_runs == exec_rules.size()) {
    exec_base_scan_ = scan_id;
    exec_base_rules_ = exec_rules;
  } else {
    exec_base_scan_.reset();
    exec_base_rules_.clear();
  }
  report.duration_ms = MonotonicMs() - cycle_start;
  return report;
}

}  // namespace sentinel::agent
