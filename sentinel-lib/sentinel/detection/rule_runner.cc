#include "sentinel/detection/rule_runner.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <span>

#include "sentinel/base/strings.h"
#include "sentinel/crypto/hex.h"
#include "sentinel/storage/migrations.h"

namespace sentinel::detection {
namespace {

constexpr std::array<std::string_view, 4> kStandardParams = {"now_ms", "last_run_ms", "scan_id",
                                                             "prev_scan_id"};

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Checks the statement's parameters; with `params`, binds them.
Status CheckAndBindParameters(const Rule& rule, storage::Statement& st, const RunParams* params) {
  sqlite3_stmt* raw = st.raw();
  const int n = sqlite3_bind_parameter_count(raw);
  for (int i = 1; i <= n; ++i) {
    const char* full = sqlite3_bind_parameter_name(raw, i);
    if (full == nullptr) {
      return InvalidArgumentError(rule.source_path +
                                  ": query: positional parameter '?' is not allowed; use :now_ms, "
                                  ":last_run_ms, :scan_id or :prev_scan_id");
    }
    std::string_view name(full);
    if (name.empty() || name[0] != ':' || !IsStandardParameter(name.substr(1))) {
      return InvalidArgumentError(rule.source_path + ": query: unknown parameter " + QuoteForMessage(name) +
                                  " (rules may use :now_ms, :last_run_ms, :scan_id, :prev_scan_id)");
    }
    if (params == nullptr) continue;
    name.remove_prefix(1);
    Status s;
    if (name == "now_ms") {
      s = st.BindInt(i, params->now_ms);
    } else if (name == "last_run_ms") {
      s = st.BindInt(i, params->last_run_ms);
    } else if (name == "scan_id") {
      s = st.BindOptionalInt(i, params->scan_id);
    } else {
      s = st.BindOptionalInt(i, params->prev_scan_id);
    }
    RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

Status CheckDedupKeys(const Rule& rule, storage::Statement& st) {
  std::vector<std::string> cols;
  for (int i = 0; i < st.ColumnCount(); ++i) cols.push_back(st.ColumnName(i));
  for (const auto& key : rule.dedup_keys) {
    if (std::find(cols.begin(), cols.end(), key) == cols.end()) {
      return InvalidArgumentError(rule.source_path + ": dedup_keys: " + QuoteForMessage(key) +
                                  " is not a column of the query's result (columns: " + Join(cols, ", ") +
                                  ")");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<GuardedQuery>> Compile(storage::Database& db, const Rule& rule,
                                              const GuardLimits& limits) {
  auto q = GuardedQuery::Prepare(db, rule.query, limits);
  if (!q.ok()) {
    return Status(q.status().code(), rule.source_path + ": query: " + q.status().message());
  }
  return std::move(*q);
}

nlohmann::ordered_json Cell(storage::Statement& st, int i) {
  switch (st.ColumnType(i)) {
    case SQLITE_INTEGER: return st.ColumnInt(i);
    case SQLITE_FLOAT: return st.ColumnDouble(i);
    case SQLITE_TEXT: return st.ColumnText(i);
    case SQLITE_BLOB: {
      const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st.raw(), i));
      const int len = sqlite3_column_bytes(st.raw(), i);
      return crypto::ToHex(std::span<const uint8_t>(p, p ? static_cast<std::size_t>(len) : 0));
    }
    default: return nullptr;
  }
}

}  // namespace

bool IsStandardParameter(std::string_view name) {
  return std::find(kStandardParams.begin(), kStandardParams.end(), name) != kStandardParams.end();
}

Status FillScanIds(storage::Database& db, RunParams* params) {
  ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT scan_id FROM scan_metadata WHERE status = 'completed' "
                                       "ORDER BY scan_id DESC LIMIT 2"));
  params->scan_id.reset();
  params->prev_scan_id.reset();
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Status::Ok();
  params->scan_id = st.ColumnInt(0);
  ASSIGN_OR_RETURN(row, st.Step());
  if (row) params->prev_scan_id = st.ColumnInt(0);
  return Status::Ok();
}

namespace {

// A read-only store connection runs with query_only, which covers the temp
// schema too. A rule connection lifts it once, for good: the snapshot and
// every batch are written into TEMP tables, and toggling the pragma around
// each write would expire every compiled statement of the connection
// (SQLite's flag pragmas do), so each cached rule would be compiled again
// for each batch (a third of the agent's CPU in an exec storm). The main
// database stays unwritable (SQLITE_OPEN_READONLY), and every rule or query
// is compiled under the sandbox's authorizer and must be read-only
// (sql_guard.cc): nothing a rule runs can write the TEMP tables either.
Status AllowTempWrites(storage::Database& db) {
  ASSIGN_OR_RETURN(auto query_only, db.QueryInt("PRAGMA query_only"));
  if (query_only.value_or(0) == 0) return Status::Ok();
  return db.Exec("PRAGMA query_only=0");
}

// The scan's processes as exec rows (the columns of process_events by name).
// A scan reads the names of the loader variables only (platform_data
// loader_env): their values are JSON null in env.
constexpr std::string_view kScanAsExecEvents = R"sql(
INSERT INTO temp.exec_events(id, event_time_ms, event_type, pid, ppid, name, exe_path, command_line, user_id,
  user_name, exit_code, exe_hash, start_time, cwd, tty, effective_uid, effective_gid, command_text,
  parent_exe_path, parent_name, parent_command_line, parent_command_text, parent_start_time,
  args_truncated, args_length, exe_host_mismatch, exe_memfd_seals, env)
SELECT NULL, p.start_time, 'exec', p.pid, p.ppid, p.name, p.exe_path, p.command_line, p.user_id,
  p.user_name, NULL, p.exe_hash, p.start_time,
  CASE WHEN pd THEN json_extract(p.platform_data, '$.cwd') END,
  CASE WHEN pd THEN json_extract(p.platform_data, '$.tty') END,
  p.effective_uid,
  CASE WHEN pd THEN json_extract(p.platform_data, '$.gid.effective') END,
  p.command_text, pp.exe_path, pp.name, pp.command_line, pp.command_text, pp.start_time,
  CASE WHEN pd THEN json_extract(p.platform_data, '$.args_truncated') END,
  CASE WHEN pd THEN json_extract(p.platform_data, '$.args_length') END,
  CASE WHEN pd THEN json_extract(p.platform_data, '$.exe_host_mismatch') END,
  CASE WHEN pd THEN json_extract(p.platform_data, '$.exe_memfd_seals') END,
  CASE WHEN pd AND p.platform_data GLOB '*"loader_env"*' THEN
    (SELECT json_group_object(value, NULL) FROM json_each(p.platform_data, '$.loader_env')) END
FROM (SELECT *, json_valid(platform_data) AS pd FROM temp.processes) p
LEFT JOIN temp.processes pp ON pp.pid = p.ppid AND pp.start_time <= p.start_time
)sql";

// What an event may lack, filled so that rules read both paths alike: the
// process start time (the exec's time when procmond could not read it), the
// joined arguments, and the parent from the snapshot when the event was
// written without it.
constexpr std::array<std::string_view, 3> kCompleteExecEvents = {
    "UPDATE temp.exec_events SET start_time = event_time_ms WHERE start_time IS NULL",
    "UPDATE temp.exec_events SET command_text = (SELECT group_concat(value, ' ') FROM "
    "json_each(command_line)) "
    "WHERE command_text IS NULL AND json_valid(command_line)",
    "UPDATE temp.exec_events AS e SET parent_exe_path = p.exe_path, parent_name = p.name, "
    "parent_command_line = p.command_line, parent_command_text = p.command_text, parent_start_time = "
    "p.start_time "
    "FROM temp.processes AS p WHERE e.parent_name IS NULL AND e.parent_exe_path IS NULL AND p.pid = e.ppid "
    "AND p.start_time <= e.start_time",
};

// Fills TEMP exec_changed with the pids of the snapshot's processes whose
// exec row may differ from what it was at scan `since_scan` (decision 71).
Status FindChangedSince(storage::Database& db, int64_t since_scan) {
  // process_snapshots.id is scan_id * 2^32 + instance_id (migrations.cc);
  // ?1 is since_scan.
  static constexpr std::array<std::string_view, 7> kSteps = {
      "CREATE TEMP TABLE IF NOT EXISTS exec_changed(pid INTEGER PRIMARY KEY)",
      "DELETE FROM temp.exec_changed",
      "CREATE TEMP TABLE IF NOT EXISTS exec_new_instances(instance_id INTEGER PRIMARY KEY)",
      "DELETE FROM temp.exec_new_instances",
      "INSERT OR IGNORE INTO temp.exec_new_instances SELECT instance_id FROM main.process_instances "
      "WHERE last_scan_id >= (SELECT min(scan_id) FROM temp.processes) AND first_scan_id > ?1",
      "INSERT OR IGNORE INTO temp.exec_changed SELECT p.pid FROM temp.processes p "
      "WHERE (p.id & 4294967295) IN (SELECT instance_id FROM temp.exec_new_instances) "
      "OR (p.id & 4294967295) IN (SELECT instance_id FROM main.process_states WHERE scan_id > ?1)",
      "INSERT OR IGNORE INTO temp.exec_changed SELECT c.pid FROM temp.processes c "
      "JOIN temp.processes pp ON pp.pid = c.ppid "
      "WHERE (pp.id & 4294967295) IN (SELECT instance_id FROM temp.exec_new_instances)",
  };
  for (std::string_view step : kSteps) {
    ASSIGN_OR_RETURN(storage::Statement st, db.Prepare(std::string(step)));
    if (step.find("?1") != std::string_view::npos) RETURN_IF_ERROR(st.BindInt(1, since_scan));
    RETURN_IF_ERROR(st.Run());
  }
  return Status::Ok();
}

// Replaces the rows of an existing temp.processes with scan `scan_id`'s,
// leaving the schema as it was (a long-lived worker's compiled rules stay
// valid). False when there is no such table or the refill failed (the
// store's columns changed under a running worker): then it is made anew.
bool RefillSnapshot(storage::Database& db, std::optional<int64_t> scan_id) {
  auto exists =
      db.QueryInt("SELECT count(*) FROM temp.sqlite_master WHERE type = 'table' AND name = 'processes'");
  if (!exists.ok() || exists->value_or(0) == 0) return false;
  if (!db.Exec("SAVEPOINT refill").ok()) return false;
  auto refill = [&]() -> Status {
    RETURN_IF_ERROR(db.Exec("DELETE FROM temp.processes"));
    ASSIGN_OR_RETURN(auto st, db.Prepare("INSERT INTO temp.processes SELECT * FROM main.process_snapshots "
                                         "WHERE scan_id = ?1"));
    RETURN_IF_ERROR(st.BindOptionalInt(1, scan_id));
    return st.Run();
  };
  if (refill().ok()) return db.Exec("RELEASE refill").ok();
  [[maybe_unused]] Status s = db.Exec("ROLLBACK TO refill");
  s = db.Exec("RELEASE refill");
  return false;
}

Status BuildSnapshot(storage::Database& db, std::optional<int64_t> scan_id,
                     std::optional<int64_t> exec_since) {
  // In memory: every rule scans it; 10,000 processes take a few MB.
  ASSIGN_OR_RETURN(auto temp_store, db.QueryInt("PRAGMA temp_store"));
  if (temp_store.value_or(0) != 2) RETURN_IF_ERROR(db.Exec("PRAGMA temp_store=MEMORY"));
  RETURN_IF_ERROR(db.Exec("PRAGMA temp.cache_size=-65536"));
  if (!RefillSnapshot(db, scan_id)) {
    RETURN_IF_ERROR(db.Exec("DROP TABLE IF EXISTS temp.processes"));
    ASSIGN_OR_RETURN(auto st,
                     db.Prepare("CREATE TEMP TABLE processes AS SELECT * FROM main.process_snapshots "
                                "WHERE scan_id = ?1"));
    RETURN_IF_ERROR(st.BindOptionalInt(1, scan_id));
    RETURN_IF_ERROR(st.Run());
    RETURN_IF_ERROR(db.Exec("CREATE INDEX temp.processes_pid ON processes(pid)"));
    RETURN_IF_ERROR(db.Exec("CREATE INDEX temp.processes_ppid ON processes(ppid)"));
  }
  if (!exec_since) return db.Exec(ExecEventsFromSnapshotSql());
  RETURN_IF_ERROR(FindChangedSince(db, *exec_since));
  static const std::string changed_only =
      std::string(ExecEventsFromSnapshotSql()) + "WHERE p.pid IN (SELECT pid FROM temp.exec_changed)\n";
  return db.Exec(changed_only);
}

}  // namespace

std::string_view ExecEventsFromSnapshotSql() {
  // exec_events is created once per connection with process_events' columns; later only its rows
  // change, so the statements of exec rules compiled against it stay valid.
  static const std::string sql =
      "CREATE TEMP TABLE IF NOT EXISTS exec_events AS SELECT * FROM main.process_events WHERE 0;\n"
      "DELETE FROM temp.exec_events;\n" +
      std::string(kScanAsExecEvents);
  return sql;
}

Status PrepareRuleSnapshot(storage::Database& db, std::optional<int64_t> scan_id,
                           std::optional<int64_t> exec_changed_since) {
  RETURN_IF_ERROR(AllowTempWrites(db));
  return BuildSnapshot(db, scan_id, exec_changed_since);
}

Result<int64_t> LoadExecBatch(storage::Database& db, int64_t after_id, int64_t up_to_id) {
  RETURN_IF_ERROR(AllowTempWrites(db));
  // Every statement kept prepared: at a few dozen execs per batch, parsing
  // them again was a tenth of the worker's CPU. (SQLite prepares one again
  // by itself when a snapshot rebuild changed the schema.)
  ASSIGN_OR_RETURN(storage::Statement clear, db.PrepareCached("DELETE FROM temp.exec_events"));
  RETURN_IF_ERROR(clear.Run());
  ASSIGN_OR_RETURN(storage::Statement st,
                   db.PrepareCached("INSERT INTO temp.exec_events SELECT * FROM main.process_events "
                                    "WHERE id > ?1 AND id <= ?2 AND event_type = 'exec'"));
  RETURN_IF_ERROR(st.BindInt(1, after_id));
  RETURN_IF_ERROR(st.BindInt(2, up_to_id));
  RETURN_IF_ERROR(st.Run());
  const int64_t rows = db.Changes();
  for (std::string_view sql : kCompleteExecEvents) {
    ASSIGN_OR_RETURN(storage::Statement complete, db.PrepareCached(sql));
    RETURN_IF_ERROR(complete.Run());
  }
  return rows;
}

Result<std::unique_ptr<storage::Database>> OpenSchemaOnlyEventStore() {
  ASSIGN_OR_RETURN(auto db, storage::Database::Open(":memory:", storage::OpenMode::kReadWrite));
  RETURN_IF_ERROR(storage::Migrate(*db, storage::DatabaseKind::kEvents));
  // Rules are validated where they run: with the (here empty) snapshot.
  RETURN_IF_ERROR(PrepareRuleSnapshot(*db, std::nullopt));
  return db;
}

Status ValidateRuleQuery(storage::Database& db, const Rule& rule) {
  ASSIGN_OR_RETURN(auto q, Compile(db, rule, GuardLimits{}));
  RETURN_IF_ERROR(CheckAndBindParameters(rule, q->statement(), nullptr));
  return CheckDedupKeys(rule, q->statement());
}

Result<std::unique_ptr<GuardedQuery>> PrepareRule(storage::Database& db, const Rule& rule,
                                                  const RunParams& params, const GuardLimits& limits) {
  ASSIGN_OR_RETURN(auto q, Compile(db, rule, limits));
  RETURN_IF_ERROR(CheckAndBindParameters(rule, q->statement(), &params));
  RETURN_IF_ERROR(CheckDedupKeys(rule, q->statement()));
  return q;
}

Status BindRuleParameters(const Rule& rule, GuardedQuery& query, const RunParams& params) {
  return CheckAndBindParameters(rule, query.statement(), &params);
}

Result<RuleResult> RunRule(storage::Database& db, const Rule& rule, const RunParams& params,
                           const RunLimits& limits) {
  const int64_t start = SteadyMs();
  ASSIGN_OR_RETURN(auto q, PrepareRule(db, rule, params, limits.guard));
  auto& st = q->statement();
  RuleResult result;
  for (int i = 0; i < st.ColumnCount(); ++i) result.columns.push_back(st.ColumnName(i));
  while (true) {
    auto more = q->Step();
    if (!more.ok()) {
      return Status(more.status().code(), "rule " + rule.id + ": " + more.status().message());
    }
    if (!*more) break;
    if (result.rows.size() >= limits.max_rows) {
      result.truncated = true;
      break;
    }
    nlohmann::ordered_json row = nlohmann::ordered_json::object();
    for (int i = 0; i < st.ColumnCount(); ++i) row[result.columns[i]] = Cell(st, i);
    result.rows.push_back(std::move(row));
  }
  result.duration_ms = SteadyMs() - start;
  return result;
}

}  // namespace sentinel::detection
