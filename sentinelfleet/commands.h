// sentinelfleet's commands (SPEC §14, docs/fleet.md "The console"). Each
// returns the process exit code (context.h) and prints on ctx.out/ctx.err.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sentinelfleet/context.h"

namespace sentinel::console {

// `keys generate --output FILE`: a new Ed25519 signing key (mode 0600,
// refused when FILE exists); prints the public key, 64 lowercase hex, alone
// on stdout (JSON: {"public_key","file"}).
int RunKeysGenerate(const Context& ctx, const std::string& path);

struct AlertListArgs {
  std::string host;
  std::string since;
  std::optional<int64_t> limit;
};
// `alerts list [--host ID] [--since T] [--limit N]`: from the store, newest first.
int RunAlertsList(const Context& ctx, const AlertListArgs& args);
// `alerts show ID|HOST:ALERT_ID`: one alert with every field the host sent.
int RunAlertsShow(const Context& ctx, const std::string& id);

// `hosts`: every host of the store, refreshed from sentineld_hosts when a
// broker answers (a warning names the servers otherwise).
int RunHosts(const Context& ctx);

}  // namespace sentinel::console
