#include "sentinelagent/fleet_link.h"

#include "sentinelagent/fleet_forwarder.h"
#include "sentinelagent/fleet_service.h"

namespace sentinel::agent {

Result<std::unique_ptr<FleetLink>> StartFleetLink(FleetServiceOptions options) {
  ASSIGN_OR_RETURN(std::unique_ptr<FleetService> service, FleetService::Start(std::move(options)));
  return std::unique_ptr<FleetLink>(std::move(service));
}

Status PrepareFleetForwarding(storage::Database& db, const config::Config& cfg, int64_t now_ms) {
  return SyncForwardCursors(db, cfg, now_ms);
}

}  // namespace sentinel::agent
