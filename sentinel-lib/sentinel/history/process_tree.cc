#include "sentinel/history/process_tree.h"

#include <sqlite3.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "sentinel/base/time.h"

namespace sentinel::history {
namespace {

using nlohmann::ordered_json;
using storage::Database;
using storage::Statement;

constexpr int64_t kForever = INT64_MAX;
constexpr int64_t kOpenScanId = INT64_MAX;
// A process's start and its events' times are separate conversions of
// kernel clocks to epoch ms; an exec right after the fork may be stamped a
// little before the start it reports.
constexpr int64_t kClockSlackMs = 1000;

// Reads inside one transaction unless the caller already holds one, so a
// scan or an event batch committed meanwhile is seen whole or not at all.
class ReadTransaction {
 public:
  explicit ReadTransaction(Database& db) : db_(db) {}
  ~ReadTransaction() {
    if (began_) db_.Exec("COMMIT").IgnoreError();  // a read: nothing to lose
  }
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;
  Status Begin() {
    if (sqlite3_get_autocommit(db_.raw()) == 0) return Status::Ok();
    RETURN_IF_ERROR(db_.Exec("BEGIN"));
    began_ = true;
    return Status::Ok();
  }

 private:
  Database& db_;
  bool began_ = false;
};

// A trusted statement with its integer parameters bound (?1, ?2, ...).
Result<Statement> Query(Database& db, std::string_view sql, std::initializer_list<int64_t> params) {
  ASSIGN_OR_RETURN(Statement st, db.PrepareCached(sql));
  int i = 1;
  for (int64_t v : params) RETURN_IF_ERROR(st.BindInt(i++, v));
  return st;
}

std::optional<std::vector<std::string>> ParseArgv(const std::optional<std::string>& json) {
  if (!json) return std::nullopt;
  const ordered_json j = ordered_json::parse(*json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return std::nullopt;
  std::vector<std::string> argv;
  argv.reserve(j.size());
  for (const auto& a : j) argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  return argv;
}

void TakeMin(std::optional<int64_t>& v, int64_t x) {
  if (!v || x < *v) v = x;
}
void TakeMax(std::optional<int64_t>& v, int64_t x) {
  if (!v || x > *v) v = x;
}

// One program image of a process: an exec event's, or a scanned instance's.
struct Image {
  std::optional<int64_t> time;  // exec time; a scan: when first seen (empty: since it was first seen)
  bool from_event = false;
  std::optional<std::string> name, exe_path, argv_json;
};

// What the store says about one process instance.
struct Facts {
  ProcessKey key;
  int64_t anchor = 0;  // start_time, or its first event's time when that is unknown
  std::optional<int64_t> ppid, parent_start;
  // What its first exec event said of its parent (for a parent the store
  // has nothing else of).
  std::optional<std::string> parent_name, parent_exe, parent_argv;
  std::optional<int64_t> user_id;
  std::optional<std::string> user_name;
  std::optional<int64_t> first_seen, last_seen, exited_at, exit_code;
  bool from_scan = false, from_event = false;
  std::vector<Image> images;
  int64_t end_bound = kForever;  // the next process with this pid started here
  bool cut = false;              // a row limit was reached
  bool Known() const { return from_scan || from_event; }
  // Children start (and exec) within [anchor, ChildrenUntil()].
  int64_t ChildrenUntil() const {
    int64_t until = end_bound == kForever ? kForever : end_bound - 1;
    if (exited_at) until = std::min(until, *exited_at + kClockSlackMs);
    if (!key.start_time) until = std::min(until, last_seen.value_or(anchor));
    return until;
  }
};

// A child found by one of the lookups, before it is loaded.
struct ChildRef {
  ProcessKey key;
  int64_t anchor = 0;
};

struct ChildList {
  std::vector<ChildRef> refs;  // oldest first
  bool cut = false;            // a lookup reached its row limit: more may exist
};

// Builds one tree; holds the limits, the node budget and what was cut.
class TreeBuilder {
 public:
  TreeBuilder(Database& db, const TreeLimits& limits) : db_(db), limits_(limits) {}

  Result<ProcessTree> Build(const ProcessKey& target, std::optional<int64_t> at,
                            const std::optional<ProcessHint>& hint);

 private:
  Result<Facts> Load(const ProcessKey& key, int64_t anchor);
  Status LoadScans(Facts& f);
  Status LoadScanStates(Facts& f, int64_t first_instance, int64_t last_instance);
  Status LoadEvents(Facts& f);
  void ApplyEvent(Facts& f, Statement& st);
  Status LoadLateExit(Facts& f);
  Status LoadEndBound(Facts& f, std::optional<int64_t> last_event_time);
  Result<int64_t> LatestScanTime();

  Result<ChildList> Children(const Facts& f);
  Status AddEventChildren(const Facts& f, std::map<std::tuple<int64_t, int64_t, int64_t>, ChildRef>& found,
                          bool& cut);
  Status AddScanChildren(const Facts& f, std::map<std::tuple<int64_t, int64_t, int64_t>, ChildRef>& found,
                         bool& cut);
  Status AddDescendants(ProcessNode& target, Facts target_facts);
  Result<std::optional<ProcessKey>> ParentKey(const Facts& child);
  Result<std::vector<Facts>> Ancestors(const Facts& target);

  Status AttachAlerts(ProcessNode& root);
  void AttachAlert(std::vector<ProcessNode*>& nodes, int64_t pid, std::optional<int64_t> start,
                   const AlertRef& alert);

  ProcessNode MakeNode(const Facts& f);

  Database& db_;
  TreeLimits limits_;
  int nodes_ = 0;
  bool truncated_ = false;
  std::optional<int64_t> latest_scan_time_;
  // end_bound of every node loaded, by (pid, anchor): attaching alerts
  // needs to know when a pid went to its next process.
  std::map<std::pair<int64_t, int64_t>, int64_t> end_bounds_;
};

Result<int64_t> TreeBuilder::LatestScanTime() {
  if (latest_scan_time_) return *latest_scan_time_;
  ASSIGN_OR_RETURN(auto t, db_.QueryInt("SELECT started_at_ms FROM scan_metadata WHERE status = 'completed'"
                                        " ORDER BY scan_id DESC LIMIT 1"));
  latest_scan_time_ = t.value_or(0);
  return *latest_scan_time_;
}

Result<Facts> TreeBuilder::Load(const ProcessKey& key, int64_t anchor) {
  Facts f;
  f.key = key;
  f.anchor = anchor;
  if (key.start_time) RETURN_IF_ERROR(LoadScans(f));
  RETURN_IF_ERROR(LoadEvents(f));
  std::stable_sort(f.images.begin(), f.images.end(), [](const Image& a, const Image& b) {
    return a.time.value_or(INT64_MIN) < b.time.value_or(INT64_MIN);
  });
  if (f.cut) truncated_ = true;
  end_bounds_[{key.pid, anchor}] = f.end_bound;
  return f;
}

// The scanned instances of (pid, start_time): one per image it ran.
Status TreeBuilder::LoadScans(Facts& f) {
  ASSIGN_OR_RETURN(Statement st,
                   Query(db_,
                         "SELECT i.instance_id, i.name, i.exe_path, i.command_line, fs.started_at_ms,"
                         " i.last_scan_id, ls.started_at_ms"
                         " FROM process_instances i"
                         " LEFT JOIN scan_metadata fs ON fs.scan_id = i.first_scan_id"
                         " LEFT JOIN scan_metadata ls ON ls.scan_id = i.last_scan_id"
                         " WHERE i.pid = ?1 AND i.start_time = ?2 ORDER BY i.first_scan_id LIMIT ?3",
                         {f.key.pid, *f.key.start_time, limits_.max_execs + 1}));
  int64_t first_instance = 0, last_instance = 0, rows = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    const int64_t id = st.ColumnInt(0);
    if (rows++ == 0) first_instance = id;
    last_instance = id;
    const std::optional<int64_t> first = st.ColumnOptionalInt(4);
    Image img{rows == 1 ? std::nullopt : first, false, st.ColumnOptionalText(1), st.ColumnOptionalText(2),
              st.ColumnOptionalText(3)};
    f.images.push_back(std::move(img));
    if (first) TakeMin(f.first_seen, *first);
    std::optional<int64_t> last = st.ColumnOptionalInt(6);
    if (st.ColumnInt(5) == kOpenScanId) {
      ASSIGN_OR_RETURN(int64_t latest, LatestScanTime());
      last = latest;
    }
    if (last) TakeMax(f.last_seen, *last);
  }
  if (rows == 0) return Status::Ok();
  f.from_scan = true;
  if (rows > limits_.max_execs) f.cut = true;
  return LoadScanStates(f, first_instance, last_instance);
}

// The parent as first seen (a later ppid may be a reaper's) and the user as
// last seen.
Status TreeBuilder::LoadScanStates(Facts& f, int64_t first_instance, int64_t last_instance) {
  ASSIGN_OR_RETURN(Statement first, Query(db_,
                                          "SELECT ppid FROM process_states WHERE instance_id = ?1"
                                          " ORDER BY scan_id LIMIT 1",
                                          {first_instance}));
  ASSIGN_OR_RETURN(bool has_first, first.Step());
  if (has_first && !f.ppid) f.ppid = first.ColumnOptionalInt(0);
  ASSIGN_OR_RETURN(Statement last,
                   Query(db_,
                         "SELECT user_id, user_name FROM process_states WHERE instance_id = ?1"
                         " ORDER BY scan_id DESC LIMIT 1",
                         {last_instance}));
  ASSIGN_OR_RETURN(bool has_last, last.Step());
  if (has_last) {
    f.user_id = last.ColumnOptionalInt(0);
    f.user_name = last.ColumnOptionalText(1);
  }
  return Status::Ok();
}

constexpr std::string_view kEventColumns =
    "event_time_ms, event_type, ppid, name, exe_path, command_line, user_id, user_name, exit_code,"
    " start_time, parent_start_time, parent_name, parent_exe_path, parent_command_line";

void TreeBuilder::ApplyEvent(Facts& f, Statement& st) {
  const int64_t time = st.ColumnInt(0);
  const std::string_view type = st.ColumnTextView(1);
  f.from_event = true;
  TakeMin(f.first_seen, time);
  TakeMax(f.last_seen, time);
  if (type == "exit") {
    f.exited_at = time;
    f.exit_code = st.ColumnOptionalInt(8);
    return;
  }
  if (!f.ppid || !f.parent_start) {
    // The first exec or fork names the parent that started it.
    if (auto ppid = st.ColumnOptionalInt(2)) {
      f.ppid = ppid;
      f.parent_start = st.ColumnOptionalInt(10);
      f.parent_name = st.ColumnOptionalText(11);
      f.parent_exe = st.ColumnOptionalText(12);
      f.parent_argv = st.ColumnOptionalText(13);
    }
  }
  if (type != "exec") return;
  f.images.push_back(
      Image{time, true, st.ColumnOptionalText(3), st.ColumnOptionalText(4), st.ColumnOptionalText(5)});
  if (auto uid = st.ColumnOptionalInt(6)) {
    f.user_id = uid;
    f.user_name = st.ColumnOptionalText(7);
  }
}

enum class RowOwner {
  kThis,   // the process's own row
  kOther,  // an earlier process's late row, or one from before this one started
  kNext,   // the pid's next process: the process's rows are over
};

// Whose an event row of the pid is (they come in time order), by the start
// time it carries (`row_start`) and its time.
RowOwner OwnerOf(const Facts& f, std::optional<int64_t> row_start, int64_t time) {
  if (row_start == f.key.start_time) return RowOwner::kThis;
  if (!f.key.start_time) return RowOwner::kNext;
  if (row_start) return *row_start > *f.key.start_time ? RowOwner::kNext : RowOwner::kOther;
  return time < *f.key.start_time ? RowOwner::kOther : RowOwner::kThis;
}

// The events of the instance: its pid's events from its start on, up to
// its exit or the first event of the pid's next process.
Status TreeBuilder::LoadEvents(Facts& f) {
  const bool known = f.key.start_time.has_value();
  const int64_t start = known ? *f.key.start_time - kClockSlackMs : f.anchor;
  const int64_t limit = 2 * static_cast<int64_t>(limits_.max_execs) + 8;
  ASSIGN_OR_RETURN(Statement st, Query(db_,
                                       "SELECT " + std::string(kEventColumns) +
                                           " FROM process_events WHERE pid = ?1 AND event_time_ms >= ?2"
                                           " ORDER BY event_time_ms, id LIMIT ?3",
                                       {f.key.pid, start, limit}));
  int64_t rows = 0, execs = 0;
  std::optional<int64_t> last_time;
  bool ended = false;
  while (!ended) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ++rows;
    last_time = st.ColumnInt(0);
    const std::optional<int64_t> s = st.ColumnOptionalInt(9);
    const RowOwner owner = OwnerOf(f, s, *last_time);
    if (owner == RowOwner::kNext) {
      if (s) f.end_bound = std::min(f.end_bound, *s);
      break;
    }
    if (owner == RowOwner::kOther) continue;
    ended = st.ColumnTextView(1) == "exit";
    if (st.ColumnTextView(1) == "exec" && ++execs > limits_.max_execs) {
      f.cut = true;
      continue;
    }
    ApplyEvent(f, st);
  }
  const bool more = rows == limit && !ended;
  if (more && known) RETURN_IF_ERROR(LoadLateExit(f));
  return LoadEndBound(f, more ? last_time : std::nullopt);
}

// The exit event of a process whose events did not fit the row limit.
Status TreeBuilder::LoadLateExit(Facts& f) {
  ASSIGN_OR_RETURN(Statement st, Query(db_,
                                       "SELECT event_time_ms, exit_code FROM process_events"
                                       " WHERE pid = ?1 AND event_time_ms >= ?2 AND event_type = 'exit'"
                                       " AND start_time = ?3 ORDER BY event_time_ms LIMIT 1",
                                       {f.key.pid, *f.key.start_time, *f.key.start_time}));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Status::Ok();
  f.exited_at = st.ColumnInt(0);
  f.exit_code = st.ColumnOptionalInt(1);
  TakeMax(f.last_seen, *f.exited_at);
  return Status::Ok();
}

// When the pid's next process started (scans, and events past the rows
// LoadEvents read when it stopped at its limit: `after`).
Status TreeBuilder::LoadEndBound(Facts& f, std::optional<int64_t> after) {
  if (!f.key.start_time) return Status::Ok();
  const int64_t start = *f.key.start_time;
  ASSIGN_OR_RETURN(Statement next, Query(db_,
                                         "SELECT start_time FROM process_instances WHERE pid = ?1"
                                         " AND start_time > ?2 ORDER BY start_time LIMIT 1",
                                         {f.key.pid, start}));
  ASSIGN_OR_RETURN(bool row, next.Step());
  if (row) f.end_bound = std::min(f.end_bound, next.ColumnInt(0));
  if (!after) return Status::Ok();
  ASSIGN_OR_RETURN(Statement ev, Query(db_,
                                       "SELECT start_time FROM process_events WHERE pid = ?1"
                                       " AND event_time_ms > ?2 AND start_time > ?3"
                                       " ORDER BY event_time_ms LIMIT 1",
                                       {f.key.pid, *after, start}));
  ASSIGN_OR_RETURN(bool ev_row, ev.Step());
  if (ev_row) f.end_bound = std::min(f.end_bound, ev.ColumnInt(0));
  return Status::Ok();
}

using ChildMap = std::map<std::tuple<int64_t, int64_t, int64_t>, ChildRef>;

void AddChild(ChildMap& found, int64_t pid, std::optional<int64_t> start, int64_t time) {
  // A process without a start time is told from others by when it was seen.
  const auto id = std::make_tuple(pid, start.value_or(-1), start ? 0 : time);
  auto [it, inserted] = found.try_emplace(id, ChildRef{{pid, start}, start.value_or(time)});
  if (!inserted && !start) it->second.anchor = std::min(it->second.anchor, time);
}

// Children named by their exec (or fork) events: exactly by the parent's
// start time, or by pid within its life when the event could not tell it.
Status TreeBuilder::AddEventChildren(const Facts& f, ChildMap& found, bool& cut) {
  const int64_t rows_max = limits_.max_child_rows;
  if (f.key.start_time) {
    ASSIGN_OR_RETURN(Statement exact, Query(db_,
                                            "SELECT pid, start_time, event_time_ms FROM process_events"
                                            " WHERE event_type IN ('exec', 'fork') AND ppid = ?1"
                                            " AND parent_start_time = ?2 ORDER BY event_time_ms LIMIT ?3",
                                            {f.key.pid, *f.key.start_time, rows_max}));
    int64_t rows = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool row, exact.Step());
      if (!row) break;
      ++rows;
      AddChild(found, exact.ColumnInt(0), exact.ColumnOptionalInt(1), exact.ColumnInt(2));
    }
    if (rows == rows_max) cut = true;
  }
  ASSIGN_OR_RETURN(Statement loose, Query(db_,
                                          "SELECT pid, start_time, event_time_ms FROM process_events"
                                          " WHERE event_type IN ('exec', 'fork') AND ppid = ?1"
                                          " AND parent_start_time IS NULL AND event_time_ms BETWEEN ?2 AND ?3"
                                          " ORDER BY event_time_ms LIMIT ?4",
                                          {f.key.pid, f.anchor, f.ChildrenUntil(), rows_max}));
  int64_t rows = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, loose.Step());
    if (!row) break;
    ++rows;
    const std::optional<int64_t> start = loose.ColumnOptionalInt(1);
    if (start && *start < f.anchor) continue;  // started before this parent: another's
    AddChild(found, loose.ColumnInt(0), start, loose.ColumnInt(2));
  }
  if (rows == rows_max) cut = true;
  return Status::Ok();
}

