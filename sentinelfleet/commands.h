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

// Every host known: the store's hosts table, merged with the live values of
// sentineld_hosts when fleet.servers answers (a warning on stderr names what
// failed otherwise); by host_id.
std::vector<HostRow> GatherHosts(const Context& ctx);

// `hosts`: every host of the store, refreshed from sentineld_hosts when a
// broker answers (a warning names the servers otherwise).
int RunHosts(const Context& ctx);
// `hosts forget ID...`: deletes each host's key in sentineld_hosts (when
// fleet.servers is set; no server answering changes nothing, exit 1) and its
// row of the store; its alerts stay. A host that still runs is back with its
// next heartbeat. Exit 1 naming an unknown host (the others are forgotten).
int RunHostsForget(const Context& ctx, const std::vector<std::string>& host_ids);

struct InitArgs {
  std::optional<int64_t> replicas;   // default: min(3, servers the cluster announces)
  std::string max_age;               // "" = no age limit; else a duration (30d)
  std::optional<int64_t> max_bytes;  // per stream; -1 / unset = no limit
  std::string timeout = "10s";
};
// `init`: creates or updates the streams and buckets of SPEC §14.
int RunInit(const Context& ctx, const InitArgs& args);

// `serve`: the durable consumer into the store until SIGTERM/SIGINT (ingest.h).
int RunServe(const Context& ctx);

struct QueryArgs {
  std::string sql;
  std::string hosts = "all";  // all | ID,ID,...
  std::string timeout = "10s";
  int64_t max_rows = 10000;  // per host
};
// `query SQL`: signed, to the hosts; rows with a leading host_id column;
// exit 1 naming hosts that did not answer or failed (the others' rows are
// printed), 2 when every host refused the SQL.
int RunQuery(const Context& ctx, const QueryArgs& args);

// `rules push DIR`: validate every rule file locally (as `sentinelcli rules
// validate`), pack, sign with console.signing_key and put into
// sentineld_rules/bundle.
int RunRulesPush(const Context& ctx, const std::string& dir, const std::string& timeout);
// `rules status`: per host, the rule set and last bundle its heartbeat reports.
int RunRulesStatus(const Context& ctx);

}  // namespace sentinel::console
