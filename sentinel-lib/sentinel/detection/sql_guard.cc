#include "sentinel/detection/sql_guard.h"

#include <sqlite3.h>

#include <array>
#include <cctype>
#include <string>
#include <vector>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/detection/regexp_function.h"
#include "sentinel/storage/tables.h"

namespace sentinel::detection {
namespace {

// Functions a read-only analytic query may call. Anything not listed is
// refused — notably load_extension, readfile/writefile/edit (shell
// extensions), fts3_tokenizer, randomblob/zeroblob (memory bombs),
// sqlite_* introspection and the sqlite_compileoption_* family.
constexpr std::string_view kAllowedFunctions[] = {
    // aggregates and windows
    "count",
    "sum",
    "total",
    "avg",
    "min",
    "max",
    "group_concat",
    "string_agg",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // core scalar
    "abs",
    "char",
    "coalesce",
    "format",
    "glob",
    "hex",
    "ifnull",
    "iif",
    "instr",
    "length",
    "like",
    "likelihood",
    "likely",
    "lower",
    "ltrim",
    "max",
    "min",
    "nullif",
    "printf",
    "quote",
    "replace",
    "round",
    "rtrim",
    "sign",
    "substr",
    "substring",
    "trim",
    "typeof",
    "unicode",
    "unlikely",
    "upper",
    "octet_length",
    "concat",
    "concat_ws",
    // RE2, linear time (regexp_function.h): the only regexp, also behind `x REGEXP p`
    "regexp",
    // math
    "ceil",
    "ceiling",
    "floor",
    "trunc",
    "mod",
    "pow",
    "power",
    "sqrt",
    "exp",
    "ln",
    "log",
    "log2",
    "log10",
    "pi",
    // date and time
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    // JSON readers and builders (nothing that writes the database)
    "json",
    "json_array",
    "json_array_length",
    "json_extract",
    "json_object",
    "json_quote",
    "json_type",
    "json_valid",
    "json_group_array",
    "json_group_object",
    "json_each",
    "json_tree",
    "json_patch",
    "json_remove",
    "json_set",
    "json_insert",
    "json_replace",
    "->",
    "->>",
};

// Table-valued functions that are read like tables.
constexpr std::string_view kAllowedVirtualReads[] = {"json_each", "json_tree"};

struct AuthState {
  std::string denial;                     // first refusal, for the error message
  bool denial_is_schema = false;          // ... and it was only sqlite_master access
  std::vector<std::string> schema_names;  // tables and views that really exist
  // The connection holds the frozen `processes` snapshot of a detection
  // cycle (rule_runner.h): `processes` must then come from it.
  bool snapshot = false;
};

constexpr const char* kAllowedList =
    "allowed: processes, process_snapshots, scan_metadata, process_events, writable_dirs, exec_events (on: "
    "exec rules)";

bool IsSchemaObject(const AuthState& st, std::string_view name) {
  if (StartsWith(ToLower(name), "sqlite_")) return true;  // sqlite_schema does not list itself
  for (const auto& n : st.schema_names)
    if (EqualsIgnoreCase(n, name)) return true;
  return false;
}

bool IsVisible(std::string_view table) {
  return storage::FindRuleVisibleTable(table) != nullptr;
}

// Records why a statement is refused and denies it. The first refusal is
// kept, except that naming the statement kind (DROP, CREATE, ...) beats the
// schema-table access SQLite reports before it.
int Deny(AuthState* st, std::string why, bool statement_kind = false) {
  if (st->denial.empty() || (statement_kind && st->denial_is_schema)) {
    st->denial = std::move(why);
    st->denial_is_schema = false;
  }
  return SQLITE_DENY;
}

// SQLITE_READ of `table`.`column` in database `db_name` (null: a CTE or
// subquery), through view `via` (empty: directly).
int AuthorizeRead(AuthState* st, const char* db_name, std::string_view table, std::string_view column,
                  std::string_view via) {
  if (db_name && std::string_view(db_name) != "main") {
    // The temp schema holds only what SentinelD put there (rules cannot
    // create anything): the per-cycle `processes` snapshot and the
    // `exec_events` of exec rules (rule_runner.h).
    const bool snapshot =
        std::string_view(db_name) == "temp" && (IsVisible(table) || EqualsIgnoreCase(table, "exec_events"));
    if (!snapshot) return Deny(st, "reading from database \"" + std::string(db_name) + "\" is not allowed");
    return SQLITE_OK;
  }
  if (st->snapshot && EqualsIgnoreCase(via, "processes")) {
    // Only the live view of the main schema is read through a view
    // named processes: main.processes, which would bypass the frozen
    // snapshot every other reference reads.
    return Deny(st,
                "main.processes is not allowed in a rule: it bypasses the frozen snapshot of the scan "
                "that :scan_id names (write processes)");
  }
  if (IsVisible(table)) return SQLITE_OK;
  // Base tables are readable only through an allowed view.
  if (!via.empty() && IsVisible(via)) return SQLITE_OK;
  // A column-less read (count(*), SELECT 1 FROM x) names no schema:
  // allowed for a CTE, never for a table of the store. (SQLite reports
  // the reads of a view's base tables with their columns and the view.)
  if (column.empty() && !db_name && !IsSchemaObject(*st, table)) return SQLITE_OK;
  for (auto v : kAllowedVirtualReads)
    if (table == v) return SQLITE_OK;
  return Deny(st, "table \"" + std::string(table) + "\" is not readable (" + kAllowedList + ")");
}

// SQLITE_INSERT, SQLITE_UPDATE or SQLITE_DELETE of `table`.
int AuthorizeWrite(AuthState* st, std::string_view table) {
  if (EqualsIgnoreCase(table, "sqlite_master")) {
    // SQLite touches the schema table when a virtual table (such as a
    // table-valued pragma) is first used on the connection.
    Deny(st, "schema access through sqlite_master (virtual tables, table-valued pragmas) is not allowed");
    if (st->denial.rfind("schema access", 0) == 0) st->denial_is_schema = true;
    return SQLITE_DENY;
  }
  return Deny(st, "writing to \"" + std::string(table) + "\" is not allowed");
}

// Why an action that is never allowed is refused; `statement_kind` when the
// reason names the kind of statement (CREATE, DROP, ALTER or unknown).
std::string Refusal(int action, std::string_view arg3, bool* statement_kind) {
  *statement_kind = false;
  switch (action) {
    case SQLITE_PRAGMA: return "PRAGMA " + std::string(arg3) + " is not allowed";
    case SQLITE_ATTACH: return "ATTACH is not allowed";
    case SQLITE_DETACH: return "DETACH is not allowed";
    case SQLITE_TRANSACTION: return "transactions (" + std::string(arg3) + ") are not allowed";
    case SQLITE_SAVEPOINT: return "SAVEPOINT is not allowed";
    case SQLITE_ANALYZE: return "ANALYZE is not allowed";
    case SQLITE_REINDEX: return "REINDEX is not allowed";
    default: break;
  }
  *statement_kind = true;
  switch (action) {
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_VTABLE: return "CREATE is not allowed (only SELECT)";
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_VTABLE: return "DROP is not allowed (only SELECT)";
    case SQLITE_ALTER_TABLE: return "ALTER TABLE is not allowed (only SELECT)";
    default: return "statement kind " + std::to_string(action) + " is not allowed (only SELECT)";
  }
}

int Authorize(void* user, int action, const char* a3, const char* a4, const char* db_name, const char* view) {
  auto* st = static_cast<AuthState*>(user);
  std::string_view arg3 = a3 ? a3 : "";
  std::string_view arg4 = a4 ? a4 : "";
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE: return SQLITE_OK;
    case SQLITE_READ: return AuthorizeRead(st, db_name, arg3, arg4, view ? view : "");
    case SQLITE_FUNCTION:
      if (IsAllowedFunction(ToLower(arg4))) return SQLITE_OK;
      return Deny(st, "function " + std::string(arg4) + "() is not allowed");
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE: return AuthorizeWrite(st, arg3);
    default: {
      bool statement_kind = false;
      std::string why = Refusal(action, arg3, &statement_kind);
      return Deny(st, std::move(why), statement_kind);
    }
  }
}

bool OnlyTrivia(std::string_view rest) {
  // After the one statement only whitespace, ';' and comments may follow.
  size_t i = 0;
  while (i < rest.size()) {
    char c = rest[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';' || c == '\f' || c == '\v') {
      ++i;
    } else if (rest.substr(i, 2) == "--") {
      size_t nl = rest.find('\n', i);
      i = nl == std::string_view::npos ? rest.size() : nl + 1;
    } else if (rest.substr(i, 2) == "/*") {
      size_t end = rest.find("*/", i + 2);
      i = end == std::string_view::npos ? rest.size() : end + 2;
    } else {
      return false;
    }
  }
  return true;
}

// Readies the connection for the authorizer and fills what it consults: the
// tables and views of the store and whether the frozen `processes` snapshot
// is there.
Status PrepareAuthState(storage::Database& db, AuthState* auth) {
  // Instantiate the allowed table-valued functions before the authorizer is
  // armed: their first use on a connection makes SQLite write its in-memory
  // schema, which the authorizer would otherwise have to allow.
  for (const char* warm : {"SELECT * FROM json_each('[]')", "SELECT * FROM json_tree('[]')"}) {
    sqlite3_exec(db.raw(), warm, nullptr, nullptr, nullptr);
  }
  ASSIGN_OR_RETURN(auto names, db.Prepare("SELECT name FROM sqlite_schema WHERE type IN ('table','view')"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, names.Step());
    if (!row) break;
    auth->schema_names.push_back(names.ColumnText(0));
  }
  ASSIGN_OR_RETURN(
      auto snap, db.Prepare("SELECT 1 FROM sqlite_temp_schema WHERE type = 'table' AND name = 'processes'"));
  ASSIGN_OR_RETURN(auth->snapshot, snap.Step());
  return Status::Ok();
}

// The InvalidArgument for a query that did not compile: the authorizer's
// refusal, else SQLite's message `err`.
Status Rejection(std::string_view sql, const AuthState& auth, const std::string& err) {
  if (auth.denial_is_schema) {
    // SQLite reports the schema-table write of DROP/CREATE/ALTER before
    // the statement itself; name the statement the user wrote.
    std::string_view rest = Trim(sql);
    size_t n = 0;
    while (n < rest.size() && std::isalpha(static_cast<unsigned char>(rest[n]))) ++n;
    std::string kw = ToLower(rest.substr(0, n));
    for (const char* k : {"create", "drop", "alter"}) {
      if (kw == k)
        return InvalidArgumentError("query rejected: " + ToUpper(kw) + " is not allowed (only SELECT)");
    }
  }
  if (!auth.denial.empty()) return InvalidArgumentError("query rejected: " + auth.denial);
  // A build without regexp() (regexp_function.h): why, rather than SQLite's bare "no such function".
  if (ToLower(err) == "no such function: regexp") {
    if (std::string why = RegexpUnavailableReason(); !why.empty()) {
      return InvalidArgumentError("query rejected: " + why);
    }
  }
  return InvalidArgumentError("query rejected: " + err);
}

// A compiled statement runs only if it is the single, read-only SELECT of
// the query (`rest`: what follows it).
Status CheckCompiled(sqlite3_stmt* stmt, std::string_view rest) {
  if (!OnlyTrivia(rest)) {
    return InvalidArgumentError("query rejected: more than one statement (only a single SELECT is allowed)");
  }
  if (!sqlite3_stmt_readonly(stmt)) return InvalidArgumentError("query rejected: statement is not read-only");
  if (sqlite3_stmt_isexplain(stmt)) return InvalidArgumentError("query rejected: EXPLAIN is not allowed");
  if (sqlite3_column_count(stmt) == 0) return InvalidArgumentError("query rejected: not a SELECT");
  return Status::Ok();
}

}  // namespace

