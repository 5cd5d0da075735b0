#include "sentinelcli/commands/config_cmd.h"

#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"

namespace sentinel::cli {
namespace {

constexpr const char* kRedacted = "<redacted>";

}  // namespace

// Secrets are never shown: `config show` output ends up in tickets and chat.
// Header values become <redacted>; sink URLs are shown as in every error
// message (sentinel::RedactUrl: scheme://host:port, and "/…" when a path,
// query or userinfo was there — webhook tokens live in any of them).
config::Config RedactSecrets(config::Config c) {
  for (auto& sink : c.alerting.sinks) {
    for (auto& [name, value] : sink.headers) value = kRedacted;
    if (!sink.url.empty()) sink.url = sentinel::RedactUrl(sink.url);
    if (!sink.smtp_url.empty()) sink.smtp_url = sentinel::RedactUrl(sink.smtp_url);
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
