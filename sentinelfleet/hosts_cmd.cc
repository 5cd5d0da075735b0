#include <limits>
#include <map>
#include <ostream>

#include "sentinel/base/time.h"
#include "sentinel/fleet/subjects.h"
#include "sentinelfleet/commands.h"

namespace sentinel::console {
namespace {

constexpr int64_t kLiveTimeoutMs = 2000;

std::vector<std::string> HostColumns() {
  return {"host_id", "hostname",        "version", "health",         "last_scan",
          "rules",   "forward_pending", "bundle",  "last_heartbeat", "status"};
}

// "online" when the host's last heartbeat was sent at most
// fleet::kLiveHeartbeatSecs before `now_s` (as `query --hosts all` and the
// web UI judge it), "stale" otherwise.
std::string_view HostStatus(const HostRow& h, int64_t now_s) {
  return h.sent_at && *h.sent_at >= now_s - fleet::kLiveHeartbeatSecs ? "online" : "stale";
}

// One output row; the cells point into `h` and the texts kept here.
class HostLine {
 public:
  HostLine(const HostRow& h, int64_t now_s)
      : sent_(h.sent_at ? FormatIso8601Ms(*h.sent_at * 1000) : std::string()) {
    const std::optional<int64_t> pending = ForwardPending(h.heartbeat);
    cells_ = {cli::Cell::Text(h.host_id),
              cli::Cell::Text(h.hostname),
              cli::Cell::Text(h.version),
              cli::Cell::Text(h.health),
              cli::Cell::Text(h.last_scan),
              h.rules_count ? cli::Cell::Integer(*h.rules_count) : cli::Cell::Null(),
              pending ? cli::Cell::Integer(*pending) : cli::Cell::Null(),
              cli::Cell::Text(h.bundle),
              cli::Cell::Text(sent_),
              cli::Cell::Text(HostStatus(h, now_s))};
  }
  const std::vector<cli::Cell>& cells() const { return cells_; }

