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
