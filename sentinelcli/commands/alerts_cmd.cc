#include "sentinelcli/commands/alerts_cmd.h"

#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/detection/rule.h"

namespace sentinel::cli {
namespace {

using nlohmann::ordered_json;

// "pid 42 evil (/tmp/evil); pid 43 ..." for the table.
std::string ProcessesSummary(const ordered_json& procs) {
  std::string out;
  for (const auto& p : procs) {
    if (!out.empty()) out += "; ";
    auto text = [](const ordered_json& v) {
      return v.is_string() ? v.get<std::string>() : v.is_null() ? "?" : v.dump();
    };
    out += "pid " + text(p.value("pid", ordered_json())) + " " + text(p.value("name", ordered_json())) +
           " (" + text(p.value("exe_path", ordered_json())) + ")";
  }
  return out;
}

// The WHERE clause of `alerts list` and the values it binds.
struct AlertFilter {
  std::string where = "1";
  std::optional<int64_t> since;
};

// Checks the flags (InvalidArgument names the bad one) and builds the filter.
Result<AlertFilter> MakeFilter(const AlertListArgs& args) {
  AlertFilter filter;
  std::string& where = filter.where;
  std::vector<std::string> severities;
  if (!args.severity.empty()) {
    auto min = models::ParseSeverity(ToLower(args.severity));
    if (!min) {
      return InvalidArgumentError("--severity: expected low, medium, high or critical, got " +
                                  QuoteForMessage(args.severity));
    }
    for (auto s : {models::Severity::kLow, models::Severity::kMedium, models::Severity::kHigh,
                   models::Severity::kCritical}) {
      if (static_cast<int>(s) >= static_cast<int>(*min))
        severities.push_back(std::string(models::SeverityName(s)));
    }
    where += " AND severity IN ('" + Join(severities, "','") + "')";
  }
  if (!args.rule.empty()) where += " AND rule_id = :rule";
  if (!args.since.empty()) {
    auto t = ParseTimePoint(args.since, NowMs());
    if (!t.ok()) return InvalidArgumentError("--since: " + t.status().message());
    filter.since = *t;
    where += " AND alert_time >= :since";
  }
  if (args.limit && *args.limit < 0) return InvalidArgumentError("--limit must be >= 0");
  return filter;
}

Result<storage::Statement> PrepareList(storage::Database& db, const AlertListArgs& args,
                                       const AlertFilter& filter) {
  ASSIGN_OR_RETURN(auto st,
                   db.Prepare("SELECT " + std::string(alerting::kAlertColumns) + " FROM alerts WHERE " +
                              filter.where + " ORDER BY alert_time DESC, id DESC" +
                              (args.limit ? " LIMIT " + std::to_string(*args.limit) : std::string())));
  if (!args.rule.empty()) RETURN_IF_ERROR(st.BindText(st.ParameterIndex(":rule"), args.rule));
  if (filter.since) RETURN_IF_ERROR(st.BindInt(st.ParameterIndex(":since"), *filter.since));
  return st;
}

std::vector<std::string> ListColumns(bool table) {
  return table ? std::vector<std::string>{"id", "time", "severity", "rule_id", "status", "title", "processes"}
               : std::vector<std::string>{
                     "id",           "alert_time",        "severity",  "rule_id",       "status",
                     "title",        "description",       "scan_id",   "process_count", "affected_processes",
                     "rule_version", "execution_time_ms", "dedup_key", "raw_data"};
}

// One output row of an alert; the cells point into `alert` and into the
// texts kept here.
class AlertRow {
 public:
  AlertRow(const alerting::Alert& a, bool table) : severity_(models::SeverityName(a.severity)) {
    if (table) {
      time_ = FormatIso8601Ms(a.alert_time);
      procs_ = ProcessesSummary(a.affected_processes);
      cells_ = {Cell::Integer(a.id),  Cell::Text(time_),   Cell::Text(severity_), Cell::Text(a.rule_id),
                Cell::Text(a.status), Cell::Text(a.title), Cell::Text(procs_)};
      return;
    }
    affected_ = a.affected_processes.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
    cells_ = {Cell::Integer(a.id),
              Cell::Integer(a.alert_time),
              Cell::Text(severity_),
              Cell::Text(a.rule_id),
              Cell::Text(a.status),
              Cell::Text(a.title),
              Cell::Text(a.description),
              a.scan_id ? Cell::Integer(*a.scan_id) : Cell::Null(),
              Cell::Integer(a.process_count),
              Cell::Text(affected_),
              Cell::Integer(a.rule_version),
              Cell::Integer(a.execution_time_ms),
              Cell::Text(a.dedup_key),
              Cell::Text(a.raw_data)};
  }
  AlertRow(const AlertRow&) = delete;
  AlertRow& operator=(const AlertRow&) = delete;
  const std::vector<Cell>& cells() const { return cells_; }

 private:
  const std::string severity_;
  std::string time_, procs_, affected_;
  std::vector<Cell> cells_;
};

Status WriteAlerts(storage::Statement& st, RowWriter& writer, bool table) {
  RETURN_IF_ERROR(writer.Begin(ListColumns(table)));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    const alerting::Alert a = alerting::AlertFromRow(st);
    RETURN_IF_ERROR(writer.Row(AlertRow(a, table).cells()));
  }
  return writer.End();
}

}  // namespace

int RunAlertsList(const CommandContext& ctx, const AlertListArgs& args) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  auto filter = MakeFilter(args);
  if (!filter.ok()) return Fail(ctx, filter.status());
  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());
  auto st = PrepareList(**db, args, *filter);
  if (!st.ok()) return FailRuntime(ctx, st.status());
  auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
  Status s = WriteAlerts(*st, *writer, *format == Format::kTable);
  if (!s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

int RunAlertsShow(const CommandContext& ctx, const std::string& id_text) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  auto id = ParseInt64(id_text);
  if (!id || *id <= 0)
    return Fail(
        ctx, InvalidArgumentError("alert id: expected a positive integer, got " + QuoteForMessage(id_text)));
  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());
  auto alert = alerting::GetAlert(**db, *id);
  if (!alert.ok()) {
    return alert.status().code() == StatusCode::kNotFound
               ? Fail(ctx, InvalidArgumentError(alert.status().message()))
               : FailRuntime(ctx, alert.status());
  }
  ordered_json j = alert->ToJson();
  if (*format != Format::kTable) {
    // json: escaped like every JSON the CLI prints (unsafe code points as \uXXXX).
    Status s = WriteObject(*format, *ctx.out, j, ctx.term);
    if (!s.ok()) return FailRuntime(ctx, s);
    return kExitOk;
  }
  // "key: value" lines, every value through the one output escaper.
  std::string text;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    AppendEscapedText(text, it.key());
    text += ": ";
    if (v.is_string()) {
      AppendEscapedText(text, v.get_ref<const std::string&>());
    } else {
      text += HardenJsonText(v.dump(-1, ' ', false, ordered_json::error_handler_t::replace));
    }
    text += '\n';
  }
  *ctx.out << text;
  ctx.out->flush();
  return kExitOk;
}

}  // namespace sentinel::cli
