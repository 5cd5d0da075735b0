#include "sentinel/storage/sqlite.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sentinel/base/files.h"

namespace sentinel::storage {

Status SqliteError(int rc, std::string_view what, sqlite3* db) {
  std::string msg(what);
  msg += ": ";
  const char* detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += detail ? detail : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CANTOPEN: return NotFoundError(std::move(msg));
    case SQLITE_NOTADB: return InvalidArgumentError(std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return UnavailableError(std::move(msg));
    case SQLITE_FULL: return ResourceExhaustedError(std::move(msg));
    case SQLITE_READONLY:
    case SQLITE_AUTH:
    case SQLITE_PERM: return PermissionDeniedError(std::move(msg));
    case SQLITE_CORRUPT: return DataLossError(std::move(msg));
    case SQLITE_INTERRUPT: return DeadlineExceededError(std::move(msg));
    case SQLITE_NOMEM: return ResourceExhaustedError(std::move(msg));
    case SQLITE_ERROR:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
    case SQLITE_CONSTRAINT: return InvalidArgumentError(std::move(msg));
    default: return InternalError(std::move(msg));
  }
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, OpenMode mode,
                                                 int64_t busy_timeout_ms) {
  if (path.empty()) return InvalidArgumentError("database path is empty");
  // A store and its side files are never reached through a symbolic link
  // (issue 14): whoever owns the data directory could otherwise point them
  // at any file the opening process may write. Checked here for a clear
  // message; SQLITE_OPEN_NOFOLLOW (any link in the path) and the unix VFS's
  // O_NOFOLLOW on -wal, -shm and -journal hold against a later swap.
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) RETURN_IF_ERROR(RefuseSymlink(path + suffix));
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (mode == OpenMode::kReadOnly && !exists) {
    if (errno == EACCES) return PermissionDeniedError(path + ": cannot access database: Permission denied");
    return NotFoundError(path + ": database not found");
  }
  if (exists && S_ISDIR(st.st_mode))
    return InvalidArgumentError(path + ": is a directory, not a database file");
  if (exists && ::access(path.c_str(), R_OK) != 0) {
    return PermissionDeniedError(path + ": cannot read database: Permission denied");
  }
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW;
  flags |= mode == OpenMode::kReadOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc == SQLITE_CANTOPEN_SYMLINK) {
    sqlite3_close_v2(db);
    return RefusedPathError(path, "its path goes through a symbolic link");
  }
  if (rc != SQLITE_OK) {
    Status s = SqliteError(rc, path + ": cannot open database", db);
    sqlite3_close_v2(db);
    if (rc == SQLITE_CANTOPEN && mode == OpenMode::kReadWrite) {
      return PermissionDeniedError(s.message() + " (is the directory writable?)");
    }
    return s;
  }
  sqlite3_busy_timeout(db, static_cast<int>(busy_timeout_ms));
  sqlite3_extended_result_codes(db, 1);
  // Never let SQL text load code into this process.
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  // Treat the schema as untrusted when it came from someone else's file:
  // functions marked unsafe may not be used from triggers or views.
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  return std::unique_ptr<Database>(new Database(db, path, mode));
}

Database::~Database() {
  pool_->Close();
  sqlite3_close_v2(db_);
}

StatementPool::~StatementPool() {
  Close();
}

sqlite3_stmt* StatementPool::Take(std::string_view sql) {
  auto it = idle_.find(sql);
  if (it == idle_.end()) return nullptr;
  sqlite3_stmt* stmt = it->second;
  idle_.erase(it);
  return stmt;
}

void StatementPool::Give(std::string sql, sqlite3_stmt* stmt) {
  if (closed_ || idle_.size() >= kMaxIdle) {
    sqlite3_finalize(stmt);
    return;
  }
  idle_.emplace(std::move(sql), stmt);
}

void StatementPool::Close() {
  for (auto& [sql, stmt] : idle_) sqlite3_finalize(stmt);
  idle_.clear();
  closed_ = true;
}

Status Database::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Status st = SqliteError(rc, path_, nullptr);
    return Status(st.code(), path_ + ": " + msg);
  }
  return Status::Ok();
}

Result<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) return SqliteError(rc, "preparing statement", db_);
  if (!stmt) return InvalidArgumentError("empty SQL statement");
  return Statement(stmt, db_);
}

Result<Statement> Database::PrepareCached(std::string_view sql) {
  if (sqlite3_stmt* idle = pool_->Take(sql)) return Statement(idle, db_, pool_, std::string(sql));
  ASSIGN_OR_RETURN(Statement fresh, Prepare(sql));
  sqlite3_stmt* stmt = fresh.stmt_;
  fresh.stmt_ = nullptr;
  return Statement(stmt, db_, pool_, std::string(sql));
}

