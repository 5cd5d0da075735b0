// `sentinelcli process PID [--at T]` and `sentinelcli alerts show ID --tree`
// (SPEC §9, §16): the process tree around one process instance -- its
// ancestry, its descendants, what each ran and the alerts attached -- from
// the event store alone (sentinel/history/process_tree.h), so processes
// that exited long ago are shown too. Read-only.
//
// Output: table (the default) is the indented tree of
// sentinelcli/output/process_tree_text.h; json (--json, --format json) one
// JSON document in the shape of docs/process-tree.md (for `alerts show
// --tree`, with the alert under "alert"); csv is refused (exit 2).
//
// Exit codes: 0; 2 for a bad PID, T or id, and for a process or alert the
// store does not have (as `alerts show` for an unknown id); 1 for a store
// that cannot be read.
#pragma once

#include <string>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

struct ProcessArgs {
  std::string pid;
  std::string at;  // ISO-8601, relative (15m, 2h, 7d) or epoch ms; empty: the most recent process
};

int RunProcess(const CommandContext& ctx, const ProcessArgs& args);
int RunAlertTree(const CommandContext& ctx, const std::string& id);

}  // namespace sentinel::cli
