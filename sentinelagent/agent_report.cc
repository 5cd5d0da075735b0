#include "sentinelagent/agent_report.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

namespace sentinel::agent {

int64_t StuckCycleBoundMs(const config::DetectionConfig& d) {
  return std::max(d.rule_timeout_secs * 1000 + kStuckCycleGraceMs, 2 * d.interval_secs * 1000);
}

namespace {

// What the agent knows is wrong with itself (docs/operations.md "Health").
std::vector<std::string> SelfProblems(const SelfReportInput& in) {
  std::vector<std::string> problems;
  if (in.cycle_running_ms > in.stuck_cycle_bound_ms) {
    problems.push_back("detection cycle stuck: running for " + std::to_string(in.cycle_running_ms / 1000) +
                       " s, over the bound of " + std::to_string(in.stuck_cycle_bound_ms / 1000) +
                       " s (max(detection.rule_timeout_secs + 10 s, 2 x detection.interval_secs))");
  }
  for (const auto& [what, w] :
       {std::pair<const char*, WritePathState>{"alert record", in.stats->record_writes},
        {"delivery record", in.stats->delivery.store_writes}}) {
    if (w.failing) {
      problems.push_back(std::string(what) + " writes failing (" + std::to_string(w.failed) +
                         " failed attempts): " + w.last_error);
    }
  }
  return problems;
}

}  // namespace

health::ComponentHealth AgentComponent(const SelfReportInput& in) {
  const AgentStatsSnapshot& s = *in.stats;
  std::string detail = "pid " + std::to_string(in.pid) + ", up " + std::to_string(in.uptime_ms / 1000) +
                       " s, " + std::to_string(s.cycles) + " detection cycles";
  if (s.last_cycle_ms > 0)
    detail += ", last " + std::to_string((in.now_ms - s.last_cycle_ms) / 1000) + " s ago";
  if (s.delivery.unrecorded > 0)
    detail += ", " + std::to_string(s.delivery.unrecorded) + " alerts unrecorded";
  if (s.realtime.rules > 0) {
    detail += ", exec rules " +
              std::string(s.realtime.connected ? "woken by procmond" : "polling (procmond unreachable)") +
              ", " + std::to_string(s.realtime.lag_events()) + " events pending";
  }
  const std::vector<std::string> problems = SelfProblems(in);
  if (problems.empty()) return {"agent", "ok", detail};
  std::string text;
  for (const auto& p : problems) text += (text.empty() ? "" : "; ") + p;
  return {"agent", "unhealthy", text + " (" + detail + ")"};
}

std::vector<health::ComponentHealth> SinkComponents(const alerting::DeliveryMetrics& delivery,
                                                    const std::vector<config::SinkConfig>& sinks) {
  std::vector<health::ComponentHealth> out;
  std::set<std::string> seen;
  for (const auto& s : delivery.sinks) {
    seen.insert(s.name);
    const std::string state(alerting::CircuitStateName(s.circuit));
    out.push_back({"sink:" + s.name, s.circuit == alerting::CircuitState::kOpen ? "unhealthy" : "ok",
                   "circuit " + state + "; delivered " + std::to_string(s.delivered) + ", failed " +
                       std::to_string(s.failed) + ", dead-lettered " + std::to_string(s.dead_lettered) +
                       ", pending " + std::to_string(s.pending)});
  }
  for (const auto& s : sinks) {
    if (s.enabled && !seen.count(s.name)) {
      out.push_back({"sink:" + s.name, "unknown", "not yet reported by the delivery engine"});
    }
  }
  return out;
}

nlohmann::json SinksJson(const alerting::DeliveryMetrics& delivery, SinkDetail detail) {
  nlohmann::json sinks = nlohmann::json::object();
  for (const auto& s : delivery.sinks) {
    nlohmann::json& j = sinks[s.name];
    j = {{"delivered", s.delivered},
         {"failed", s.failed},
         {"skipped", s.skipped},
         {"dead_lettered", s.dead_lettered},
         {"circuit", std::string(alerting::CircuitStateName(s.circuit))}};
    if (detail == SinkDetail::kFull) {
      j["unknown"] = s.unknown;
      j["pending"] = s.pending;
    }
  }
  return sinks;
}

namespace {

uint64_t Sum(const std::map<std::string, uint64_t>& counts) {
  uint64_t n = 0;
  for (const auto& [_, c] : counts) n += c;
  return n;
}

}  // namespace

nlohmann::json StatsJson(const StatsInput& in) {
  const AgentStatsSnapshot& s = *in.stats;
  nlohmann::json j;
  j["uptime_ms"] = in.uptime_ms;
  j["detection_cycles"] = s.cycles;
  j["detection_cycles_failed"] = s.cycles_failed;
  j["last_cycle_duration_ms"] = s.last_cycle_duration_ms;
  j["rule_runs"] = Sum(s.rule_runs_ok);
  j["rule_runs_failed"] = Sum(s.rule_runs_failed);
  j["alerts_created"] = s.alerts_created;
  j["scan_now_requests"] = in.scan_now_requests;
  j["reload_requests"] = in.reload_requests;
  j["collector_pid"] = s.collector_pid;
  j["collector_restarts"] = s.collector_restarts;
  j["sinks"] = SinksJson(s.delivery, SinkDetail::kFull);
  j["dlq_size"] = s.delivery.dlq_size;
  j["alerts_unrecorded"] = s.delivery.unrecorded;
  j["alerts_unrecorded_suppressed"] = s.delivery.unrecorded_suppressed;
  j["alert_record_write_failures"] = s.record_writes.failed;
  j["delivery_record_write_failures"] = s.delivery.store_writes.failed;
  j["detection_cycle_running_ms"] = in.cycle_running_ms;
  j["audit_entries_dropped_total"] = in.audit_entries_dropped;
  const RealtimeStats& rt = s.realtime;
  j["realtime"] = {{"connected", rt.connected},
                   {"rules", rt.rules},
                   {"batches", rt.batches},
                   {"exec_events", rt.exec_events},
                   {"alerts", rt.alerts},
                   {"rule_failures", rt.rule_failures},
                   {"skipped_batches", rt.skipped_batches},
                   {"cursor", rt.cursor},
                   {"last_event_id", rt.last_event_id},
                   {"lag_events", rt.lag_events()},
                   {"last_batch_ms", rt.last_batch_ms}};
  return j;
}

telemetry::PeriodicSummary::Totals SummaryTotals(const AgentStatsSnapshot& s, int64_t last_scan_id,
                                                 int64_t last_event_id) {
  int64_t delivered = 0, delivery_failures = 0;
  for (const auto& sink : s.delivery.sinks) {
    delivered += static_cast<int64_t>(sink.delivered + sink.unrecorded_delivered);
    delivery_failures += static_cast<int64_t>(sink.failed + sink.unrecorded_failed);
  }
  int64_t alerts = 0;
  for (const auto& [severity, n] : s.alerts_created) alerts += static_cast<int64_t>(n);
  const auto rule_failures = static_cast<int64_t>(Sum(s.rule_runs_failed));
  const int64_t errors = static_cast<int64_t>(s.cycles_failed) + rule_failures +
                         static_cast<int64_t>(s.realtime.rule_failures) + delivery_failures;
  return {{"scans", last_scan_id},
          {"events", last_event_id},
          {"cycles", static_cast<int64_t>(s.cycles)},
          {"rule_runs", static_cast<int64_t>(Sum(s.rule_runs_ok)) + rule_failures},
          {"exec_batches", static_cast<int64_t>(s.realtime.batches)},
          {"alerts", alerts},
          {"deliveries", delivered},
          {"errors", errors}};
}

}  // namespace sentinel::agent
