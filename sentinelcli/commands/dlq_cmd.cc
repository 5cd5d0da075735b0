#include "sentinelcli/commands/dlq_cmd.h"

#include <unistd.h>

#include <filesystem>
#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/alertstore/delivery_store.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/storage/store.h"

namespace sentinel::cli {

int RunDlqList(const CommandContext& ctx, const DlqArgs& args) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());
  auto letters = alerting::ListDeadLetters(**db, args.sink);
  if (!letters.ok()) return FailRuntime(ctx, letters.status());
  const bool table = *format == Format::kTable;
  auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
  std::vector<std::string> columns = {"id",         "alert_id", "sink",    "failed_at", "attempts",
                                      "last_error", "retry",    "rule_id", "severity",  "title"};
  Status s = writer->Begin(columns);
  if (!s.ok()) return FailRuntime(ctx, s);
  for (const auto& d : *letters) {
    const std::string failed = FormatIso8601Ms(d.failed_at);
    const std::string retry = d.queued ? "queued" : (d.retry_requested_at_ms ? "requested" : "");
    std::vector<Cell> cells = {
        Cell::Integer(d.id),       Cell::Integer(d.alert_id),
        Cell::Text(d.sink),        table ? Cell::Text(failed) : Cell::Integer(d.failed_at),
        Cell::Integer(d.attempts), Cell::Text(d.last_error),
        Cell::Text(retry),         Cell::Text(d.rule_id),
        Cell::Text(d.severity),    Cell::Text(d.title)};
    s = writer->Row(cells);
    if (!s.ok()) return FailRuntime(ctx, s);
  }
  s = writer->End();
  if (!s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

int RunDlqRetry(const CommandContext& ctx, const DlqArgs& args) {
  std::vector<int64_t> ids;
  for (const auto& text : args.ids) {
    auto id = ParseInt64(text);
    if (!id || *id <= 0) {
      return Fail(ctx, InvalidArgumentError("dead letter id: expected a positive integer, got " +
                                            QuoteForMessage(text)));
    }
    ids.push_back(*id);
  }
  const auto& dbc = ctx.config.config.database;
  std::error_code ec;
  if (!std::filesystem::exists(dbc.path, ec)) {
    return FailRuntime(ctx, NotFoundError(dbc.path + ": event store does not exist"));
  }
  // The explicit write connection of SPEC §1: local SQLite only, no network.
  auto db = storage::OpenStore(storage::DatabaseKind::kEvents,
                               {dbc.path, storage::OpenMode::kReadWrite, dbc.busy_timeout_ms});
  if (!db.ok()) return FailRuntime(ctx, db.status());
  auto report = alerting::RetryDeadLetters(**db, ids, args.sink, NowMs());
  if (!report.ok()) {
    return report.status().code() == StatusCode::kNotFound
               ? Fail(ctx, InvalidArgumentError(report.status().message()))
               : FailRuntime(ctx, report.status());
  }
  if (auto trail = OpenCliTrail(ctx)) {
    nlohmann::json requested = nlohmann::json::array();
    for (int64_t id : ids) requested.push_back(id);
    trail->Record("dlq_retry", {{"ids", requested},
                                {"sink", args.sink},
                                {"queued", report->queued},
                                {"already_queued", report->already_queued},
                                {"uid", static_cast<int64_t>(::getuid())}});
  }
  *ctx.out << report->queued << " dead letter(s) queued for delivery";
  if (report->already_queued > 0) *ctx.out << " (" << report->already_queued << " already waiting)";
  *ctx.out << "; the running sentinelagent or the next `sentinelagent --once` delivers them\n";
  ctx.out->flush();
  return kExitOk;
}

}  // namespace sentinel::cli
