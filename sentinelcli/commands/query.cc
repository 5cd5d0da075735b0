#include "sentinelcli/commands/query.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <map>
#include <ostream>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
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

// Values for the rule parameters of SPEC §6, so a rule's query can be tried
// as is with `sentinelcli query`.
Status BindStandardParam(storage::Database& db, const std::string& name, storage::Statement& st, int idx,
                         bool* bound) {
  *bound = true;
  if (name == "now_ms") return st.BindInt(idx, NowMs());
  if (name == "last_run_ms") return st.BindInt(idx, 0);
  if (name == "scan_id" || name == "prev_scan_id") {
    // The database is opened read-only with only the guard's reads allowed
    // during prepare; these helper reads run outside the guard.
    auto latest =
        db.QueryInt(name == "scan_id" ? "SELECT MAX(scan_id) FROM scan_metadata WHERE status='completed'"
                                      : "SELECT scan_id FROM scan_metadata WHERE status='completed'"
                                        " ORDER BY scan_id DESC LIMIT 1 OFFSET 1");
    if (!latest.ok()) return latest.status();
    return st.BindOptionalInt(idx, *latest);
  }
  *bound = false;
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

  detection::GuardLimits limits;
  limits.timeout_ms = ctx.config.config.detection.rule_timeout_secs * 1000;
  auto trail = OpenCliTrail(ctx);
  auto audit = [&](const std::string& action, nlohmann::json data) {
    if (!trail) return;
    data["sql"] = args.sql;
    data["uid"] = static_cast<int64_t>(::getuid());
    trail->Record(action, data);
  };
  auto q = detection::GuardedQuery::Prepare(**db, args.sql, limits);
  if (!q.ok()) {
    audit("query_rejected", {{"error", q.status().message()}});
    return Fail(ctx, q.status());
  }
  storage::Statement& st = (*q)->statement();

  // Bind parameters by name; every parameter must get a value.
  std::map<std::string, bool> used;
  const int nparams = sqlite3_bind_parameter_count(st.raw());
  for (int i = 1; i <= nparams; ++i) {
    const char* raw_name = sqlite3_bind_parameter_name(st.raw(), i);
    if (!raw_name) {
      return Fail(ctx, InvalidArgumentError(
                           "positional parameter ?" + std::to_string(i) +
                           " cannot be bound; use a named parameter (:name) and --param name=VALUE"));
    }
    std::string name = raw_name + 1;
    auto it = params->find(name);
    Status s;
    if (it != params->end()) {
      used[name] = true;
      s = it->second.is_int ? st.BindInt(i, it->second.integer) : st.BindText(i, it->second.text);
    } else {
      bool bound = false;
      s = BindStandardParam(**db, name, st, i, &bound);
      if (s.ok() && !bound) {
        return Fail(ctx, InvalidArgumentError("parameter " + std::string(raw_name) +
                                              " has no value (use --param " + name + "=VALUE)"));
      }
    }
    if (!s.ok()) return Fail(ctx, s);
  }
  for (const auto& [name, v] : *params) {
    if (!used.count(name)) {
      return Fail(ctx, InvalidArgumentError("--param " + name + ": the query has no parameter :" + name));
    }
  }

  auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
  Status s = writer->Begin(StatementColumns(st));
  if (!s.ok()) return Fail(ctx, s);
  int64_t skipped = 0, written = 0;
  const int64_t offset = args.offset.value_or(0);
  while (!args.limit || written < *args.limit) {
    auto row = (*q)->Step();
    if (!row.ok()) {
      writer->End().IgnoreError();
      Status err = row.status();
      // A rejected or stopped query is the caller's; I/O is a runtime failure.
      if (err.code() == StatusCode::kInvalidArgument) return Fail(ctx, err);
      return FailRuntime(ctx, err);
    }
    if (!*row) break;
    if (skipped < offset) {
      ++skipped;
      continue;
    }
    s = WriteStatementRow(st, *writer);
    if (!s.ok()) return Fail(ctx, s);
    ++written;
  }
  s = writer->End();
  audit("query_executed", {{"rows", written}, {"ok", s.ok()}});
  if (!s.ok()) return Fail(ctx, s);
  return kExitOk;
}

}  // namespace sentinel::cli