bool IsAllowedFunction(std::string_view name) {
  for (auto f : kAllowedFunctions)
    if (f == name) return true;
  return false;
}

Result<std::unique_ptr<GuardedQuery>> GuardedQuery::Prepare(storage::Database& db, std::string_view sql,
                                                            const GuardLimits& limits) {
  if (Trim(sql).empty()) return InvalidArgumentError("empty query");
  std::unique_ptr<GuardedQuery> q(new GuardedQuery(db, limits));
  sqlite3* raw = db.raw();
  RETURN_IF_ERROR(RegisterRegexpFunction(raw));
  AuthState auth;
  RETURN_IF_ERROR(PrepareAuthState(db, &auth));
  sqlite3_set_authorizer(raw, Authorize, &auth);
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(raw, sql.data(), static_cast<int>(sql.size()), 0, &stmt, &tail);
  std::string err = rc == SQLITE_OK ? "" : sqlite3_errmsg(raw);
  sqlite3_set_authorizer(raw, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Rejection(sql, auth, err);
  }
  if (!stmt) return InvalidArgumentError("query rejected: no statement (only comments or whitespace)");
  q->stmt_ = storage::Statement(stmt, raw);
  RETURN_IF_ERROR(CheckCompiled(stmt, sql.substr(static_cast<size_t>(tail - sql.data()))));
  return q;
}