// Children a scan saw with this pid as ppid, started while it lived.
Status TreeBuilder::AddScanChildren(const Facts& f, ChildMap& found, bool& cut) {
  if (!f.key.start_time) return Status::Ok();
  ASSIGN_OR_RETURN(Statement st,
                   Query(db_,
                         "SELECT i.pid, i.start_time FROM process_states st"
                         " JOIN process_instances i ON i.instance_id = st.instance_id"
                         " WHERE st.ppid = ?1 AND i.start_time BETWEEN ?2 AND ?3 LIMIT ?4",
                         {f.key.pid, *f.key.start_time, f.ChildrenUntil(), limits_.max_child_rows}));
  int64_t rows = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ++rows;
    AddChild(found, st.ColumnInt(0), st.ColumnInt(1), st.ColumnInt(1));
  }
  if (rows == limits_.max_child_rows) cut = true;
  return Status::Ok();
}

Result<ChildList> TreeBuilder::Children(const Facts& f) {
  ChildMap found;
  ChildList out;
  RETURN_IF_ERROR(AddEventChildren(f, found, out.cut));
  RETURN_IF_ERROR(AddScanChildren(f, found, out.cut));
  for (auto& [id, ref] : found) {
    if (ref.key == f.key) continue;
    out.refs.push_back(ref);
  }
  std::stable_sort(out.refs.begin(), out.refs.end(), [](const ChildRef& a, const ChildRef& b) {
    return std::tie(a.anchor, a.key.pid) < std::tie(b.anchor, b.key.pid);
  });
  return out;
}

