#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinelfleet/commands.h"

namespace sentinel::console {
namespace {

using nlohmann::ordered_json;

Result<AlertFilter> MakeFilter(const AlertListArgs& args) {
  AlertFilter filter;
  if (!args.host.empty()) {
    if (!fleet::IsValidHostId(args.host)) {
      return InvalidArgumentError("--host: " + QuoteForMessage(args.host) +
                                  " is not a host id ([A-Za-z0-9_-], 1 to 64)");
    }
    filter.host_id = args.host;
  }
  if (!args.since.empty()) {
    auto t = ParseTimePoint(args.since, NowMs());
    if (!t.ok()) return InvalidArgumentError("--since: " + t.status().message());
    filter.since_ms = *t;
  }
  if (args.limit && *args.limit < 0) return InvalidArgumentError("--limit must be >= 0");
  filter.limit = args.limit;
  return filter;
}

std::string TimeText(const std::optional<int64_t>& ms) {
  return ms ? FormatIso8601Ms(*ms) : std::string();
}

// One output row; the cells point into `a` and the texts kept here.
class AlertRow {
 public:
  AlertRow(const StoredAlert& a, bool table) : time_(TimeText(a.alert_time)) {
    if (table) {
      cells_ = {cli::Cell::Integer(a.id), cli::Cell::Text(a.host_id),  cli::Cell::Text(a.alert_id),
                cli::Cell::Text(time_),   cli::Cell::Text(a.severity), cli::Cell::Text(a.rule_id),
                cli::Cell::Text(a.title)};
      return;
    }
    received_ = FormatIso8601Ms(a.received_at_ms);
    cells_ = {cli::Cell::Integer(a.id),       cli::Cell::Text(a.host_id),       cli::Cell::Text(a.alert_id),
              cli::Cell::Integer(a.host_seq), cli::Cell::Integer(a.stream_seq), cli::Cell::Text(received_),
              cli::Cell::Text(time_),         cli::Cell::Text(a.severity),      cli::Cell::Text(a.rule_id),
              cli::Cell::Text(a.title),       cli::Cell::Text(a.body)};
  }
  const std::vector<cli::Cell>& cells() const { return cells_; }

 private:
  std::string time_, received_;
  std::vector<cli::Cell> cells_;
};

std::vector<std::string> ListColumns(bool table) {
  if (table) return {"id", "host_id", "alert_id", "time", "severity", "rule_id", "title"};
  return {"id",   "host_id",  "alert_id", "host_seq", "stream_seq", "received_at",
          "time", "severity", "rule_id",  "title",    "alert"};
}

Status WriteAlerts(const std::vector<StoredAlert>& alerts, cli::RowWriter& writer, bool table) {
  RETURN_IF_ERROR(writer.Begin(ListColumns(table)));
  for (const StoredAlert& a : alerts) RETURN_IF_ERROR(writer.Row(AlertRow(a, table).cells()));
  return writer.End();
}

// ID (the console's) or HOST:ALERT_ID (the host's).
Result<StoredAlert> FindAlert(ConsoleStore& store, const std::string& id_text) {
  if (auto colon = id_text.find(':'); colon != std::string::npos) {
    return store.GetHostAlert(id_text.substr(0, colon), id_text.substr(colon + 1));
  }
  auto id = ParseInt64(id_text);
  if (!id || *id <= 0) {
    return InvalidArgumentError("alert id: expected a positive integer or HOST:ALERT_ID, got " +
                                QuoteForMessage(id_text));
  }
  return store.GetAlert(*id);
}

ordered_json AlertObject(const StoredAlert& a) {
  ordered_json body = ordered_json::parse(a.body, nullptr, /*allow_exceptions=*/false);
  return ordered_json{{"id", a.id},
                      {"host_id", a.host_id},
                      {"alert_id", a.alert_id},
                      {"host_seq", a.host_seq},
                      {"stream_seq", a.stream_seq},
                      {"received_at", FormatIso8601Ms(a.received_at_ms)},
                      {"alert", body.is_discarded() ? ordered_json(a.body) : body}};
}

}  // namespace

int RunAlertsList(const Context& ctx, const AlertListArgs& args) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  auto filter = MakeFilter(args);
  if (!filter.ok()) return Fail(ctx, filter.status());
  auto store = OpenStore(ctx, storage::OpenMode::kReadOnly);
  if (!store.ok()) return FailRuntime(ctx, store.status());
  auto alerts = (*store)->ListAlerts(*filter);
  if (!alerts.ok()) return FailRuntime(ctx, alerts.status());
  auto writer = cli::MakeRowWriter(*format, *ctx.out, ctx.term);
  if (Status s = WriteAlerts(*alerts, *writer, *format == cli::Format::kTable); !s.ok())
    return FailRuntime(ctx, s);
  return kExitOk;
}

int RunAlertsShow(const Context& ctx, const std::string& id_text) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  auto store = OpenStore(ctx, storage::OpenMode::kReadOnly);
  if (!store.ok()) return FailRuntime(ctx, store.status());
  auto alert = FindAlert(**store, id_text);
  if (!alert.ok()) {
    const StatusCode c = alert.status().code();
    return c == StatusCode::kNotFound || c == StatusCode::kInvalidArgument
               ? Fail(ctx, InvalidArgumentError(alert.status().message()))
               : FailRuntime(ctx, alert.status());
  }
  // Table: "key | value" rows, nested fields flattened, every value escaped.
  if (Status s = cli::WriteObject(*format, *ctx.out, AlertObject(*alert), ctx.term); !s.ok()) {
    return FailRuntime(ctx, s);
  }
  return kExitOk;
}

}  // namespace sentinel::console
