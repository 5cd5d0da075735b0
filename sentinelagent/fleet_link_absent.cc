// The fleet of a build without the fleet feature (SENTINEL_FLEET=OFF;
// fleet_link.h): nothing connects, nothing is forwarded.
#include "sentinel/base/features.h"
#include "sentinelagent/fleet_link.h"

namespace sentinel::agent {

// NOLINTNEXTLINE(performance-unnecessary-value-param): fleet_link.h's signature (FleetService takes it whole)
Result<std::unique_ptr<FleetLink>> StartFleetLink(FleetServiceOptions) {
  return UnimplementedError(NotBuiltReason(Feature::kFleet));
}

Status PrepareFleetForwarding(storage::Database&, const config::Config&, int64_t) {
  return Status::Ok();
}

}  // namespace sentinel::agent