// Breadth first, so the node budget is spent level by level rather than on
// the first branch.
Status TreeBuilder::AddDescendants(ProcessNode& target, Facts target_facts) {
  struct Pending {
    ProcessNode* node;
    Facts facts;
    int depth;
  };
  std::deque<Pending> queue;
  queue.push_back({&target, std::move(target_facts), 0});
  while (!queue.empty()) {
    Pending p = std::move(queue.front());
    queue.pop_front();
    ASSIGN_OR_RETURN(ChildList kids, Children(p.facts));
    const int64_t total = static_cast<int64_t>(kids.refs.size());
    int64_t room = std::min<int64_t>(limits_.max_children, limits_.max_nodes - nodes_);
    if (p.depth >= limits_.max_depth) room = 0;
    const int64_t shown = std::clamp<int64_t>(total, 0, std::max<int64_t>(room, 0));
    p.node->children_omitted = total - shown;
    if (kids.cut || shown < total) truncated_ = true;
    // Sized once: the queue keeps pointers into this vector.
    p.node->children.resize(static_cast<size_t>(shown));
    for (int64_t i = 0; i < shown; ++i) {
      const ChildRef& ref = kids.refs[static_cast<size_t>(i)];
      ASSIGN_OR_RETURN(Facts cf, Load(ref.key, ref.anchor));
      ProcessNode& child = p.node->children[static_cast<size_t>(i)];
      child = MakeNode(cf);
      ++nodes_;
      queue.push_back({&child, std::move(cf), p.depth + 1});
    }
  }
  return Status::Ok();
}

