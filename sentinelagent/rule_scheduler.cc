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
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/rule_store.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::agent {
namespace {

using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

struct Job {
  std::size_t index;  // into rules_
  int64_t last_run_ms;
};

struct Done {
  std::size_t index;
  int64_t started_ms;
  Result<detection::RuleResult> result;
};

}  // namespace

RuleScheduler::RuleScheduler(const config::Config& cfg, storage::Database& rw, int workers)
    : cfg_(cfg), rw_(rw), workers_(std::max(1, workers)) {}

Status RuleScheduler::LoadRules(const config::Config& cfg) {
  cfg_ = cfg;
  detection::RuleSet set = detection::LoadRuleSet(cfg.detection.builtin_rules, cfg.detection.rules_dirs);
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
  for (const auto& c : changes) {
    const std::string action = c.change == detection::SyncChange::kAdded ? "rule_loaded" : "rule_changed";
    LogInfo("rule " + std::string(detection::SyncChangeName(c.change)),
            {{"rule", c.id}, {"version", c.version}, {"checksum", c.checksum}});
    if (audit_) {
      audit_(action, c.id,
             std::string(detection::SyncChangeName(c.change)) + " version " + std::to_string(c.version) +
                 " checksum " + c.checksum);
    }
  }
  rules_ = std::move(valid);
  LogInfo("rules loaded", {{"rules", rules_.size()}, {"problems", set.problems.size()}});
  return Status::Ok();
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

  std::deque<Job> jobs;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (!detection::EffectiveEnabled(rules_[i], states)) continue;
    auto it = states.find(rules_[i].id);
    const int64_t last = it == states.end() ? 0 : it->second.last_run_ms.value_or(0);
    jobs.push_back({i, last});
  }
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

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Done> done;
  std::atomic<bool> stop{false};
  // The live worker of each thread, for killing them all at shutdown.
  std::vector<detection::QueryWorker*> live;
  const std::size_t total = jobs.size();
  const int nworkers = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(workers_), total));
  std::vector<std::thread> threads;
  for (int w = 0; w < nworkers; ++w) {
    threads.emplace_back([&] {
      std::unique_ptr<detection::QueryWorker> worker;
      auto forget = [&] {
        if (!worker) return;
        std::lock_guard<std::mutex> lock(mu);
        live.erase(std::remove(live.begin(), live.end(), worker.get()), live.end());
      };
      while (true) {
        Job job;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (jobs.empty() || stop) break;
          job = jobs.front();
          jobs.pop_front();
        }
        // A Result holds a value or an error, never an OK status (asserted in debug builds).
        Done d{job.index, NowMs(), InternalError("rule not run")};
        if (!worker || !worker->usable()) {
          // A worker killed at a deadline (or dead) is replaced.
          forget();
          worker.reset();
          auto started = detection::QueryWorker::Start(setup);
          if (started.ok()) {
            worker = std::move(*started);
            std::lock_guard<std::mutex> lock(mu);
            if (stop) worker->Cancel();
            live.push_back(worker.get());
          } else {
            d.result = Status(started.status().code(), "query worker: " + started.status().message());
          }
        }
        if (worker) {
          detection::RunParams params = base;
          params.last_run_ms = job.last_run_ms;
          d.result = worker->RunRule(rules_[job.index], params, limits);
        }
        std::lock_guard<std::mutex> lock(mu);
        done.push_back(std::move(d));
        cv.notify_one();
      }
      forget();
    });
  }

  bool stopped = false;
  Status first_error = Status::Ok();
  for (std::size_t handled = 0; handled < total; ++handled) {
    Done d{0, 0, InternalError("rule not run")};
    {
      std::unique_lock<std::mutex> lock(mu);
      while (done.empty() && !stopped) {
        cv.wait_for(lock, std::chrono::milliseconds(100));
        if (done.empty() && stop_check_ && stop_check_()) {
          // Shutdown: nothing waits for a rule still running. Rules not
          // finished are not recorded as run.
          stopped = true;
          stop = true;
          for (auto* w : live) w->Cancel();
        }
      }
      if (stopped) break;
      d = std::move(done.front());
      done.pop_front();
    }
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
      auto rec = alerting::RecordFindings(rw_, rule, version, *d.result, base.scan_id, NowMs(),
                                          cfg_.alerting.dedup_window_secs * 1000);
      if (rec.ok()) {
        run.alerts = static_cast<int64_t>(rec->created.size());
        run.suppressed = rec->suppressed;
        for (auto& a : rec->created) report.alerts.push_back(std::move(a));
        ++report.record_writes_ok;
        if (!rec->created.empty() && alerts_committed_) alerts_committed_();
      } else {
        run.status = rec.status();
        error = "storing alerts: " + rec.status().message();
        if (first_error.ok()) first_error = rec.status();
        ++report.record_writes_failed;
        report.record_error = error;
        // Not stored, still delivered (from memory) by the caller.
        for (auto& a : alerting::CandidateAlerts(rw_, rule, version, *d.result, base.scan_id, NowMs(),
                                                 cfg_.alerting.dedup_window_secs * 1000)) {
          report.unrecorded.push_back(std::move(a));
        }
      }
      if (run.truncated) {
        LogWarn("rule findings truncated", {{"rule", rule.id}, {"kept", run.findings}});
      }
    } else {
      run.status = d.result.status();
      error = d.result.status().message();
      run.duration_ms = NowMs() - d.started_ms;
    }
    if (!run.status.ok()) ++report.failed;
    Status rs = detection::RecordRuleRun(rw_, rule.id, d.started_ms, run.duration_ms, error);
    if (!rs.ok()) {
      LogError("recording a rule run failed", {{"rule", rule.id}, {"error", rs.message()}});
      ++report.record_writes_failed;
      report.record_error = "recording a rule run: " + rs.message();
    } else {
      ++report.record_writes_ok;
    }
    if (run.status.ok()) {
      LogInfo("rule run", {{"rule", rule.id},
                           {"duration_ms", run.duration_ms},
                           {"findings", run.findings},
                           {"alerts", run.alerts},
                           {"suppressed", run.suppressed}});
    } else {
      LogError("rule run failed", {{"rule", rule.id}, {"duration_ms", run.duration_ms}, {"error", error}});
    }
    report.runs.push_back(std::move(run));
  }
  stop = true;
  for (auto& t : threads) t.join();
  report.duration_ms = MonotonicMs() - cycle_start;
  report.stopped = stopped;
  return report;
}

}  // namespace sentinel::agent