GuardedQuery::~GuardedQuery() {
  if (started_) sqlite3_progress_handler(db_.raw(), 0, nullptr, nullptr);
}

int GuardedQuery::Progress(void* self) {
  auto* q = static_cast<GuardedQuery*>(self);
  q->steps_ += 1000;
  if (q->limits_.max_vm_steps > 0 && q->steps_ > q->limits_.max_vm_steps) {
    q->stop_ = Stop::kSteps;
    return 1;
  }
  if (q->limits_.timeout_ms > 0 && MonotonicMs() > q->deadline_ms_) {
    q->stop_ = Stop::kTimeout;
    return 1;
  }
  return 0;
}

Result<bool> GuardedQuery::Step() {
  sqlite3* raw = db_.raw();
  if (!started_) {
    started_ = true;
    deadline_ms_ = MonotonicMs() + limits_.timeout_ms;
    sqlite3_limit(raw, SQLITE_LIMIT_LENGTH, limits_.max_length);
  }
  sqlite3_progress_handler(raw, 1000, &GuardedQuery::Progress, this);
  auto r = stmt_.Step();
  sqlite3_progress_handler(raw, 0, nullptr, nullptr);
  if (r.ok()) return r;
  if (stop_ == Stop::kTimeout) {
    return DeadlineExceededError("query stopped: exceeded its time limit of " +
                                 std::to_string(limits_.timeout_ms) + " ms");
  }
  if (stop_ == Stop::kSteps) {
    return ResourceExhaustedError("query stopped: exceeded its budget of " +
                                  std::to_string(limits_.max_vm_steps) + " VM steps");
  }
  if (sqlite3_errcode(raw) == SQLITE_NOMEM) {
    return ResourceExhaustedError("query stopped: it needed more memory than the ceiling of " +
                                  std::to_string(sqlite3_hard_heap_limit64(-1) >> 20) + " MiB");
  }
  return r.status();
}

void GuardedQuery::Rearm(const GuardLimits& limits) {
  sqlite3_reset(stmt_.raw());
  sqlite3_clear_bindings(stmt_.raw());
  limits_ = limits;
  steps_ = 0;
  started_ = false;
  stop_ = Stop::kNone;
}

int64_t SetMemoryCeiling(int64_t bytes) {
  return sqlite3_hard_heap_limit64(bytes);
}

}  // namespace sentinel::detection