// The instance of `pid` alive at `at` (or started last before it), from
// scans and events; empty when the store has none.
Result<std::optional<int64_t>> LatestStart(Database& db, int64_t pid, std::optional<int64_t> at) {
  const int64_t bound = at.value_or(kForever);
  std::optional<int64_t> best;
  auto consider = [&](Result<Statement> st) -> Status {
    if (!st.ok()) return st.status();
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row && !st->IsNull(0) && st->ColumnInt(0) <= bound) TakeMax(best, st->ColumnInt(0));
    return Status::Ok();
  };
  RETURN_IF_ERROR(
      consider(Query(db,
                     "SELECT start_time FROM process_instances WHERE pid = ?1 AND start_time <= ?2"
                     " ORDER BY start_time DESC LIMIT 1",
                     {pid, bound})));
  // Events of one pid's processes follow each other in time: the last
  // event before `at` is of the latest process started by then ...
  RETURN_IF_ERROR(
      consider(Query(db,
                     "SELECT start_time FROM process_events WHERE pid = ?1 AND event_time_ms <= ?2"
                     " AND start_time IS NOT NULL ORDER BY event_time_ms DESC LIMIT 1",
                     {pid, bound})));
  // ... unless one that started before `at` had its first event after it.
  if (at) {
    RETURN_IF_ERROR(
        consider(Query(db,
                       "SELECT start_time FROM process_events WHERE pid = ?1 AND event_time_ms > ?2"
                       " AND start_time IS NOT NULL ORDER BY event_time_ms LIMIT 1",
                       {pid, bound})));
  }
  return best;
}

