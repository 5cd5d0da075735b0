// Component health (SPEC §9 `sentinelcli health`, §10 GET /health): the
// report the agent answers with, and the checks that need no running daemon
// (so sentinelcli can still report when the agent is down).
//
// Components, in this order: collector, agent, database, sink:<name> per
// enabled sink, audit. Each is "ok", "unhealthy" or "unknown" (cannot be
// told from here, e.g. a sink's circuit without the agent) with a one-line
// detail. The report is healthy only when every component is "ok".
// What "healthy" means per component is in docs/operations.md:
//   collector  procmond answers on procmond.sock and its latest scan batch
//              and event batch writes did not fail, or (procmond not
//              answering) the last completed scan is younger than
//              2.5 x collection.interval_secs
//   agent      answers on agent.sock; in the agent's own report: no detection
//              cycle running past its bound and its latest alert-record and
//              delivery-record writes did not fail
//   database   the event store opens read-only and its schema is current
//   sink:NAME  its circuit is not open
//   audit      the last kAuditTailEntries ledger entries verify (hashes and
//              chain links; signatures are `sentinelcli audit verify`'s job)
//
// Thread-safety: functions keep no shared state; each check opens its own
// read-only connection.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/config/config.h"

namespace sentinel::health {

inline constexpr int kAuditTailEntries = 64;
inline constexpr double kScanAgeFactor = 2.5;

struct ComponentHealth {
  std::string name;
  std::string status;  // ok | unhealthy | unknown
  std::string detail;
};

// A build-time feature (sentinel/base/features.h) and whether it is built.
struct FeatureState {
  std::string name;  // "audit-signing"
  bool built = false;
  friend bool operator==(const FeatureState&, const FeatureState&) = default;
};

// Every feature of this build, in the order `--version` lists them.
std::vector<FeatureState> BuildFeatures();

struct HealthReport {
  std::string source;  // "sentinelagent" or "sentinelcli" (agent not reachable)
  int64_t generated_at_ms = 0;
  std::vector<ComponentHealth> components;
  // The features of the build that made the report (JSON: "features": {"ebpf": true, ...}); a
  // report read from an agent that sent none keeps this build's.
  std::vector<FeatureState> features = BuildFeatures();
  bool healthy() const;
};

nlohmann::ordered_json HealthToJson(const HealthReport& report);
// DataLoss naming the problem when `j` is not a health report.
Result<HealthReport> HealthFromJson(const nlohmann::json& j);

// The collector: ok when `procmond_health` is a successful reply from
// procmond, else judged by the age of the last completed scan in the store.
ComponentHealth CheckCollector(const config::Config& cfg, const Result<nlohmann::json>& procmond_health,
                               int64_t now_ms);
ComponentHealth CheckDatabase(const config::DatabaseConfig& db);
ComponentHealth CheckAuditTail(const config::DatabaseConfig& db, int entries = kAuditTailEntries);

// The report sentinelcli builds on its own when the agent does not answer:
// collector (procmond asked directly, else scan age), agent unhealthy with
// `agent_error`, database, each enabled sink "unknown", audit tail.
HealthReport OfflineReport(const config::Config& cfg, const std::string& agent_error, int64_t now_ms);

}  // namespace sentinel::health
