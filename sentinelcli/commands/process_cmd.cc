#include "sentinelcli/commands/process_cmd.h"

#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/history/process_tree.h"
#include "sentinel/models/severity.h"
#include "sentinelcli/output/process_tree_text.h"

namespace sentinel::cli {
namespace {

using nlohmann::ordered_json;

Result<Format> TreeFormat(const CommandContext& ctx) {
  ASSIGN_OR_RETURN(Format format, ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false));
  if (format == Format::kCsv) return InvalidArgumentError("a process tree prints as table or json, not csv");
  return format;
}

// A process or alert the store does not have is a bad argument (exit 2),
// as for `alerts show` with an unknown id; anything else is the store's
// failure (exit 1).
int FailLookup(const CommandContext& ctx, const Status& s) {
  return s.code() == StatusCode::kNotFound ? Fail(ctx, InvalidArgumentError(s.message()))
                                           : FailRuntime(ctx, s);
}

int Print(const CommandContext& ctx, Format format, const ordered_json& doc, const std::string& heading) {
  Status s;
  if (format == Format::kJson) {
    s = WriteObject(format, *ctx.out, doc, ctx.term);
  } else {
    *ctx.out << heading;
    s = WriteProcessTreeText(*ctx.out, doc, ctx.term);
  }
  if (!s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

}  // namespace

int RunProcess(const CommandContext& ctx, const ProcessArgs& args) {
  auto format = TreeFormat(ctx);
  if (!format.ok()) return Fail(ctx, format.status());
  auto pid = ParseInt64(args.pid);
  if (!pid || *pid <= 0)
    return Fail(ctx,
                InvalidArgumentError("pid: expected a positive integer, got " + QuoteForMessage(args.pid)));
  std::optional<int64_t> at;
  if (!args.at.empty()) {
    auto t = ParseTimePoint(args.at, NowMs());
    if (!t.ok()) return Fail(ctx, InvalidArgumentError("--at: " + t.status().message()));
    at = *t;
  }
  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());
  auto tree = history::ProcessTreeForPid(**db, *pid, at);
  if (!tree.ok()) return FailLookup(ctx, tree.status());
  return Print(ctx, *format, history::ProcessTreeToJson(*tree), "");
}

int RunAlertTree(const CommandContext& ctx, const std::string& id_text) {
  auto format = TreeFormat(ctx);
  if (!format.ok()) return Fail(ctx, format.status());
  auto id = ParseInt64(id_text);
  if (!id || *id <= 0)
    return Fail(
        ctx, InvalidArgumentError("alert id: expected a positive integer, got " + QuoteForMessage(id_text)));
  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());
  auto alert = alerting::GetAlert(**db, *id);
  if (!alert.ok()) return FailLookup(ctx, alert.status());
  auto tree = history::ProcessTreeForAlert(**db, *id);
  if (!tree.ok()) return FailLookup(ctx, tree.status());
  ordered_json doc = history::ProcessTreeToJson(*tree);
  doc["alert"] = alert->ToJson();
  std::string heading = "alert #" + std::to_string(alert->id) + "  " + FormatIso8601Ms(alert->alert_time) +
                        "  " + std::string(models::SeverityName(alert->severity)) + "  ";
  AppendEscapedText(heading, alert->rule_id);
  heading += "  ";
  AppendEscapedText(heading, alert->title);
  heading += "\n\n";
  return Print(ctx, *format, doc, heading);
}

}  // namespace sentinel::cli
