#include "sentinelcli/commands/config_cmd.h"

#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/base/strings.h"

namespace sentinel::cli {
namespace {

constexpr const char* kRedacted = "<redacted>";

// "scheme://user:secret@host/..." -> "scheme://user:<redacted>@host/...".
std::string RedactUrl(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto at = url.find('@', scheme + 3);
  auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + kRedacted + url.substr(at);
}

}  // namespace

// Secrets (webhook header values, passwords in URLs) are shown as
// <redacted>: `config show` output ends up in tickets and chat.
config::Config RedactSecrets(config::Config c) {
  for (auto& sink : c.alerting.sinks) {
    for (auto& [name, value] : sink.headers) value = kRedacted;
    sink.url = RedactUrl(sink.url);
    sink.smtp_url = RedactUrl(sink.smtp_url);
  }
  return c;
}

int RunConfigShow(const CommandContext& ctx) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  const auto& loaded = ctx.config;
  if (*format == Format::kTable) {
    // Human form: YAML, with where it came from as comments.
    *ctx.out << "# effective configuration (sha256 " << loaded.hash << ")\n";
    for (const auto& src : loaded.sources) *ctx.out << "# from: " << src << "\n";
    *ctx.out << config::ToYaml(RedactSecrets(loaded.config));
    ctx.out->flush();
    return ctx.out->good() ? kExitOk : FailRuntime(ctx, UnavailableError("writing output failed"));
  }
  Status s = WriteObject(*format, *ctx.out, config::ToJson(RedactSecrets(loaded.config)), ctx.term);
  return s.ok() ? kExitOk : FailRuntime(ctx, s);
}

int RunConfigValidate(const CommandContext& ctx, const std::string& file) {
  if (file.empty()) {
    *ctx.out << "configuration is valid (" << Join(ctx.config.sources, ", ") << ")\n";
    return kExitOk;
  }
  auto r = config::ValidateFile(file);
  if (!r.ok()) return Fail(ctx, Status(StatusCode::kInvalidArgument, r.status().message()));
  *ctx.out << file << ": configuration is valid\n";
  return kExitOk;
}

}  // namespace sentinel::cli
