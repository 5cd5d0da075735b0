#include <algorithm>
#include <functional>
#include <ostream>
#include <tuple>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/fleet/subjects.h"
#include "sentinelfleet/commands.h"

namespace sentinel::console {
namespace {

constexpr int64_t kMaxReplicas = 3;
constexpr int64_t kHeartbeatValueBytes = 64 << 10;
constexpr int64_t kBundleValueBytes = (1 << 20) + (64 << 10);  // a bundle envelope (1 MiB) and slack

struct Plan {
  int replicas = 1;
  int64_t max_age_secs = 0;
  int64_t max_bytes = -1;
};

Result<Plan> MakePlan(const InitArgs& args, int known_servers, const config::ConsoleConfig& cfg) {
  Plan plan;
  plan.max_age_secs = cfg.stream_max_age_days * 86400;
  plan.max_bytes = cfg.stream_max_bytes;
  if (plan.max_bytes == 0 && !args.max_bytes) {
    return InvalidArgumentError(
        "console.stream_max_bytes: expected a positive number of bytes, or -1 for no limit");
  }
  plan.replicas = static_cast<int>(std::clamp<int64_t>(known_servers, 1, kMaxReplicas));
  if (args.replicas) {
    if (*args.replicas < 1 || *args.replicas > 5) return InvalidArgumentError("--replicas: expected 1 to 5");
    plan.replicas = static_cast<int>(*args.replicas);
  }
  if (!args.max_age.empty()) {
    auto ms = ParseDurationMs(args.max_age);
    if (!ms.ok() || *ms < 1000)
      return InvalidArgumentError("--max-age: expected a duration of at least 1s (30d, 12h)");
    plan.max_age_secs = *ms / 1000;
  }
  if (args.max_bytes) {
    if (*args.max_bytes < -1 || *args.max_bytes == 0) {
      return InvalidArgumentError("--max-bytes: expected a positive number of bytes, or -1 for no limit");
    }
    plan.max_bytes = *args.max_bytes;
  }
  return plan;
}

// One stream or bucket to create or update, and how it is shown.
struct Step {
  std::string kind, name;
  int replicas = 1;
  int64_t max_age_secs = 0, max_bytes = -1;
  std::function<Status(fleet::NatsClient&)> ensure;
};

std::vector<Step> Steps(const Plan& plan) {
  std::vector<Step> out;
  for (auto [name, subjects] : {std::pair{fleet::kAlertsStream, fleet::kAlertsSubjects},
                                std::pair{fleet::kEventsStream, fleet::kEventsSubjects},
                                std::pair{fleet::kScansStream, fleet::kScansSubjects}}) {
    fleet::NatsClient::StreamSpec spec{std::string(name), {std::string(subjects)},
                                       plan.replicas,     plan.max_bytes,
                                       plan.max_age_secs, fleet::kDefaultDuplicateWindowSecs};
    out.push_back({"stream", spec.name, spec.replicas, spec.max_age_secs, spec.max_bytes,
                   [spec](fleet::NatsClient& c) { return c.EnsureStream(spec); }});
  }
  // Buckets: max_bytes is per value; keys never expire (a host's heartbeat is replaced, not aged).
  for (auto [name, history, value_bytes] : {std::tuple{fleet::kHostsBucket, 1, kHeartbeatValueBytes},
                                            std::tuple{fleet::kRulesBucket, 5, kBundleValueBytes}}) {
    fleet::NatsClient::BucketSpec spec{std::string(name), plan.replicas, history, value_bytes, 0};
    out.push_back({"bucket", spec.name, spec.replicas, 0, value_bytes,
                   [spec](fleet::NatsClient& c) { return c.EnsureBucket(spec); }});
  }
  return out;
}

Status Apply(fleet::NatsClient& client, const Plan& plan, cli::RowWriter& writer) {
  RETURN_IF_ERROR(writer.Begin({"kind", "name", "replicas", "max_age_s", "max_bytes"}));
  for (const Step& step : Steps(plan)) {
    RETURN_IF_ERROR(step.ensure(client).WithContext(step.kind + " " + step.name));
    RETURN_IF_ERROR(
        writer.Row({cli::Cell::Text(step.kind), cli::Cell::Text(step.name), cli::Cell::Integer(step.replicas),
                    cli::Cell::Integer(step.max_age_secs), cli::Cell::Integer(step.max_bytes)}));
  }
  return writer.End();
}

}  // namespace

int RunInit(const Context& ctx, const InitArgs& args) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  auto timeout = ParseDurationMs(args.timeout);
  if (!timeout.ok() || *timeout <= 0)
    return Fail(ctx, InvalidArgumentError("--timeout: expected a duration (10s)"));
  // The flags and settings are checked before connecting: a typo is a usage
  // error (exit 2) whether or not a server answers, and at once. The default
  // replica count needs the cluster's size, so the plan is made again below.
  if (auto checked = MakePlan(args, 1, ctx.cfg().console); !checked.ok()) return Fail(ctx, checked.status());
  auto client = ConnectFleet(ctx, "init", *timeout);
  if (!client.ok()) return Fail(ctx, client.status());
  auto plan = MakePlan(args, (*client)->KnownServerCount(), ctx.cfg().console);
  if (!plan.ok()) return Fail(ctx, plan.status());
  auto writer = cli::MakeRowWriter(*format, *ctx.out, ctx.term);
  if (Status s = Apply(**client, *plan, *writer); !s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

}  // namespace sentinel::console
