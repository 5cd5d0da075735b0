#include <map>
#include <ostream>

#include "sentinel/base/time.h"
#include "sentinel/fleet/subjects.h"
#include "sentinelfleet/commands.h"

namespace sentinel::console {
namespace {

constexpr int64_t kLiveTimeoutMs = 2000;

std::vector<std::string> HostColumns() {
  return {"host_id", "hostname", "version", "health", "last_scan", "rules", "bundle", "last_heartbeat"};
}

// One output row; the cells point into `h` and the texts kept here.
class HostLine {
 public:
  explicit HostLine(const HostRow& h)
      : sent_(h.sent_at ? FormatIso8601Ms(*h.sent_at * 1000) : std::string()) {
    cells_ = {
        cli::Cell::Text(h.host_id),   cli::Cell::Text(h.hostname),
        cli::Cell::Text(h.version),   cli::Cell::Text(h.health),
        cli::Cell::Text(h.last_scan), h.rules_count ? cli::Cell::Integer(*h.rules_count) : cli::Cell::Null(),
        cli::Cell::Text(h.bundle),    cli::Cell::Text(sent_)};
  }
  const std::vector<cli::Cell>& cells() const { return cells_; }

 private:
  std::string sent_;
  std::vector<cli::Cell> cells_;
};

Status WriteHosts(const Context& ctx, cli::Format format, const std::vector<HostRow>& hosts) {
  auto writer = cli::MakeRowWriter(format, *ctx.out, ctx.term);
  RETURN_IF_ERROR(writer->Begin(HostColumns()));
  for (const HostRow& h : hosts) RETURN_IF_ERROR(writer->Row(HostLine(h).cells()));
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

}  // namespace sentinel::console
