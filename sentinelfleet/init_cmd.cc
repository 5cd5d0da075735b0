#include <algorithm>
#include <ostream>

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

Result<Plan> MakePlan(const InitArgs& args, int known_servers) {
  Plan plan;
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

std::vector<fleet::NatsClient::StreamSpec> Streams(const Plan& plan) {
  std::vector<fleet::NatsClient::StreamSpec> out;
  for (auto [name, subjects] : {std::pair{fleet::kAlertsStream, fleet::kAlertsSubjects},
                                std::pair{fleet::kEventsStream, fleet::kEventsSubjects},
                                std::pair{fleet::kScansStream, fleet::kScansSubjects}}) {
    out.push_back({std::string(name),
                   {std::string(subjects)},
                   plan.replicas,
                   plan.max_bytes,
                   plan.max_age_secs,
                   fleet::kDefaultDuplicateWindowSecs});
  }
  return out;
}

std::vector<fleet::NatsClient::BucketSpec> Buckets(const Plan& plan) {
  return {{std::string(fleet::kHostsBucket), plan.replicas, 1, kHeartbeatValueBytes, 0},
          {std::string(fleet::kRulesBucket), plan.replicas, 5, kBundleValueBytes, 0}};
}

}  // namespace

int RunInit(const Context& ctx, const InitArgs& args) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  auto timeout = ParseDurationMs(args.timeout);
  if (!timeout.ok() || *timeout <= 0)
    return Fail(ctx, InvalidArgumentError("--timeout: expected a duration (10s)"));
  auto client = ConnectFleet(ctx, "init", *timeout);
  if (!client.ok()) return Fail(ctx, client.status());
  auto plan = MakePlan(args, (*client)->KnownServerCount());
  if (!plan.ok()) return Fail(ctx, plan.status());
  auto writer = cli::MakeRowWriter(*format, *ctx.out, ctx.term);
  Status s = writer->Begin({"kind", "name", "replicas", "max_age_s", "max_bytes"});
  for (const auto& spec : Streams(*plan)) {
    if (!s.ok()) break;
    s = (*client)->EnsureStream(spec);
    if (s.ok()) {
      s = writer->Row({cli::Cell::Text("stream"), cli::Cell::Text(spec.name),
                       cli::Cell::Integer(spec.replicas), cli::Cell::Integer(spec.max_age_secs),
                       cli::Cell::Integer(spec.max_bytes)});
    }
  }
  for (const auto& spec : Buckets(*plan)) {
    if (!s.ok()) break;
    s = (*client)->EnsureBucket(spec);
    if (s.ok()) {
      s = writer->Row({cli::Cell::Text("bucket"), cli::Cell::Text(spec.name),
                       cli::Cell::Integer(spec.replicas), cli::Cell::Integer(spec.ttl_secs),
                       cli::Cell::Integer(spec.max_value_bytes)});
    }
  }
  Status end = writer->End();
  if (!s.ok()) return FailRuntime(ctx, s);
  if (!end.ok()) return FailRuntime(ctx, end);
  return kExitOk;
}

}  // namespace sentinel::console
