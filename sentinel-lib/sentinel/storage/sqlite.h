// RAII wrappers over the SQLite C API, returning Status instead of codes.
//
// Database owns one sqlite3 connection; Statement owns one prepared
// statement and must not outlive its Database. A connection (and its
// statements) belong to one thread at a time; SQLite itself is built
// thread-safe, but these wrappers add no locking.
//
// Error mapping: SQLITE_CANTOPEN -> NotFound or PermissionDenied,
// SQLITE_NOTADB -> InvalidArgument ("file is not a database"),
// SQLITE_BUSY/LOCKED -> Unavailable, SQLITE_FULL -> ResourceExhausted,
// SQLITE_READONLY/AUTH/PERM -> PermissionDenied, SQLITE_CORRUPT -> DataLoss,
// SQLITE_INTERRUPT -> DeadlineExceeded, everything else -> Internal.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sentinel/base/status.h"

namespace sentinel::storage {

Status SqliteError(int rc, std::string_view what, sqlite3* db = nullptr);

enum class OpenMode {
  kReadWrite,  // creates the file if missing
  kReadOnly,   // the file must exist; nothing is ever written or created
};

class Statement;

// Prepared statements a connection keeps for reuse (Database::PrepareCached):
// released ones wait here, reset and unbound, keyed by their SQL text. Shared
// by the connection and its pooled statements, so a statement released after
// its Database is gone is simply finalized.
class StatementPool {
 public:
  StatementPool() = default;
  ~StatementPool();
  StatementPool(const StatementPool&) = delete;
  StatementPool& operator=(const StatementPool&) = delete;
  // An idle statement prepared from exactly `sql`, or nullptr.
  sqlite3_stmt* Take(std::string_view sql);
  // Keeps `stmt` (already reset) for reuse, or finalizes it when the pool is
  // full or closed.
  void Give(std::string sql, sqlite3_stmt* stmt);
  // Finalizes the idle statements; later Give()s finalize at once.
  void Close();

 private:
  static constexpr size_t kMaxIdle = 64;
  std::multimap<std::string, sqlite3_stmt*, std::less<>> idle_;
  bool closed_ = false;
};

class Database {
 public:
  // Opens `path`. In kReadOnly mode a missing file is NotFound and no file
  // is created. busy_timeout_ms applies to every statement on the connection.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, OpenMode mode,
                                                int64_t busy_timeout_ms = 5000);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without results.
  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql);
  // Like Prepare, for statements a trusted caller runs again and again (the
  // alert and delivery bookkeeping): the statement goes back to the
  // connection's pool when destroyed and the next PrepareCached of the same
  // text skips the parse and plan. Never for SQL validated by an authorizer
  // (detection/sql_guard): a pooled statement is not compiled again.
  Result<Statement> PrepareCached(std::string_view sql);
  // Convenience: the first column of the first row as int64 (nullopt if no row / NULL).
  Result<std::optional<int64_t>> QueryInt(std::string_view sql);
  Result<std::optional<std::string>> QueryText(std::string_view sql);

  int64_t LastInsertRowId() const;
  int Changes() const;
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }
  OpenMode mode() const { return mode_; }

 private:
  Database(sqlite3* db, std::string path, OpenMode mode)
      : db_(db), path_(std::move(path)), mode_(mode), pool_(std::make_shared<StatementPool>()) {}
  sqlite3* db_;
  std::string path_;
  OpenMode mode_;
  std::shared_ptr<StatementPool> pool_;
};

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  // A pooled statement: returned to `pool` under `sql` when destroyed.
  Statement(sqlite3_stmt* stmt, sqlite3* db, std::shared_ptr<StatementPool> pool, std::string sql)
      : stmt_(stmt), db_(db), pool_(std::move(pool)), sql_(std::move(sql)) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binding: 1-based index, or a named parameter (":name"). Strings are copied.
  Status BindInt(int idx, int64_t v);
  Status BindDouble(int idx, double v);
  Status BindText(int idx, std::string_view v);
  Status BindNull(int idx);
  Status BindOptionalInt(int idx, const std::optional<int64_t>& v);
  Status BindOptionalText(int idx, const std::optional<std::string>& v);
  Status BindOptionalDouble(int idx, const std::optional<double>& v);
  int ParameterIndex(const char* name) const;

  // Step: true when a row is available, false when done.
  Result<bool> Step();
  // Runs to completion (for statements without rows) and resets.
  Status Run();
  void Reset();

  int ColumnCount() const;
  std::string ColumnName(int i) const;
  int ColumnType(int i) const;  // SQLITE_INTEGER, ...
  bool IsNull(int i) const;
  int64_t ColumnInt(int i) const;
  double ColumnDouble(int i) const;
  std::string ColumnText(int i) const;
  std::string_view ColumnTextView(int i) const;  // valid until the next Step/Reset
  std::optional<int64_t> ColumnOptionalInt(int i) const;
  std::optional<std::string> ColumnOptionalText(int i) const;

  sqlite3_stmt* raw() const { return stmt_; }

 private:
  friend class Database;
  Status Check(int rc, std::string_view what);
  // Finalizes the statement, or hands it back to its pool.
  void Release();
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
  std::shared_ptr<StatementPool> pool_;  // set for PrepareCached's statements
  std::string sql_;                      // their pool key
};

// A transaction that rolls back unless committed. BEGIN IMMEDIATE so a
// writer takes the write lock up front (waiting up to the busy timeout).
class Transaction {
 public:
  static Result<Transaction> Begin(Database& db);
  ~Transaction();
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace sentinel::storage
