// GET /metrics of the agent: the Prometheus text (format 0.0.4, every name
// prefixed sentinel_) built from a snapshot of what the agent knows. A pure
// function: the caller gathers the inputs (agent_stats.h, store_stats.h,
// procmond's `stats` over its control socket), so the text is checked alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sentinelagent/agent_stats.h"
#include "sentinelagent/store_stats.h"

namespace sentinel::agent {

struct MetricsInput {
  std::string version;
  int64_t uptime_ms = 0;
  int64_t audit_entries_dropped = 0;
  int64_t cycle_running_ms = 0;  // of the cycle in progress; 0 when none runs
  int64_t stuck_cycle_bound_ms = 0;
  AgentStatsSnapshot stats;
  // The `result` of procmond's `stats` answer; nullopt when procmond did not answer.
  std::optional<nlohmann::json> procmond_stats;
  // nullopt when the event store does not open.
  std::optional<StoreStats> store;
};

std::string RenderMetrics(const MetricsInput& in);

}  // namespace sentinel::agent