Result<std::optional<ProcessKey>> TreeBuilder::ParentKey(const Facts& child) {
  if (!child.ppid || *child.ppid <= 0 || *child.ppid == child.key.pid) return std::optional<ProcessKey>();
  if (child.parent_start) return std::optional<ProcessKey>(ProcessKey{*child.ppid, child.parent_start});
  // A scan (or an event without it) names only the ppid: its process alive
  // when the child started.
  ASSIGN_OR_RETURN(auto start, LatestStart(db_, *child.ppid, child.anchor));
  if (!start) return std::optional<ProcessKey>();
  return std::optional<ProcessKey>(ProcessKey{*child.ppid, start});
}

// The target's ancestors, its parent first, up to the oldest the store
// knows (or the limits).
Result<std::vector<Facts>> TreeBuilder::Ancestors(const Facts& target) {
  std::vector<Facts> chain;
  const Facts* child = &target;
  std::set<std::pair<int64_t, int64_t>> seen{{target.key.pid, target.anchor}};
  while (true) {
    ASSIGN_OR_RETURN(std::optional<ProcessKey> pk, ParentKey(*child));
    if (!pk) break;
    if (static_cast<int>(chain.size()) >= limits_.max_ancestors || nodes_ >= limits_.max_nodes) {
      truncated_ = true;
      break;
    }
    const int64_t anchor = pk->start_time.value_or(child->anchor);
    // A parent starts no later than its child, and dies no earlier than it is born.
    if (anchor > child->anchor || !seen.insert({pk->pid, anchor}).second) break;
    ASSIGN_OR_RETURN(Facts pf, Load(*pk, anchor));
    if (pf.exited_at && *pf.exited_at + kClockSlackMs < child->anchor) break;
    if (!pf.Known() && (child->parent_name || child->parent_exe || child->parent_argv)) {
      // Known only from its child's exec event (a fork that never exec'd
      // while procmond watched, and no scan saw it).
      pf.from_event = true;
      pf.images.push_back(
          Image{std::nullopt, false, child->parent_name, child->parent_exe, child->parent_argv});
    }
    chain.push_back(std::move(pf));
    child = &chain.back();
    ++nodes_;
  }
  return chain;
}

