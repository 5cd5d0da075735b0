// `sentinelcli alerts list|show` (SPEC §9): the stored alerts, newest first.
// Read-only. `--severity S` keeps alerts at least as severe as S.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

struct AlertListArgs {
  std::string severity;
  std::string rule;
  std::string since;
  std::optional<int64_t> limit;
};

int RunAlertsList(const CommandContext& ctx, const AlertListArgs& args);
int RunAlertsShow(const CommandContext& ctx, const std::string& id);

}  // namespace sentinel::cli
