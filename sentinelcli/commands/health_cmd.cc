#include "sentinelcli/commands/health_cmd.h"

#include <algorithm>
#include <ostream>

#include "sentinel/base/time.h"
#include "sentinel/health/health.h"
#include "sentinel/ipc/control_socket.h"

namespace sentinel::cli {
namespace {

constexpr int64_t kAgentTimeoutMs = 3000;

const char* Colour(const std::string& status) {
  if (status == "ok") return "\033[32m";         // green
  if (status == "unhealthy") return "\033[31m";  // red
  return "\033[33m";                             // yellow: unknown
}

// The agent's report, or the offline report (what can be read without the
// agent) naming why the agent did not give one.
health::HealthReport AskAgent(const config::Config& cfg) {
  const std::string agent_sock = ipc::SocketPath(cfg.ipc.socket_dir, ipc::kAgentSocket);
  auto reply = ipc::Call(agent_sock, "health", kAgentTimeoutMs);
  std::string agent_error;
  if (reply.ok() && reply->value("ok", false) && reply->contains("result")) {
    auto parsed = health::HealthFromJson((*reply)["result"]);
    if (parsed.ok()) return std::move(parsed).value();
    agent_error = "agent at " + agent_sock + " sent a bad health reply: " + parsed.status().message();
  } else if (reply.ok()) {
    agent_error =
        "agent at " + agent_sock + " refused: " + reply->value("error", std::string("no reason given"));
  } else {
    agent_error = "agent not answering: " + reply.status().message();
  }
  return health::OfflineReport(cfg, agent_error, NowMs());
}

// One line per component: name, status (coloured on a terminal), detail.
Status WriteTable(const CommandContext& ctx, const health::HealthReport& report) {
  size_t width = 0;
  for (const auto& c : report.components) width = std::max(width, c.name.size());
  for (const auto& c : report.components) {
    std::string status = c.status;
    status.resize(9, ' ');
    std::string name = c.name;
    name.resize(width, ' ');
    *ctx.out << name << "  ";
    if (ctx.term.color) {
      *ctx.out << Colour(c.status) << status << "\033[0m";
    } else {
      *ctx.out << status;
    }
    *ctx.out << "  " << c.detail << "\n";
  }
  // The reporting build's features, as its --version lists them.
  std::string features;
  for (const auto& f : report.features) {
    features += (features.empty() ? "" : " ") + std::string(f.built ? "+" : "-") + f.name;
  }
  *ctx.out << "features: " << features << "\n";
  ctx.out->flush();
  if (!ctx.out->good()) return UnavailableError("writing output failed");
  return Status::Ok();
}

// "collector (unhealthy), sinks (unknown)"
std::string NotOk(const health::HealthReport& report) {
  std::string bad;
  for (const auto& c : report.components) {
    if (c.status != "ok") bad += (bad.empty() ? "" : ", ") + c.name + " (" + c.status + ")";
  }
  return bad;
}

}  // namespace

int RunHealth(const CommandContext& ctx) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  if (*format == Format::kCsv) {
    return Fail(ctx, InvalidArgumentError("health prints a table or JSON (--format table|json), not csv"));
  }
  const health::HealthReport report = AskAgent(ctx.config.config);
  Status s = *format == Format::kJson
                 ? WriteObject(Format::kJson, *ctx.out, health::HealthToJson(report), ctx.term)
                 : WriteTable(ctx, report);
  if (!s.ok()) return FailRuntime(ctx, s);
  if (!report.healthy()) {
    *ctx.err << "sentinelcli: unhealthy: " << NotOk(report) << "\n";
    ctx.err->flush();
    return kExitUnhealthy;
  }
  return kExitOk;
}

}  // namespace sentinel::cli