ProcessNode TreeBuilder::MakeNode(const Facts& f) {
  ProcessNode n;
  n.pid = f.key.pid;
  n.ppid = f.ppid;
  n.start_time = f.key.start_time;
  n.user_id = f.user_id;
  n.user_name = f.user_name;
  n.first_seen = f.first_seen;
  n.last_seen = f.last_seen;
  n.exited_at = f.exited_at;
  n.exit_code = f.exit_code;
  n.from_scan = f.from_scan;
  n.from_event = f.from_event;
  if (!f.images.empty()) {
    const Image& last = f.images.back();
    n.name = last.name;
    n.exe_path = last.exe_path;
    n.command_line = ParseArgv(last.argv_json);
  }
  // Every exec event, and the scanned images no exec event covers (what
  // it ran before procmond watched, or while no event was captured).
  std::set<std::optional<std::string>> exec_argv;
  for (const Image& img : f.images) {
    if (img.from_event) exec_argv.insert(img.argv_json);
  }
  for (const Image& img : f.images) {
    if (!img.from_event && exec_argv.count(img.argv_json) != 0) continue;
    if (n.execs.size() >= static_cast<size_t>(limits_.max_execs)) {
      truncated_ = true;
      break;
    }
    n.execs.push_back(ExecRecord{img.time, img.exe_path, ParseArgv(img.argv_json)});
  }
  return n;
}

void CollectNodes(ProcessNode& node, std::vector<ProcessNode*>& out) {
  out.push_back(&node);
  for (ProcessNode& c : node.children) CollectNodes(c, out);
}

// An alert row names a pid (and, from the finding, maybe its start time):
// the node it belongs to is that instance, or else the node of that pid
// that was alive (or the latest started) at the alert's time.
void TreeBuilder::AttachAlert(std::vector<ProcessNode*>& nodes, int64_t pid, std::optional<int64_t> start,
                              const AlertRef& alert) {
  ProcessNode* best = nullptr;
  int64_t best_anchor = INT64_MIN;
  for (ProcessNode* n : nodes) {
    if (n->pid != pid) continue;
    const int64_t anchor = n->start_time.value_or(n->first_seen.value_or(0));
    if (start) {
      if (n->start_time == start) best = n;
      continue;
    }
    auto bound = end_bounds_.find({pid, anchor});
    const int64_t end = bound == end_bounds_.end() ? kForever : bound->second;
    if (anchor <= alert.alert_time && alert.alert_time < end && anchor > best_anchor) {
      best = n;
      best_anchor = anchor;
    }
  }
  if (best == nullptr) return;
  for (const AlertRef& a : best->alerts) {
    if (a.id == alert.id) return;
  }
  if (best->alerts.size() >= static_cast<size_t>(limits_.max_alerts)) {
    truncated_ = true;  // rows come newest first: the oldest are left out
    return;
  }
  best->alerts.push_back(alert);
}

// One pass over the alerts since the oldest node started, newest first (no
// index reaches into affected_processes: the pass is bounded by
// max_alerts_scanned instead).
Status TreeBuilder::AttachAlerts(ProcessNode& root) {
  std::vector<ProcessNode*> nodes;
  CollectNodes(root, nodes);
  ordered_json pids = ordered_json::array();
  int64_t since = kForever;
  for (const ProcessNode* n : nodes) {
    pids.push_back(n->pid);
    since = std::min(since, n->start_time.value_or(n->first_seen.value_or(kForever)));
  }
  if (since == kForever) return Status::Ok();
  ASSIGN_OR_RETURN(
      Statement st,
      Query(db_,
            "SELECT a.id, a.rule_id, a.severity, a.title, a.alert_time, json_extract(p.value, '$.pid'),"
            " CASE WHEN json_valid(a.raw_data) THEN CASE WHEN json_extract(a.raw_data, '$.pid') ="
            " json_extract(p.value, '$.pid') THEN json_extract(a.raw_data, '$.start_time') END END"
            " FROM (SELECT id, rule_id, severity, title, alert_time, affected_processes, raw_data FROM alerts"
            "       WHERE alert_time >= ?1 ORDER BY alert_time DESC LIMIT ?2) a,"
            " json_each(CASE WHEN json_valid(a.affected_processes) THEN a.affected_processes ELSE '[]' END) p"
            " WHERE CASE WHEN p.type = 'object' THEN json_type(p.value, '$.pid') END = 'integer'"
            " AND CASE WHEN p.type = 'object' THEN json_extract(p.value, '$.pid') END"
            " IN (SELECT value FROM json_each(?3))",
            {since, limits_.max_alerts_scanned}));
  RETURN_IF_ERROR(st.BindText(3, pids.dump()));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    AlertRef a{st.ColumnInt(0), st.ColumnText(1), st.ColumnText(2), st.ColumnText(3), st.ColumnInt(4)};
    std::optional<int64_t> start;
    if (st.ColumnType(6) == SQLITE_INTEGER) start = st.ColumnInt(6);
    AttachAlert(nodes, st.ColumnInt(5), start, a);
  }
  ASSIGN_OR_RETURN(
      auto scanned,
      db_.QueryInt("SELECT count(*) FROM (SELECT 1 FROM alerts WHERE alert_time >= " + std::to_string(since) +
                   " LIMIT " + std::to_string(limits_.max_alerts_scanned + 1) + ")"));
  if (scanned.value_or(0) > limits_.max_alerts_scanned) truncated_ = true;
  for (ProcessNode* n : nodes) {
    std::sort(n->alerts.begin(), n->alerts.end(), [](const AlertRef& x, const AlertRef& y) {
      return std::tie(x.alert_time, x.id) < std::tie(y.alert_time, y.id);
    });
  }
  return Status::Ok();
}

