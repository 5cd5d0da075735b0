// `sentinelcli query SQL [--param NAME=VALUE]... [--limit N] [--offset N]`
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

struct QueryArgs {
  std::string sql;
  std::vector<std::string> params;  // NAME=VALUE
  std::optional<int64_t> limit;
  std::optional<int64_t> offset;
};

int RunQuery(const CommandContext& ctx, const QueryArgs& args);

}  // namespace sentinel::cli
