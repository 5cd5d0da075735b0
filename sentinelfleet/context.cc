#include "sentinelfleet/context.h"

#include <ostream>

#include "sentinel/base/escape.h"
#include "sentinel/config/bootstrap.h"

namespace sentinel::console {

Result<config::LoadedConfig> LoadConsoleConfig(const GlobalOptions& global) {
  return config::LoadProgramConfig({global.config_file, {{"console.database", global.database}}});
}

Result<cli::Format> ResolveFormat(const GlobalOptions& global, cli::Format fallback, bool allow_jsonl) {
  if (global.json) return cli::Format::kJson;
  if (global.format.empty()) return fallback;
  return cli::ParseFormat(global.format, allow_jsonl);
}

Result<std::unique_ptr<ConsoleStore>> OpenStore(const Context& ctx, storage::OpenMode mode) {
  const std::string& path = ctx.cfg().console.database;
  auto store = ConsoleStore::Open(path, mode, ctx.cfg().database.busy_timeout_ms);
  if (!store.ok() && store.status().code() == StatusCode::kNotFound) {
    return NotFoundError(path +
                         ": no console store yet (console.database; `sentinelfleet serve` creates it)");
  }
  return store;
}

Result<std::unique_ptr<fleet::NatsClient>> ConnectFleet(const Context& ctx, std::string_view what,
                                                        int64_t timeout_ms, bool retry) {
  const config::FleetConfig& f = ctx.cfg().fleet;
  if (f.servers.empty()) {
    return InvalidArgumentError("fleet.servers is empty: the console needs the NATS servers of the fleet");
  }
  fleet::ConnectOptions options;
  options.servers = f.servers;
  options.credentials = f.credentials;
  options.tls = f.tls;
  options.name = "sentinelfleet " + std::string(what);
  options.timeout_ms = timeout_ms;
  options.retry_initial_connect = retry;
  options.reconnect_forever = retry;
  return fleet::NatsClient::Connect(options);
}

Result<std::unique_ptr<audit::Signer>> LoadConsoleSigner(const Context& ctx) {
  const std::string& path = ctx.cfg().console.signing_key;
  if (path.empty()) {
    return InvalidArgumentError(
        "console.signing_key is not set: queries and bundles are signed (sentinelfleet keys generate "
        "--output FILE)");
  }
  auto signer = audit::Signer::LoadPrivateKeyFile(path);
  if (!signer.ok()) return signer.status().WithContext("console.signing_key");
  return signer;
}

int Fail(const Context& ctx, const Status& status) {
  *ctx.err << "sentinelfleet: " << EscapeText(status.message()) << "\n";
  ctx.err->flush();
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime;
}

int FailRuntime(const Context& ctx, const Status& status) {
  Fail(ctx, status);
  return kExitRuntime;
}

void Warn(const Context& ctx, std::string_view message) {
  *ctx.err << "sentinelfleet: warning: " << EscapeText(message) << "\n";
}

}  // namespace sentinel::console
