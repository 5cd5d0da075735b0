// The fleet as the rest of the agent sees it (SPEC §14): started after the
// other services when fleet.servers is set, handed each loaded rule set and
// each reloaded configuration, stopped when dropped. agent.cc knows only
// this header, so it builds the same with or without the fleet feature:
//   SENTINEL_FLEET=ON   fleet_link.cc: FleetService (fleet_service.h) and
//                       the forwarding cursors (fleet_forwarder.h), libnats;
//   SENTINEL_FLEET=OFF  fleet_link_absent.cc: StartFleetLink refuses with
//                       Unimplemented naming the option (the configuration
//                       already refused fleet.servers), and there is
//                       nothing to forward.
//
// Thread-safety: as FleetService: SetRuleSet and SetConfig from any thread;
// the callbacks of FleetServiceOptions run on the service's threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/base/time.h"
#include "sentinel/config/config.h"
#include "sentinel/detection/rule.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::agent {

struct FleetServiceOptions {
  config::Config cfg;
  std::string version;
  const Clock* clock = &Clock::Real();
  int64_t heartbeat_ms = 30'000;
  // The rule set loaded at start (the first heartbeat reports it).
  std::vector<detection::Rule> rules;
  // "ok" | "degraded" | "failing"; called from the heartbeat thread.
  std::function<std::string()> health;
  // Asks the agent to reload its rules (the fleet rules directory changed).
  std::function<void()> reload_rules;
  // Appends an audit entry (thread-safe on the agent's side).
  std::function<void(const std::string& action, const nlohmann::json& data)> record;
};

class FleetLink {
 public:
  virtual ~FleetLink() = default;
  // The loaded rule set (count and checksum for the heartbeat).
  virtual void SetRuleSet(const std::vector<detection::Rule>& rules) = 0;
  // The configuration after a reload (SIGHUP).
  virtual void SetConfig(const config::Config& cfg) = 0;
};

// Connects and starts the fleet service (FleetService::Start). Errors: its
// configuration problems; Unimplemented in a build without the fleet.
Result<std::unique_ptr<FleetLink>> StartFleetLink(FleetServiceOptions options);

// Before procmond runs: a forwarding of events or scans enabled now starts
// at the store's current end (SyncForwardCursors, fleet_forwarder.h); OK with
// nothing to do in a build without the fleet.
Status PrepareFleetForwarding(storage::Database& db, const config::Config& cfg, int64_t now_ms);

}  // namespace sentinel::agent
