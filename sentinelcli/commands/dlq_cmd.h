// `sentinelcli alerts dlq list|retry` (SPEC §7, §9): the dead-letter queue.
//
// list reads the event store read-only. retry opens an explicit read-write
// connection to an existing event store and puts dead letters back into the
// delivery queue with a fresh retry budget; it opens no network connection:
// the running agent (within its poll interval) or the next `sentinelagent
// --once` delivers them, and a delivered entry leaves the DLQ.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

struct DlqArgs {
  std::string sink;              // only this sink's dead letters
  std::vector<std::string> ids;  // retry: these entries (default: all)
};

int RunDlqList(const CommandContext& ctx, const DlqArgs& args);
int RunDlqRetry(const CommandContext& ctx, const DlqArgs& args);

}  // namespace sentinel::cli
