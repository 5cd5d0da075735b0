// `sentinelcli rules import BUNDLE` (SPEC §14): a file holding a signed rule
// bundle envelope (sentinel/fleet/bundle.h), as `sentinelfleet rules push`
// makes it, installed on a host that cannot reach the fleet (air-gapped).
// The same checks as the agent's bundle watcher: the envelope against
// fleet.trusted_keys (signature, age, nonce never seen — the host's replay
// store under the data directory), then every rule in the sandbox, then an
// atomic install of the whole set into <data dir>/fleet-rules. Exit codes as
// `rules import`: 0 installed, 2 refused (each refused file on stderr), 1 a
// host-side failure. Applied and refused bundles are audited
// (bundle_imported / bundle_refused, with at most 20 refused files named
// and their count).
#pragma once

#include <string>
#include <string_view>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

// True when the file at `path` holds a bundle envelope (detected by content);
// `text` receives its contents then.
bool ReadBundleFile(const std::string& path, std::string* text);

int RunBundleImport(const CommandContext& ctx, const std::string& path, std::string_view text);

}  // namespace sentinel::cli