Result<ProcessTree> TreeBuilder::Build(const ProcessKey& target, std::optional<int64_t> at,
                                       const std::optional<ProcessHint>& hint) {
  Facts facts;
  if (target.start_time) {
    ASSIGN_OR_RETURN(facts, Load(target, *target.start_time));
  } else {
    facts.key = target;  // nothing to look up by: what the hint says
    facts.anchor = at.value_or(0);
  }
  if (!facts.Known() && hint) {
    facts.images.push_back(Image{std::nullopt, false, hint->name, hint->exe_path, std::nullopt});
    if (!facts.ppid) facts.ppid = hint->ppid;
  }
  nodes_ = 1;
  // Ancestors first: the path to the target is worth more than the
  // last descendants the node budget would otherwise go to.
  ASSIGN_OR_RETURN(std::vector<Facts> ancestors, Ancestors(facts));
  ProcessNode node = MakeNode(facts);
  node.is_target = true;
  RETURN_IF_ERROR(AddDescendants(node, std::move(facts)));
  for (const Facts& a : ancestors) {
    ProcessNode parent = MakeNode(a);
    parent.children.push_back(std::move(node));
    node = std::move(parent);
  }
  ProcessTree tree;
  tree.target = target;
  tree.at = at;
  tree.root = std::move(node);
  RETURN_IF_ERROR(AttachAlerts(tree.root));
  tree.truncated = truncated_;
  return tree;
}

ordered_json OptInt(const std::optional<int64_t>& v) {
  return v ? ordered_json(*v) : ordered_json(nullptr);
}
ordered_json OptText(const std::optional<std::string>& v) {
  return v ? ordered_json(*v) : ordered_json(nullptr);
}
ordered_json OptArgv(const std::optional<std::vector<std::string>>& v) {
  return v ? ordered_json(*v) : ordered_json(nullptr);
}

ordered_json NodeToJson(const ProcessNode& n) {
  ordered_json j;
  j["pid"] = n.pid;
  j["ppid"] = OptInt(n.ppid);
  j["start_time"] = OptInt(n.start_time);
  j["name"] = OptText(n.name);
  j["exe_path"] = OptText(n.exe_path);
  j["command_line"] = OptArgv(n.command_line);
  j["user_id"] = OptInt(n.user_id);
  j["user_name"] = OptText(n.user_name);
  j["first_seen"] = OptInt(n.first_seen);
  j["last_seen"] = OptInt(n.last_seen);
  j["exited_at"] = OptInt(n.exited_at);
  j["exit_code"] = OptInt(n.exit_code);
  j["sources"] = ordered_json::array();
  if (n.from_scan) j["sources"].push_back("scan");
  if (n.from_event) j["sources"].push_back("event");
  j["execs"] = ordered_json::array();
  for (const ExecRecord& e : n.execs) {
    j["execs"].push_back({{"time", OptInt(e.time)},
                          {"exe_path", OptText(e.exe_path)},
                          {"command_line", OptArgv(e.command_line)}});
  }
  j["alerts"] = ordered_json::array();
  for (const AlertRef& a : n.alerts) {
    j["alerts"].push_back({{"id", a.id},
                           {"rule_id", a.rule_id},
                           {"severity", a.severity},
                           {"title", a.title},
                           {"alert_time", a.alert_time}});
  }
  j["is_target"] = n.is_target;
  j["children"] = ordered_json::array();
  for (const ProcessNode& c : n.children) j["children"].push_back(NodeToJson(c));
  j["children_omitted"] = n.children_omitted;
  return j;
}

ProcessNode* FindTarget(ProcessNode& node) {
  if (node.is_target) return &node;
  for (ProcessNode& c : node.children) {
    if (ProcessNode* t = FindTarget(c)) return t;
  }
  return nullptr;
}

// The alert row ProcessTreeForAlert starts from.
struct AlertRow {
  AlertRef ref;
  std::optional<int64_t> scan_id;
  std::string affected, raw;  // JSON texts
};

Result<AlertRow> ReadAlert(Database& db, int64_t alert_id) {
  ASSIGN_OR_RETURN(Statement st, Query(db,
                                       "SELECT id, rule_id, severity, title, alert_time, scan_id,"
                                       " affected_processes, raw_data FROM alerts WHERE id = ?1",
                                       {alert_id}));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFoundError("no alert with id " + std::to_string(alert_id));
  AlertRow a;
  a.ref = AlertRef{st.ColumnInt(0), st.ColumnText(1), st.ColumnText(2), st.ColumnText(3), st.ColumnInt(4)};
  a.scan_id = st.ColumnOptionalInt(5);
  a.affected = st.ColumnText(6);
  a.raw = st.ColumnText(7);
  return a;
}

