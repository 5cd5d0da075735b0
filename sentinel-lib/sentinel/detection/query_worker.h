// Rule and query evaluation in a separate, killable, seccomp-confined
// process; why and how: docs/design.md, "Rules and queries run in a worker
// process".
//
// The evaluating binary (sentinelagent, sentinelcli) re-executes itself with
// the hidden first argument kQueryWorkerArg. The worker runs the requests it
// receives under the syscall filter (syscall_filter.h), compiling each query
// through the SQL guard (sql_guard.h), and streams the rows back. The parent
// (QueryWorker) kills the worker when a request's deadline passes: no call
// holds the caller past timeout_ms + kWorkerKillGraceMs. A killed or failed
// worker is not reused; start a new one.
//
// Thread-safety: one thread drives a QueryWorker; Cancel() may be called from
// any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/detection/rule.h"
#include "sentinel/detection/rule_runner.h"

namespace sentinel::detection {

// argv[1] of a worker. A binary that uses QueryWorker calls
// RunQueryWorkerIfRequested first thing in main().
inline constexpr std::string_view kQueryWorkerArg = "--sentineld-query-worker";

// If argv names the worker mode, runs the worker and returns its exit code;
// otherwise remembers the running binary's path (read while the process may
// still be root and dumpable; a dropped agent can no longer execute
// /proc/self/exe) and returns nullopt.
std::optional<int> RunQueryWorkerIfRequested(int argc, char** argv);

// Time the worker is given after timeout_ms to stop the query itself
// (progress handler) before it is killed.
inline constexpr int64_t kWorkerKillGraceMs = 250;

// Rule id -> the Sigma detection a worker was sent for it.
using SigmaSent = std::map<std::string, std::shared_ptr<const SigmaExpr>>;
// The rule definitions (query, source path, dedup keys) a worker holds, by
// rule id: a rule sent again unchanged is named, not sent.
using RulesSent = std::map<std::string, Rule>;

struct WorkerSetup {
  std::string database_path;
  int64_t busy_timeout_ms = 5000;
  // Build the per-cycle frozen `processes` snapshot of `scan_id`
  // (PrepareRuleSnapshot): rules and `rules test`. `sentinelcli query`
  // reads the live views instead.
  bool rule_snapshot = false;
  std::optional<int64_t> scan_id;
  int64_t memory_ceiling = 0;  // SQLite heap limit in the worker; 0 = kDefaultMemoryCeiling
  // With rule_snapshot: the snapshot's exec_events keep only the processes
  // whose exec row may differ from what it was at this scan
  // (PrepareRuleSnapshot's exec_changed_since, decision 71). nullopt: all.
  std::optional<int64_t> exec_since_scan;
  // Bound on starting the worker (exec, open, snapshot); 0 = 30 s.
  int64_t start_timeout_ms = 0;
};

// One cell of a streamed row.
struct WireCell {
  enum class Type : uint8_t { kNull = 0, kInteger = 1, kReal = 2, kText = 3, kBlob = 4 };
  Type type = Type::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string bytes;  // text or blob
};

// A parameter value for a free query: integer, text or NULL.
struct QueryParam {
  enum class Type : uint8_t { kNull = 0, kInteger = 1, kText = 3 };
  Type type = Type::kNull;
  int64_t integer = 0;
  std::string text;
};

struct QueryRequest {
  std::string sql;
  // --param values: each must be used by the query.
  std::map<std::string, QueryParam> user_params;
  // Filled in when the query uses them and no user value is given.
  std::map<std::string, QueryParam> default_params;
  GuardLimits limits;
};

// Values for the rule parameters of SPEC §6 (:now_ms, :last_run_ms = 0,
// :scan_id, :prev_scan_id from `db`), so a rule's query runs as is as a free
// query (`sentinelcli query`, a fleet live query): a request's default_params.
Result<std::map<std::string, QueryParam>> StandardQueryParams(storage::Database& db, int64_t now_ms);

class QueryWorker {
 public:
  // Spawns the worker and waits until it is ready (store open, snapshot
  // built, filter installed). Errors carry the worker's message.
  static Result<std::unique_ptr<QueryWorker>> Start(const WorkerSetup& setup);
  ~QueryWorker();  // kills and reaps the worker
  QueryWorker(const QueryWorker&) = delete;
  QueryWorker& operator=(const QueryWorker&) = delete;

  // Runs a rule as RunRule does (same errors and messages); a worker killed
  // at the deadline yields DeadlineExceeded naming the limit.
  Result<RuleResult> RunRule(const Rule& rule, const RunParams& params, const RunLimits& limits);

