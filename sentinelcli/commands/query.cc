#include "sentinelcli/commands/query.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <map>
#include <ostream>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/sql_guard.h"

namespace sentinel::cli {
namespace {

struct ParamValue {
  bool is_int = false;
  int64_t integer = 0;
  std::string text;
};

// NAME=VALUE; NAME may carry its ':' prefix. Integers bind as integers so
// `--param pid=42` compares equal to an INTEGER column.
Result<std::map<std::string, ParamValue>> ParseParams(const std::vector<std::string>& raw) {
  std::map<std::string, ParamValue> out;
  for (const auto& p : raw) {
    auto eq = p.find('=');
    if (eq == std::string::npos) {
      return InvalidArgumentError("--param " + QuoteForMessage(p) + ": expected NAME=VALUE");
    }
    std::string name = p.substr(0, eq);
    if (!name.empty() && (name[0] == ':' || name[0] == '@' || name[0] == '$')) name = name.substr(1);
    if (name.empty()) return InvalidArgumentError("--param " + QuoteForMessage(p) + ": empty parameter name");
    for (char c : name) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
        return InvalidArgumentError("--param " + QuoteForMessage(p) +
                                    ": parameter names are letters, digits and _");
      }
    }
    ParamValue v;
    v.text = p.substr(eq + 1);
    if (auto n = ParseInt64(v.text)) {
      v.is_int = true;
      v.integer = *n;
    }
    out[name] = v;
  }
  return out;
}

Cell ToCell(const detection::WireCell& c) {
  switch (c.type) {
    case detection::WireCell::Type::kInteger: return Cell::Integer(c.integer);
    case detection::WireCell::Type::kReal: return Cell::Real(c.real);
    case detection::WireCell::Type::kText: return Cell::Text(c.bytes);
    case detection::WireCell::Type::kBlob: return Cell::Blob(c.bytes);
    default: return Cell::Null();
  }
}

// The request without its default parameters: SQL, --param values, time limit.
detection::QueryRequest MakeRequest(const CommandContext& ctx, const QueryArgs& args,
                                    const std::map<std::string, ParamValue>& params) {
  detection::QueryRequest request;
  request.sql = args.sql;
  request.limits.timeout_ms = ctx.config.config.detection.rule_timeout_secs * 1000;
  for (const auto& [name, v] : params) {
    detection::QueryParam p;
    p.type = v.is_int ? detection::QueryParam::Type::kInteger : detection::QueryParam::Type::kText;
    p.integer = v.integer;
    p.text = v.text;
    request.user_params[name] = std::move(p);
  }
  return request;
}

// Streams the worker's rows to `writer` (after Begin, before End): skips
// --offset rows, stops after --limit. A failed row read ends the writer's
// output first; its error is InvalidArgument when the query is the caller's
// fault (exit 2), anything else for a stopped query or I/O (exit 1).
Status CopyRows(detection::QueryWorker& worker, RowWriter& writer, const QueryArgs& args, Progress& progress,
                int64_t* written) {
  int64_t skipped = 0;
  const int64_t offset = args.offset.value_or(0);
  std::vector<detection::WireCell> row;
  std::vector<Cell> cells;
  while (!args.limit || *written < *args.limit) {
    auto more = worker.NextRow(&row);
    if (!more.ok()) {
      writer.End().IgnoreError();
      return more.status();
    }
    if (!*more) break;
    if (skipped < offset) {
      ++skipped;
      continue;
    }
    cells.resize(row.size());
    for (std::size_t i = 0; i < row.size(); ++i) cells[i] = ToCell(row[i]);
    RETURN_IF_ERROR(writer.Row(cells));
    progress.Update(++*written);
  }
  return Status::Ok();
}

}  // namespace

int RunQuery(const CommandContext& ctx, const QueryArgs& args) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  if (args.limit && *args.limit < 0) return Fail(ctx, InvalidArgumentError("--limit must be >= 0"));
  if (args.offset && *args.offset < 0) return Fail(ctx, InvalidArgumentError("--offset must be >= 0"));
  auto params = ParseParams(args.params);
  if (!params.ok()) return Fail(ctx, params.status());

  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());

  detection::QueryRequest request = MakeRequest(ctx, args, *params);
  auto defaults = detection::StandardQueryParams(**db, NowMs());
  if (!defaults.ok()) return FailRuntime(ctx, defaults.status());
  request.default_params = std::move(*defaults);

  auto trail = OpenCliTrail(ctx);
  auto audit = [&](const std::string& action, nlohmann::json data) {
    if (!trail) return;
    data["sql"] = args.sql;
    data["uid"] = static_cast<int64_t>(::getuid());
    trail->Record(action, data);
  };
  // The query is compiled (sandbox), bound and run in a worker process
  // that is killed at the time limit, whatever SQLite is doing.
  detection::WorkerSetup setup;
  setup.database_path = (*db)->path();
  setup.busy_timeout_ms = ctx.config.config.database.busy_timeout_ms;
  auto worker = detection::QueryWorker::Start(setup);
  if (!worker.ok()) return FailRuntime(ctx, worker.status());
  auto columns = (*worker)->BeginQuery(request);
  if (!columns.ok()) {
    if (columns.status().code() != StatusCode::kInvalidArgument) return FailRuntime(ctx, columns.status());
    audit("query_rejected", {{"error", columns.status().message()}});
    return Fail(ctx, columns.status());
  }

  auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
  Status s = writer->Begin(*columns);
  if (!s.ok()) return Fail(ctx, s);
  int64_t written = 0;
  auto progress = MakeProgress(ctx, "query", "rows", /*streams_to_stdout=*/true);
  s = CopyRows(**worker, *writer, args, *progress, &written);
  progress->Finish();
  if (!s.ok()) return Fail(ctx, s);
  s = writer->End();
  audit("query_executed", {{"rows", written}, {"ok", s.ok()}});
  if (!s.ok()) return Fail(ctx, s);
  return kExitOk;
}

}  // namespace sentinel::cli
