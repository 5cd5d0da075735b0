// `sentinelcli health` (SPEC §9): one line per component (collector, agent,
// database, each sink, audit), or one JSON object with --json; exit 4 when
// any component is not healthy.
#pragma once

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

// Asks the agent over agent.sock (3 s timeout); when it does not answer,
// reports what the CLI can read itself (sentinel/health/health.h
// OfflineReport) with the agent marked unhealthy.
int RunHealth(const CommandContext& ctx);

}  // namespace sentinel::cli
