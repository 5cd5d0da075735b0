// The SQL guard: decides whether a query text may run, using SQLite's own
// compiler (so what is checked is exactly what runs), and runs it bounded.
//
// A query is accepted only if it compiles to exactly one statement, that
// statement is read-only, and SQLite's authorizer reports nothing but
// SELECTs, reads of the rule-visible tables/views (storage/tables.h; their
// base tables only when read through those views), recursive CTEs, and calls
// of allow-listed functions. Everything else — ATTACH, PRAGMA, writes,
// transactions, sqlite_schema, load_extension, file or blob-bomb functions —
// is rejected before a single row is produced, with a message naming the
// construct. Rejections are InvalidArgument.
//
// Running: the guard installs a progress handler that stops the statement at
// a deadline or VM-step budget (DeadlineExceeded / ResourceExhausted) and
// caps SQLite's length limits. A GuardedQuery must be used on the thread that
// prepared it and must not outlive its Database.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sentinel/base/status.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::detection {

struct GuardLimits {
  int64_t timeout_ms = 30'000;
  int64_t max_vm_steps = 2'000'000'000;  // about a minute of work; 0 = unlimited
  int max_length = 10'000'000;           // longest string or blob a query may build
};

class GuardedQuery {
 public:
  // Compiles `sql` on `db` and checks it. The connection should be read-only.
  static Result<std::unique_ptr<GuardedQuery>> Prepare(storage::Database& db, std::string_view sql,
                                                       const GuardLimits& limits);
  ~GuardedQuery();
  GuardedQuery(const GuardedQuery&) = delete;
  GuardedQuery& operator=(const GuardedQuery&) = delete;

  storage::Statement& statement() { return stmt_; }
  // Steps with the limits armed: true for a row, false when done.
  Result<bool> Step();
  // Makes the compiled statement ready to run again under `limits` (reset,
  // bindings cleared, the time and step budgets restarted).
  void Rearm(const GuardLimits& limits);

 private:
  GuardedQuery(storage::Database& db, const GuardLimits& limits) : db_(db), limits_(limits) {}
  static int Progress(void* self);

  storage::Database& db_;
  GuardLimits limits_;
  storage::Statement stmt_;
  int64_t deadline_ms_ = 0;
  int64_t steps_ = 0;
  bool started_ = false;
  enum class Stop { kNone, kTimeout, kSteps } stop_ = Stop::kNone;
};

// The memory ceiling of SPEC §6: SQLite's hard heap limit for the whole
// process (SQLite has no per-connection one), so a query that needs more
// fails with ResourceExhausted instead of growing the process. Returns the
// previous limit; 0 = none. sentinelagent and sentinelcli set it at start
// (kDefaultMemoryCeiling).
int64_t SetMemoryCeiling(int64_t bytes);
inline constexpr int64_t kDefaultMemoryCeiling = int64_t{512} << 20;

// True if `name` (lower case) is an allow-listed SQL function.
bool IsAllowedFunction(std::string_view name);

}  // namespace sentinel::detection
