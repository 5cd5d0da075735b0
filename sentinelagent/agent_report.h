// The agent's own part of `health` and its `stats` (agent.sock, GET /health;
// docs/operations.md "Health") and the counts of its summary log line, as
// pure functions of a stats snapshot: the caller (AgentOps, Agent) adds what
// it asks procmond and reads from the stores.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/config/config.h"
#include "sentinel/health/health.h"
#include "sentinel/telemetry/summary.h"
#include "sentinelagent/agent_stats.h"

namespace sentinel::agent {

// A detection cycle running longer than this is stuck (health "agent"
// unhealthy): max(detection.rule_timeout_secs + kStuckCycleGraceMs,
// 2 x detection.interval_secs). docs/operations.md "Health".
inline constexpr int64_t kStuckCycleGraceMs = 10'000;
int64_t StuckCycleBoundMs(const config::DetectionConfig& d);

struct SelfReportInput {
  pid_t pid = 0;
  int64_t uptime_ms = 0;
  int64_t now_ms = 0;            // wall clock
  int64_t cycle_running_ms = 0;  // of the cycle in progress; 0 when none runs
  int64_t stuck_cycle_bound_ms = 0;
  const AgentStatsSnapshot* stats = nullptr;
};

// The "agent" component: ok with what it has done, or unhealthy naming each
// thing wrong (a stuck cycle, failing alert or delivery record writes).
health::ComponentHealth AgentComponent(const SelfReportInput& in);

// One "sink:<name>" component per sink the dispatcher reports, and
// "unknown" for each enabled sink of `sinks` it does not report yet.
std::vector<health::ComponentHealth> SinkComponents(const alerting::DeliveryMetrics& delivery,
                                                    const std::vector<config::SinkConfig>& sinks);

// Each sink's delivery counters by name: delivered, failed, skipped,
// dead_lettered and circuit; kFull adds unknown and pending (agent.sock
// `stats`), kSummary is the agent's closing log line.
enum class SinkDetail { kSummary, kFull };
nlohmann::json SinksJson(const alerting::DeliveryMetrics& delivery, SinkDetail detail);

struct StatsInput {
  int64_t uptime_ms = 0;
  int64_t cycle_running_ms = 0;
  uint64_t scan_now_requests = 0;
  uint64_t reload_requests = 0;
  int64_t audit_entries_dropped = 0;
  const AgentStatsSnapshot* stats = nullptr;
};

// agent.sock `stats`.
nlohmann::json StatsJson(const StatsInput& in);

// What the agent's periodic summary line counts (telemetry/summary.h), as
// running totals: `scans` and `events` are the highest completed scan id and
// process_events id (both only grow, whatever retention deletes); `cycles`
// and `rule_runs` the scheduled detection; `exec_batches` the batches of exec
// events the real-time detector evaluated; `alerts` created on either path;
// `deliveries` successful attempts over every sink; `errors` failed cycles,
// failed rule runs (scheduled and on exec batches) and failed delivery
// attempts (each also logged where it happened).
telemetry::PeriodicSummary::Totals SummaryTotals(const AgentStatsSnapshot& stats, int64_t last_scan_id,
                                                 int64_t last_event_id);

}  // namespace sentinel::agent
