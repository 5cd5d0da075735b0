// Running one rule's query in the sandbox (sql_guard.h) and turning its
// result rows into findings.
//
// A rule query may use exactly the named parameters of SPEC §6 — :now_ms,
// :last_run_ms, :scan_id, :prev_scan_id — anything else is rejected at
// validation, like every sandbox violation, before a row is produced. The
// rule's dedup_keys must be columns of its result.
//
// All functions take the connection they run on; use one connection per
// thread (a rule runner thread owns its own read-only connection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/detection/rule.h"
#include "sentinel/detection/sql_guard.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::detection {

// The parameter values of one run.
struct RunParams {
  int64_t now_ms = 0;
  int64_t last_run_ms = 0;              // this rule's previous run, 0 at first
  std::optional<int64_t> scan_id;       // latest completed scan (NULL when none)
  std::optional<int64_t> prev_scan_id;  // the completed scan before it
};

// Latest and previous completed scan ids of an event store.
Status FillScanIds(storage::Database& db, RunParams* params);

// True for :now_ms, :last_run_ms, :scan_id, :prev_scan_id (name without the colon).
bool IsStandardParameter(std::string_view name);

struct RuleResult {
  std::vector<std::string> columns;
  std::vector<nlohmann::ordered_json> rows;  // one object per result row, in column order
  int64_t duration_ms = 0;
  bool truncated = false;  // stopped at max_rows
};

struct RunLimits {
  GuardLimits guard;
  std::size_t max_rows = 10'000;  // findings kept per run; more is reported as truncated
};

// The connection-private table `on: exec` rules read (SPEC §12): the
// columns of process_events (parent_*, cwd, ... included), one row per
// exec. Built by PrepareRuleSnapshot from the snapshot's processes (the scan
// path) and by LoadExecBatch from new process_events rows (the event path).
inline constexpr std::string_view kExecEventsTable = "exec_events";

// Freezes the `processes` rules see for one detection cycle: a TEMP table
// named `processes` (it shadows the view of the same name for unqualified
// references) holding the rows of `scan_id` (none when nullopt), indexed by
// pid and ppid. Every rule of the cycle then reads the same scan that
// :scan_id names, even if procmond completes another one meanwhile, and
// reads it as a plain table rather than through the incremental-storage
// view. Works on a read-only connection (the temp schema is private to the
// connection). Calling it again replaces the snapshot.
//
// It also fills TEMP `exec_events` with the snapshot's processes as exec
// rows (event_time_ms = start_time, id NULL, parent_* from the snapshot's
// process of pid ppid started no later, cwd and tty from platform_data;
// env, login_uid and cred_change NULL), so an exec rule run on a scan cycle
// sees every process the scan found (docs/decisions.md).
//
// With `exec_changed_since` (a scan cycle whose exec rules judged that scan
// already, decision 71), exec_events holds only the processes whose exec
// row may differ from what it was at that scan: a process instance first
// seen after it (a new pid, start time, name, executable or argv makes a
// new instance), one with a state row written after it (ppid, user,
// effective uid, platform_data; also cpu and memory, which only makes the
// set larger), and the children of a new instance (their parent_* columns
// come from it). The snapshot's own scan leaves none.
Status PrepareRuleSnapshot(storage::Database& db, std::optional<int64_t> scan_id,
                           std::optional<int64_t> exec_changed_since = std::nullopt);

// The SQL (several statements) that PrepareRuleSnapshot runs after building
// TEMP `processes`: creates TEMP `exec_events` when missing and fills it with
// the snapshot's processes as exec rows. For tools that build the snapshot
// themselves (bench/rules_bench's bare side).
std::string_view ExecEventsFromSnapshotSql();

// Replaces the rows of TEMP `exec_events` with the exec events of
// process_events whose id is in (after_id, up_to_id]; returns how many.
// What an event lacks is completed: start_time (the event's time when the
// process start was not read), command_text, and parent_* from the
// snapshot's process of pid ppid when the event has no parent.
// Needs PrepareRuleSnapshot first. Works on a read-only connection.
Result<int64_t> LoadExecBatch(storage::Database& db, int64_t after_id, int64_t up_to_id);

// An in-memory database with the current event-store schema, no rows and an
// empty rule snapshot (PrepareRuleSnapshot), for validating rules exactly as
// they run (`sentinelcli rules validate`/`import`, the agent's rule load).
Result<std::unique_ptr<storage::Database>> OpenSchemaOnlyEventStore();

// Compiles the rule's query through the sandbox on `db` and checks its
// parameters and dedup_keys. InvalidArgument names the file and the construct.
Status ValidateRuleQuery(storage::Database& db, const Rule& rule);

// Compiles the rule's query through the sandbox, checks its parameters and
// dedup_keys and binds `params`: ready to step (what RunRule runs).
Result<std::unique_ptr<GuardedQuery>> PrepareRule(storage::Database& db, const Rule& rule,
                                                  const RunParams& params, const GuardLimits& limits);

// Binds `params` to a rule's statement compiled by PrepareRule earlier and
// re-armed (GuardedQuery::Rearm): the query worker reuses a rule's statement
// from one exec batch to the next instead of compiling it again.
Status BindRuleParameters(const Rule& rule, GuardedQuery& query, const RunParams& params);

// Validates and runs the rule in this process (the agent and sentinelcli
// run rules in a query worker instead: query_worker.h). Sandbox rejections are InvalidArgument; a
// run stopped by the limits is DeadlineExceeded / ResourceExhausted.
Result<RuleResult> RunRule(storage::Database& db, const Rule& rule, const RunParams& params,
                           const RunLimits& limits);

}  // namespace sentinel::detection