Result<std::optional<int64_t>> Database::QueryInt(std::string_view sql) {
  ASSIGN_OR_RETURN(Statement st, Prepare(sql));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) return std::optional<int64_t>();
  return std::optional<int64_t>(st.ColumnInt(0));
}

Result<std::optional<std::string>> Database::QueryText(std::string_view sql) {
  ASSIGN_OR_RETURN(Statement st, Prepare(sql));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) return std::optional<std::string>();
  return std::optional<std::string>(st.ColumnText(0));
}

int64_t Database::LastInsertRowId() const {
  return sqlite3_last_insert_rowid(db_);
}
int Database::Changes() const {
  return sqlite3_changes(db_);
}

Statement::~Statement() {
  Release();
}

void Statement::Release() {
  if (stmt_ == nullptr) return;
  if (pool_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    pool_->Give(std::move(sql_), stmt_);
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(other.stmt_), db_(other.db_), pool_(std::move(other.pool_)), sql_(std::move(other.sql_)) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    stmt_ = other.stmt_;
    db_ = other.db_;
    pool_ = std::move(other.pool_);
    sql_ = std::move(other.sql_);
    other.stmt_ = nullptr;
  }
  return *this;
}

Status Statement::Check(int rc, std::string_view what) {
  if (rc == SQLITE_OK) return Status::Ok();
  return SqliteError(rc, what, db_);
}

Status Statement::BindInt(int idx, int64_t v) {
  return Check(sqlite3_bind_int64(stmt_, idx, v), "bind");
}
Status Statement::BindDouble(int idx, double v) {
  return Check(sqlite3_bind_double(stmt_, idx, v), "bind");
}
Status Statement::BindText(int idx, std::string_view v) {
  return Check(sqlite3_bind_text64(stmt_, idx, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), "bind");
}
Status Statement::BindNull(int idx) {
  return Check(sqlite3_bind_null(stmt_, idx), "bind");
}
Status Statement::BindOptionalInt(int idx, const std::optional<int64_t>& v) {
  return v ? BindInt(idx, *v) : BindNull(idx);
}
Status Statement::BindOptionalText(int idx, const std::optional<std::string>& v) {
  return v ? BindText(idx, *v) : BindNull(idx);
}
Status Statement::BindOptionalDouble(int idx, const std::optional<double>& v) {
  return v ? BindDouble(idx, *v) : BindNull(idx);
}
int Statement::ParameterIndex(const char* name) const {
  return sqlite3_bind_parameter_index(stmt_, name);
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = SqliteError(rc, "executing statement", db_);
  sqlite3_reset(stmt_);
  return s;
}

Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) break;
  }
  Reset();
  return Status::Ok();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Statement::ColumnCount() const {
  return sqlite3_column_count(stmt_);
}
std::string Statement::ColumnName(int i) const {
  const char* n = sqlite3_column_name(stmt_, i);
  return n ? n : "";
}
int Statement::ColumnType(int i) const {
  return sqlite3_column_type(stmt_, i);
}
bool Statement::IsNull(int i) const {
  return sqlite3_column_type(stmt_, i) == SQLITE_NULL;
}
int64_t Statement::ColumnInt(int i) const {
  return sqlite3_column_int64(stmt_, i);
}
double Statement::ColumnDouble(int i) const {
  return sqlite3_column_double(stmt_, i);
}
std::string Statement::ColumnText(int i) const {
  return std::string(ColumnTextView(i));
}
std::string_view Statement::ColumnTextView(int i) const {
  const unsigned char* p = sqlite3_column_text(stmt_, i);
  int n = sqlite3_column_bytes(stmt_, i);
  if (!p) return {};
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
}
std::optional<int64_t> Statement::ColumnOptionalInt(int i) const {
  if (IsNull(i)) return std::nullopt;
  return ColumnInt(i);
}
std::optional<std::string> Statement::ColumnOptionalText(int i) const {
  if (IsNull(i)) return std::nullopt;
  return ColumnText(i);
}

Result<Transaction> Transaction::Begin(Database& db) {
  RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_) db_->Exec("ROLLBACK").IgnoreError();
}

Status Transaction::Commit() {
  Database* db = db_;
  db_ = nullptr;
  Status s = db->Exec("COMMIT");
  if (!s.ok()) db->Exec("ROLLBACK").IgnoreError();
  return s;
}

}  // namespace sentinel::storage