  // Several rules in one request (the real-time path: every exec rule of a
  // batch): one result per rule, in order, each as RunRule would give it,
  // each rule bounded by its own deadline. Once the worker is lost (killed
  // at a rule's deadline, or gone), the rules after it are Unavailable
  // ("not usable") without having run.
  std::vector<Result<RuleResult>> RunRules(const std::vector<const Rule*>& rules, const RunParams& params,
                                           const RunLimits& limits);
  // True for RunRules' answer of a rule that did not run (the worker was
  // lost before it).
  static bool NotRun(const Status& s);

  // Exec-batch mode (a worker started with rule_snapshot): fills the
  // worker's `exec_events` with the exec events of process_events whose id
  // is in (after_id, up_to_id], first rebuilding its `processes` snapshot
  // when `scan_id` is not the scan it holds. Returns the number of exec rows;
  // RunRule then evaluates exec rules over them. Bounded by timeout_ms like
  // a rule (the worker is killed at the deadline).
  Result<int64_t> LoadExecBatch(int64_t after_id, int64_t up_to_id, std::optional<int64_t> scan_id,
                                int64_t timeout_ms);

  // The Sigma prefilter for many rules at once (decision 70): one answer
  // per rule, false when its Sigma detection matches no row of the worker's
  // exec_events (its SQL would return nothing and need not run), true when
  // it may (no detection, or the rows could not be read). Bounded by
  // timeout_ms like a rule.
  Result<std::vector<bool>> SigmaCandidates(const std::vector<Rule>& rules, int64_t timeout_ms);
  Result<std::vector<bool>> SigmaCandidates(const std::vector<const Rule*>& rules, int64_t timeout_ms);

  // Streams a free query: BeginQuery returns the result columns (sandbox
  // rejections and parameter errors are InvalidArgument), then NextRow
  // fills one row at a time until it returns false.
  Result<std::vector<std::string>> BeginQuery(const QueryRequest& request);
  Result<bool> NextRow(std::vector<WireCell>* row);

  // Thread-safe: kills the worker now; the call in progress returns
  // Unavailable ("stopped"). Used at shutdown.
  void Cancel();
  // False once the worker was killed, died or broke the protocol.
  bool usable() const { return usable_ && !cancelled_; }
  pid_t pid() const { return pid_; }

 private:
  QueryWorker() = default;
  Status Send(std::string_view frame);
  // Sends `request` and waits up to timeout_ms (then kills the worker) for
  // its kReady answer; returns the answer's payload, or the worker's error.
  Result<std::string> Ask(const std::string& request, int64_t timeout_ms);
  // A rule's answer (kColumns, kRow..., kDone or kError) within deadline_ms_.
  Result<RuleResult> ReceiveRuleResult(const Rule& rule, int64_t start);
  void SetRuleDeadline(int64_t start, const RunLimits& limits);
  // Reads one frame, waiting until deadline_ms (MonotonicMs); kills the
  // worker when it passes.
  Result<std::pair<uint8_t, std::string>> Receive(int64_t deadline_ms, int64_t timeout_ms);
  using Frame = std::pair<uint8_t, std::string>;  // kind, payload
  // The next whole frame of buffer_, if there is one (Internal, and the
  // worker killed, when its length is impossible).
  Result<std::optional<Frame>> TakeFrame();
  // Waits up to deadline_ms for more bytes and appends them to buffer_; Ok
  // also when nothing arrived in this wait. DeadlineExceeded at the
  // deadline (the worker is killed), Unavailable when the worker is gone.
  Status ReadMore(int64_t deadline_ms, int64_t timeout_ms);
  // The worker closed its end: reaps it; Unavailable says how it ended.
  Status WorkerGone();
  Status Fail(Status s);  // marks the worker unusable, kills it
  void KillLocked();

  pid_t pid_ = -1;
  int fd_ = -1;
  // The Sigma detections this worker holds, by rule id (decision 70).
  SigmaSent sigma_sent_;
  RulesSent rules_sent_;
  std::string buffer_;  // received bytes; frames before pos_ are consumed
  std::size_t pos_ = 0;
  bool usable_ = true;
  std::atomic<bool> cancelled_{false};
  std::mutex kill_mu_;
  bool reaped_ = false;
  // The request in progress.
  int64_t deadline_ms_ = 0;
  int64_t timeout_ms_ = 0;
  bool streaming_ = false;
};

}  // namespace sentinel::detection
