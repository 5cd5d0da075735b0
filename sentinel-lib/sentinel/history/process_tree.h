// Process trees: "the story of an alert" (SPEC §16). From the event store
// alone -- no /proc, so it works for processes that exited long ago -- the
// ancestry of one process instance from the oldest ancestor the store knows
// (init, usually) down to it, its descendants, what each of them ran (exec
// events and scanned images merged by identity), how each ended, and the
// alerts attached to each. `sentinelcli alerts show ID --tree`,
// `sentinelcli process PID [--at T]` and the agent's web UI print it; all
// three use ProcessTreeToJson's shape (docs/process-tree.md).
//
// Identity. A process instance is (pid, start_time): pids are reused, start
// times are the same in scans and events (procmond's one boot clock). Links:
// an exec event names its parent exactly (ppid, parent_start_time); a scan
// names only the ppid, which is resolved to the instance of that pid alive
// when the child started (a child never starts before its parent). Nothing
// is ever linked by pid alone when a start time is known.
//
// Bounded work. Every lookup is an indexed range (process_instances by pid,
// process_events by pid and by parent, process_states by ppid: migration
// 10) read with a row limit; TreeLimits caps the ancestors, the depth below
// the target, the children shown per node and the nodes in all. What a
// limit cut is counted ("children_omitted") or flagged ("truncated"), never
// silently dropped, so an exec storm under the target costs the limits, not
// the storm.
//
// Thread-safety: functions only use the connection passed in (one thread at
// a time, as storage::Database requires); they read in one read transaction
// (when the connection is not already in one), so a scan or a batch of
// events written meanwhile is seen whole or not at all. Nothing is written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::history {

// One process instance. start_time is empty only for a process known from
// an exec event that could not tell it (the netlink source, when the
// process was gone before /proc was read).
struct ProcessKey {
  int64_t pid = 0;
  std::optional<int64_t> start_time;  // ms since the Unix epoch
  bool operator==(const ProcessKey&) const = default;
};

struct TreeLimits {
  int max_ancestors = 64;               // levels above the target; the oldest reached is the root
  int max_depth = 16;                   // levels of descendants below the target
  int max_children = 64;                // children shown per node (the rest: children_omitted)
  int max_nodes = 512;                  // nodes in the whole tree, ancestors included
  int max_execs = 32;                   // execs listed per node
  int max_alerts = 32;                  // alerts listed per node (the newest)
  int64_t max_child_rows = 20000;       // rows read to find one node's children
  int64_t max_alerts_scanned = 100000;  // alerts read (newest first) to attach them
};

// One program a process ran: an exec event, or an image a scan saw that no
// exec event covers (time empty: the image it had when first seen).
struct ExecRecord {
  std::optional<int64_t> time;
  std::optional<std::string> exe_path;
  std::optional<std::vector<std::string>> command_line;
};

// An alert whose affected processes include the node's instance.
struct AlertRef {
  int64_t id = 0;
  std::string rule_id;
  std::string severity;
  std::string title;
  int64_t alert_time = 0;
};

struct ProcessNode {
  int64_t pid = 0;
  std::optional<int64_t> ppid;
  std::optional<int64_t> start_time;
  // The last image known (the latest exec, or the latest scanned image).
  std::optional<std::string> name;
  std::optional<std::string> exe_path;
  std::optional<std::vector<std::string>> command_line;
  std::optional<int64_t> user_id;
  std::optional<std::string> user_name;
  std::optional<int64_t> first_seen, last_seen;  // by any scan or event
  std::optional<int64_t> exited_at, exit_code;   // from its exit event
  bool from_scan = false;                        // "sources": "scan"
  bool from_event = false;                       // "sources": "event"
  std::vector<ExecRecord> execs;                 // oldest first
  std::vector<AlertRef> alerts;                  // oldest first
  bool is_target = false;
  std::vector<ProcessNode> children;  // ancestors: only the next node towards the target
  int64_t children_omitted = 0;       // children not shown (limits); at least this many when truncated
};

struct ProcessTree {
  ProcessKey target;
  std::optional<int64_t> at;  // the time the target was chosen at (--at, the alert's time)
  ProcessNode root;
  bool truncated = false;  // some limit cut something (see TreeLimits)
};

// What an alert says about its process, used when the store no longer has
// it (retention) so the tree still shows the node and its ancestry.
struct ProcessHint {
  std::optional<std::string> name, exe_path;
  std::optional<int64_t> ppid;
};

// The instance of `pid` alive at `at` (or, when none was, the one that
// started last before it); without `at`, the most recent one. NotFound
// ("no process with pid 42 in the event store" / "... at or before <time>").
Result<ProcessKey> FindProcess(storage::Database& db, int64_t pid, std::optional<int64_t> at);

// Builds the tree around `target`. `at` is reported as given; `hint` fills
// the target when the store knows nothing of it. Errors: the store's
// (Unavailable, DataLoss, ...), with context.
Result<ProcessTree> BuildProcessTree(storage::Database& db, const ProcessKey& target,
                                     std::optional<int64_t> at, const std::optional<ProcessHint>& hint = {},
                                     const TreeLimits& limits = {});

// `sentinelcli process PID [--at T]`: FindProcess, then BuildProcessTree.
Result<ProcessTree> ProcessTreeForPid(storage::Database& db, int64_t pid, std::optional<int64_t> at,
                                      const TreeLimits& limits = {});

// `sentinelcli alerts show ID --tree`: the tree of the alert's first
// affected process, at the alert's time; the alert is always among the
// target's alerts. The instance is the finding's own (pid, start_time)
// when the rule returned start_time (every built-in rule does), else the
// instance of that pid alive in the alert's scan, else at its time.
// NotFound: no alert with that id, or an alert that names no process.
Result<ProcessTree> ProcessTreeForAlert(storage::Database& db, int64_t alert_id,
                                        const TreeLimits& limits = {});

// The one JSON shape (docs/process-tree.md):
//   {"target": {"pid", "start_time"}, "at", "root": NODE, "truncated"}
//   NODE = {"pid", "ppid", "start_time", "name", "exe_path", "command_line",
//           "user_id", "user_name", "first_seen", "last_seen", "exited_at",
//           "exit_code", "sources", "execs": [{"time", "exe_path",
//           "command_line"}], "alerts": [{"id", "rule_id", "severity",
//           "title", "alert_time"}], "is_target", "children", "children_omitted"}
// Times are integer ms since the Unix epoch; unknown values are null.
// Strings are the stored bytes and may hold invalid UTF-8: dump with
// error_handler_t::replace (and base HardenJsonText before a terminal).
nlohmann::ordered_json ProcessTreeToJson(const ProcessTree& tree);

}  // namespace sentinel::history
