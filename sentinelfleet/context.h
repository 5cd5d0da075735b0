// What every sentinelfleet command receives: the global flags, the effective
// configuration and the terminal, plus the exit codes and output helpers it
// shares with sentinelcli (SPEC §9: same flags, formats and exit codes).
// Single-threaded.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>

#include "sentinel/audit/signer.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinel/storage/sqlite.h"
#include "sentinelcli/output/command_line.h"
#include "sentinelcli/output/row_writer.h"
#include "sentinelfleet/console_store.h"

namespace sentinel::console {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;  // a store, broker or host that failed or did not answer
inline constexpr int kExitUsage = 2;    // bad usage, configuration, SQL or rule

// --database overrides console.database.
using cli::GlobalOptions;

struct Context {
  GlobalOptions global;
  config::LoadedConfig config;
  cli::TerminalInfo term;
  std::ostream* out;
  std::ostream* err;

  const config::Config& cfg() const { return config.config; }
};

// The layered configuration (default files or --config, SENTINELD_
// variables) with --database applied to console.database.
Result<config::LoadedConfig> LoadConsoleConfig(const GlobalOptions& global);

// The output format: --json, else --format, else `fallback`.
Result<cli::Format> ResolveFormat(const GlobalOptions& global, cli::Format fallback, bool allow_jsonl);

// The console store: read-only for the reading commands (never creates it),
// read-write (creates and migrates it) for serve.
Result<std::unique_ptr<ConsoleStore>> OpenStore(const Context& ctx, storage::OpenMode mode);

// Connects to fleet.servers (fleet.credentials, fleet.tls) as "sentinelfleet
// <what>". InvalidArgument when fleet.servers is empty; Unavailable naming
// the servers when none answers within `timeout_ms` (retry=false), or keeps
// trying in the background (retry=true: serve).
Result<std::unique_ptr<fleet::NatsClient>> ConnectFleet(const Context& ctx, std::string_view what,
                                                        int64_t timeout_ms, bool retry = false);

// The console's signing key (console.signing_key): InvalidArgument when it
// is not set, the Signer's errors (naming the file) otherwise.
Result<std::unique_ptr<audit::Signer>> LoadConsoleSigner(const Context& ctx);

// Prints "sentinelfleet: <message>" on stderr (escaped: messages may quote
// what a host sent) and returns the exit code for it: InvalidArgument -> 2,
// anything else -> 1.
int Fail(const Context& ctx, const Status& status);
// Same, but always exit code 1.
int FailRuntime(const Context& ctx, const Status& status);
// A warning line on stderr, escaped.
void Warn(const Context& ctx, std::string_view message);

}  // namespace sentinel::console