std::optional<int64_t> IntMember(const ordered_json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}
std::optional<std::string> TextMember(const ordered_json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The instance an alert is about (see ProcessTreeForAlert); `raw` is its
// finding's row.
Result<ProcessKey> AlertProcess(Database& db, const AlertRow& a, const ordered_json& raw, int64_t pid) {
  if (IntMember(raw, "pid") == pid) {
    if (auto start = IntMember(raw, "start_time")) return ProcessKey{pid, start};
  }
  if (a.scan_id) {
    ASSIGN_OR_RETURN(Statement st, Query(db,
                                         "SELECT start_time FROM process_instances WHERE pid = ?1"
                                         " AND first_scan_id <= ?2 AND last_scan_id >= ?2"
                                         " ORDER BY start_time DESC LIMIT 1",
                                         {pid, *a.scan_id}));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) return ProcessKey{pid, st.ColumnInt(0)};
  }
  ASSIGN_OR_RETURN(auto start, LatestStart(db, pid, a.ref.alert_time));
  return ProcessKey{pid, start};
}

}  // namespace

Result<ProcessKey> FindProcess(Database& db, int64_t pid, std::optional<int64_t> at) {
  ReadTransaction tx(db);
  RETURN_IF_ERROR(tx.Begin());
  ASSIGN_OR_RETURN(auto start, LatestStart(db, pid, at));
  if (!start) {
    return NotFoundError("no process with pid " + std::to_string(pid) +
                         (at ? " started at or before " + FormatIso8601Ms(*at) : std::string()) +
                         " in the event store");
  }
  return ProcessKey{pid, start};
}

Result<ProcessTree> BuildProcessTree(Database& db, const ProcessKey& target, std::optional<int64_t> at,
                                     const std::optional<ProcessHint>& hint, const TreeLimits& limits) {
  ReadTransaction tx(db);
  RETURN_IF_ERROR(tx.Begin());
  TreeBuilder builder(db, limits);
  auto tree = builder.Build(target, at, hint);
  if (!tree.ok())
    return tree.status().WithContext("building the process tree of pid " + std::to_string(target.pid));
  return tree;
}

Result<ProcessTree> ProcessTreeForPid(Database& db, int64_t pid, std::optional<int64_t> at,
                                      const TreeLimits& limits) {
  ReadTransaction tx(db);
  RETURN_IF_ERROR(tx.Begin());
  ASSIGN_OR_RETURN(ProcessKey key, FindProcess(db, pid, at));
  return BuildProcessTree(db, key, at, std::nullopt, limits);
}

Result<ProcessTree> ProcessTreeForAlert(Database& db, int64_t alert_id, const TreeLimits& limits) {
  ReadTransaction tx(db);
  RETURN_IF_ERROR(tx.Begin());
  ASSIGN_OR_RETURN(AlertRow alert, ReadAlert(db, alert_id));
  const ordered_json affected = ordered_json::parse(alert.affected, nullptr, /*allow_exceptions=*/false);
  const ordered_json raw = ordered_json::parse(alert.raw, nullptr, /*allow_exceptions=*/false);
  const ordered_json* first = nullptr;
  if (affected.is_array()) {
    for (const auto& p : affected) {
      if (IntMember(p, "pid")) {
        first = &p;
        break;
      }
    }
  }
  if (first == nullptr) return NotFoundError("alert " + std::to_string(alert_id) + " names no process");
  const int64_t pid = *IntMember(*first, "pid");
  ASSIGN_OR_RETURN(ProcessKey key, AlertProcess(db, alert, raw, pid));
  ProcessHint hint{TextMember(*first, "name"), TextMember(*first, "exe_path"), std::nullopt};
  if (IntMember(raw, "pid") == pid) hint.ppid = IntMember(raw, "ppid");
  ASSIGN_OR_RETURN(ProcessTree tree, BuildProcessTree(db, key, alert.ref.alert_time, hint, limits));
  ProcessNode* target = FindTarget(tree.root);
  if (target != nullptr && std::none_of(target->alerts.begin(), target->alerts.end(),
                                        [&](const AlertRef& a) { return a.id == alert.ref.id; })) {
    target->alerts.push_back(alert.ref);
    std::sort(target->alerts.begin(), target->alerts.end(), [](const AlertRef& x, const AlertRef& y) {
      return std::tie(x.alert_time, x.id) < std::tie(y.alert_time, y.id);
    });
  }
  return tree;
}

ordered_json ProcessTreeToJson(const ProcessTree& tree) {
  ordered_json j;
  j["target"] = {{"pid", tree.target.pid}, {"start_time", OptInt(tree.target.start_time)}};
  j["at"] = OptInt(tree.at);
  j["root"] = NodeToJson(tree.root);
  j["truncated"] = tree.truncated;
  return j;
}

}  // namespace sentinel::history
