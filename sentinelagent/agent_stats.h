// What the agent's main thread reports about itself (detection cycles, a
// snapshot of the dispatcher's delivery metrics, the supervised procmond),
// kept for the readers of agent.sock and the HTTP endpoint.
//
// Thread-safety: every method may be called from any thread (one mutex);
// Snapshot() returns a copy readers use without holding it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "sentinel/alerting/dispatcher.h"
#include "sentinel/base/write_health.h"
#include "sentinel/telemetry/metrics.h"
#include "sentinelagent/realtime_detector.h"
#include "sentinelagent/rule_scheduler.h"

namespace sentinel::agent {

struct AgentStatsSnapshot {
  uint64_t cycles = 0;
  uint64_t cycles_failed = 0;
  int64_t last_cycle_ms = 0;  // wall clock of the last completed cycle; 0: none yet
  int64_t last_cycle_duration_ms = 0;
  std::map<std::string, uint64_t> rule_runs_ok, rule_runs_failed;  // by rule id
  std::map<std::string, uint64_t> alerts_created;                  // by severity name
  telemetry::HistogramSnapshot rule_duration, cycle_duration;      // seconds
  WritePathState record_writes;                                    // alert and rule-run records (RecordCycle)
  alerting::DeliveryMetrics delivery;
  bool supervised = false;  // the agent supervises procmond
  pid_t collector_pid = -1;
  int64_t collector_restarts = 0;
  RealtimeStats realtime;  // the `on: exec` detector
};

class AgentStats {
 public:
  AgentStats();

  // Counts a completed cycle; `now_ms` is its wall-clock end.
  void RecordCycle(const CycleReport& report, int64_t now_ms);
  void RecordCycleFailure();
  void SetDelivery(alerting::DeliveryMetrics m);
  void SetCollector(bool supervised, pid_t pid, int64_t restarts);
  void SetRealtime(const RealtimeStats& r);
  // Alerts created outside a cycle (the real-time detector), by severity.
  void CountAlerts(const std::vector<alerting::Alert>& alerts);

  AgentStatsSnapshot Snapshot() const;

 private:
  mutable std::mutex mu_;
  AgentStatsSnapshot s_;
  telemetry::Histogram rule_duration_;
  telemetry::Histogram cycle_duration_;
  WriteHealth record_writes_;
};

}  // namespace sentinel::agent
