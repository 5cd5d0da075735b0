#include "sentinelagent/agent_stats.h"

#include "sentinel/detection/rule.h"

namespace sentinel::agent {

AgentStats::AgentStats()
    : rule_duration_(telemetry::DurationBuckets()), cycle_duration_(telemetry::DurationBuckets()) {}

void AgentStats::RecordCycle(const CycleReport& report, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  ++s_.cycles;
  s_.last_cycle_ms = now_ms;
  s_.last_cycle_duration_ms = report.duration_ms;
  cycle_duration_.Observe(static_cast<double>(report.duration_ms) / 1000.0);
  for (const auto& r : report.runs) {
    ++(r.status.ok() ? s_.rule_runs_ok : s_.rule_runs_failed)[r.rule_id];
    rule_duration_.Observe(static_cast<double>(r.duration_ms) / 1000.0);
  }
  for (const auto& a : report.alerts) ++s_.alerts_created[std::string(models::SeverityName(a.severity))];
  if (report.record_writes_failed > 0) {
    record_writes_.Failed(report.record_error);
  } else if (report.record_writes_ok > 0) {
    record_writes_.Ok();
  }
}

void AgentStats::RecordCycleFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++s_.cycles_failed;
}

void AgentStats::SetDelivery(alerting::DeliveryMetrics m) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.delivery = std::move(m);
}

void AgentStats::SetCollector(bool supervised, pid_t pid, int64_t restarts) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.supervised = supervised;
  s_.collector_pid = pid;
  s_.collector_restarts = restarts;
}

void AgentStats::SetRealtime(const RealtimeStats& r) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.realtime = r;
}

void AgentStats::CountAlerts(const std::vector<alerting::Alert>& alerts) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& a : alerts) ++s_.alerts_created[std::string(models::SeverityName(a.severity))];
}

AgentStatsSnapshot AgentStats::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  AgentStatsSnapshot out = s_;
  out.rule_duration = rule_duration_.Snapshot();
  out.cycle_duration = cycle_duration_.Snapshot();
  out.record_writes = record_writes_.Get();
  return out;
}

}  // namespace sentinel::agent