 private:
  std::string sent_;
  std::vector<cli::Cell> cells_;
};

Status WriteHosts(const Context& ctx, cli::Format format, const std::vector<HostRow>& hosts) {
  auto writer = cli::MakeRowWriter(format, *ctx.out, ctx.term);
  RETURN_IF_ERROR(writer->Begin(HostColumns()));
  const int64_t now_s = NowMs() / 1000;
  for (const HostRow& h : hosts) RETURN_IF_ERROR(writer->Row(HostLine(h, now_s).cells()));
  return writer->End();
}

std::vector<HostRow> MergeHosts(std::vector<HostRow> stored, std::vector<HostRow> live) {
  std::map<std::string, HostRow> by_id;
  for (HostRow& h : stored) by_id[h.host_id] = std::move(h);
  for (HostRow& h : live) {
    auto it = by_id.find(h.host_id);
    if (it == by_id.end() || it->second.sent_at.value_or(0) <= h.sent_at.value_or(0))
      by_id[h.host_id] = std::move(h);
  }
  std::vector<HostRow> out;
  for (auto& [id, h] : by_id) out.push_back(std::move(h));
  return out;
}

}  // namespace

std::vector<HostRow> GatherHosts(const Context& ctx) {
  std::vector<HostRow> stored;
  auto store = OpenStore(ctx, storage::OpenMode::kReadOnly);
  if (store.ok()) {
    auto rows = (*store)->ListHosts();
    if (rows.ok()) {
      stored = std::move(*rows);
    } else {
      Warn(ctx, rows.status().message());
    }
  } else {
    Warn(ctx, store.status().message());
  }
  std::vector<HostRow> live;
  if (!ctx.cfg().fleet.servers.empty()) {
    auto client = ConnectFleet(ctx, "hosts", kLiveTimeoutMs);
    auto entries = client.ok() ? (*client)->KvAll(std::string(fleet::kHostsBucket))
                               : Result<std::vector<std::pair<std::string, std::string>>>(client.status());
    if (!entries.ok()) {
      Warn(ctx, "live heartbeats not read (" + entries.status().message() + "); showing the store");
    } else {
      for (const auto& [key, value] : *entries) {
        auto row = HostRowFromHeartbeat(key, value, NowMs());
        if (row.ok()) live.push_back(std::move(*row));
      }
    }
  }
  return MergeHosts(std::move(stored), std::move(live));
}

int RunHosts(const Context& ctx) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  if (Status s = WriteHosts(ctx, *format, GatherHosts(ctx)); !s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

namespace {

// What `hosts forget` did for one host: the cells of its row, or the
// warning that says why nothing (or not all) was forgotten.
struct Forgotten {
  std::string_view store = "absent";               // deleted | absent
  std::string_view heartbeat_key = "not checked";  // deleted | absent | not checked
  std::string problem;                             // "" when the row is printed
};

// The bucket first: a key left there would bring the host back (serve's
// watch, `hosts`). `client` is null without fleet.servers.
Forgotten ForgetOne(fleet::NatsClient* client, ConsoleStore& store, const std::string& id) {
  Forgotten f;
  if (client) {
    const std::string bucket(fleet::kHostsBucket);
    auto value = client->KvGet(bucket, id);
    Status deleted = value.ok() && value->has_value() ? client->KvDelete(bucket, id) : value.status();
    if (!deleted.ok()) return {.problem = "host " + id + " not forgotten: " + deleted.message()};
    f.heartbeat_key = value->has_value() ? "deleted" : "absent";
  }
  auto row = store.ForgetHost(id, std::numeric_limits<int64_t>::max());
  if (!row.ok())
    return {.problem = "host " + id + " not forgotten from the store: " + row.status().message()};
  if (*row) f.store = "deleted";
  if (!*row && f.heartbeat_key != "deleted") f.problem = "unknown host " + id;
  return f;
}

// Connects when fleet.servers is set (null client otherwise, with a warning).
Result<std::unique_ptr<fleet::NatsClient>> ConnectForForget(const Context& ctx) {
  if (ctx.cfg().fleet.servers.empty()) {
    Warn(ctx, "fleet.servers is not set: the store forgets the hosts, their keys in sentineld_hosts stay");
    return std::unique_ptr<fleet::NatsClient>();
  }
  auto connected = ConnectFleet(ctx, "hosts forget", kLiveTimeoutMs);
  if (!connected.ok()) {
    return Status(connected.status().code(), "no host forgotten: " + connected.status().message());
  }
  return connected;
}

}  // namespace

int RunHostsForget(const Context& ctx, const std::vector<std::string>& host_ids) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  for (const std::string& id : host_ids) {
    if (!fleet::IsValidHostId(id)) {
      return Fail(ctx, InvalidArgumentError("\"" + id + "\" is not a host id ([A-Za-z0-9_-], 1 to 64)"));
    }
  }
  auto client = ConnectForForget(ctx);
  if (!client.ok()) return FailRuntime(ctx, client.status());
  auto store = OpenStore(ctx, storage::OpenMode::kReadWrite);
  if (!store.ok()) return FailRuntime(ctx, store.status());
  auto writer = cli::MakeRowWriter(*format, *ctx.out, ctx.term);
  if (Status s = writer->Begin({"host_id", "store", "heartbeat_key"}); !s.ok()) return FailRuntime(ctx, s);
  int rc = kExitOk;
  for (const std::string& id : host_ids) {
    const Forgotten f = ForgetOne(client->get(), **store, id);
    if (!f.problem.empty()) {
      Warn(ctx, f.problem);
      rc = kExitRuntime;
      continue;
    }
    const std::vector<cli::Cell> cells = {cli::Cell::Text(id), cli::Cell::Text(f.store),
                                          cli::Cell::Text(f.heartbeat_key)};
    if (Status s = writer->Row(cells); !s.ok()) return FailRuntime(ctx, s);
  }
  if (Status s = writer->End(); !s.ok()) return FailRuntime(ctx, s);
  return rc;
}

}  // namespace sentinel::console
