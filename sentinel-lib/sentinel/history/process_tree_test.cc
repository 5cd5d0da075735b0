#include "sentinel/history/process_tree.h"

#include <gtest/gtest.h>

#include <functional>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::history {
namespace {

using nlohmann::ordered_json;
using storage::Database;
using storage::EventStore;
using testing::TempDir;

// A real event store, written through procmond's own write paths
// (EventStore::WriteScan, WriteEvents), and alerts as the agent stores them.
class Store {
 public:
  Store() {
    auto s = EventStore::Open({dir_.File("events.db"), storage::OpenMode::kReadWrite, 2000});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  Database& db() { return store_->db(); }

  void Scan(int64_t t, std::vector<models::ProcessRecord> procs) {
    models::ScanRecord scan;
    scan.started_at_ms = t;
    scan.completed_at_ms = t + 5;
    scan.hostname = "h";
    scan.collector_version = "test";
    scan.processes = std::move(procs);
    auto r = store_->WriteScan(scan);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  void Events(std::vector<models::ProcessEvent> events) {
    auto r = store_->WriteEvents(events);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // An alert as alertstore writes it: affected_processes {pid, name,
  // exe_path}, the finding's row in raw_data.
  int64_t Alert(int64_t time, const std::string& rule, int64_t pid, std::optional<int64_t> start,
                const std::string& severity = "high") {
    ordered_json raw = {{"pid", pid}, {"name", "x"}};
    if (start) raw["start_time"] = *start;
    ordered_json affected = ordered_json::array({{{"pid", pid}, {"name", "x"}, {"exe_path", nullptr}}});
    auto st = db().Prepare(
        "INSERT INTO alerts(alert_time, rule_id, title, severity, affected_processes, process_count, "
        "raw_data)"
        " VALUES(?1, ?2, ?3, ?4, ?5, 1, ?6)");
    EXPECT_TRUE(st.ok());
    EXPECT_TRUE(st->BindInt(1, time).ok());
    EXPECT_TRUE(st->BindText(2, rule).ok());
    EXPECT_TRUE(st->BindText(3, "Title of " + rule).ok());
    EXPECT_TRUE(st->BindText(4, severity).ok());
    EXPECT_TRUE(st->BindText(5, affected.dump()).ok());
    EXPECT_TRUE(st->BindText(6, raw.dump()).ok());
    EXPECT_TRUE(st->Run().ok());
    return db().LastInsertRowId();
  }

 private:
  TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

models::ProcessRecord Proc(int64_t pid, int64_t ppid, int64_t start, std::vector<std::string> argv) {
  models::ProcessRecord p;
  p.pid = pid;
  p.ppid = ppid;
  p.name = argv.front().substr(argv.front().rfind('/') + 1);
  p.exe_path = argv.front();
  p.command_line = std::move(argv);
  p.start_time_ms = start;
  p.cpu_percent = 0.0;
  p.memory_bytes = 4096;
  p.status = "sleeping";
  p.user_id = 1000;
  p.user_name = "alice";
  return p;
}

models::ProcessEvent Exec(int64_t time, int64_t pid, int64_t start, int64_t ppid,
                          std::optional<int64_t> parent_start, std::vector<std::string> argv) {
  models::ProcessEvent e;
  e.event_time_ms = time;
  e.event_type = "exec";
  e.pid = pid;
  e.ppid = ppid;
  e.start_time_ms = start;
  e.parent_start_time_ms = parent_start;
  e.exe_path = argv.front();
  e.name = argv.front().substr(argv.front().rfind('/') + 1);
  e.command_line = std::move(argv);
  e.user_id = 1000;
  e.user_name = "alice";
  return e;
}

models::ProcessEvent Exit(int64_t time, int64_t pid, int64_t start, int64_t code) {
  models::ProcessEvent e;
  e.event_time_ms = time;
  e.event_type = "exit";
  e.pid = pid;
  e.start_time_ms = start;
  e.exit_code = code;
  return e;
}

// The node of `pid` (depth first), or nullptr.
const ProcessNode* Find(const ProcessNode& n, int64_t pid, std::optional<int64_t> start = std::nullopt) {
  if (n.pid == pid && (!start || n.start_time == start)) return &n;
  for (const ProcessNode& c : n.children) {
    if (const ProcessNode* f = Find(c, pid, start)) return f;
  }
  return nullptr;
}

std::vector<int64_t> Path(const ProcessNode& root) {
  std::vector<int64_t> out;
  const ProcessNode* n = &root;
  while (true) {
    out.push_back(n->pid);
    if (n->is_target || n->children.empty()) break;
    n = &n->children.front();
  }
  return out;
}

std::vector<int64_t> ChildPids(const ProcessNode& n) {
  std::vector<int64_t> out;
  for (const ProcessNode& c : n.children) out.push_back(c.pid);
  return out;
}

// init (1) -> sshd (500) -> bash (600), seen by scans; bash runs a script
// through sh (700, which execs twice), whose children are curl (701) and a
// program from /tmp (702). Then pid 702 is reused by a later child of bash.
class ProcessTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.Scan(5'000, {Proc(1, 0, 1'000, {"/sbin/init"}), Proc(500, 1, 2'000, {"/usr/sbin/sshd", "-D"}),
                        Proc(600, 500, 3'000, {"/bin/bash"})});
    store_.Events({Exec(10'000, 700, 10'000, 600, 3'000, {"/bin/sh", "-c", "./stage.sh"}),
                   Exec(10'005, 700, 10'000, 600, 3'000, {"/bin/sh", "./stage.sh"}),
                   Exec(10'010, 701, 10'010, 700, 10'000, {"/usr/bin/curl", "-o", "/tmp/d/x", "http://h/x"}),
                   Exit(10'200, 701, 10'010, 0),
                   Exec(10'300, 702, 10'300, 700, 10'000, {"/tmp/d/x", "--beacon"}),
                   Exit(10'400, 702, 10'300, 3), Exit(10'500, 700, 10'000, 0),
                   Exec(50'000, 702, 50'000, 600, 3'000, {"/usr/bin/vim", "notes"})});
    store_.Scan(60'000,
                {Proc(1, 0, 1'000, {"/sbin/init"}), Proc(500, 1, 2'000, {"/usr/sbin/sshd", "-D"}),
                 Proc(600, 500, 3'000, {"/bin/bash"}), Proc(702, 600, 50'000, {"/usr/bin/vim", "notes"})});
  }
  Store store_;
};

TEST_F(ProcessTreeTest, AlertTreeShowsTheChainFromInitTheExecsChildrenExitCodesAndAlerts) {
  const int64_t on_x = store_.Alert(10'350, "proc-exec-from-tmp", 702, 10'300);
  const int64_t on_bash = store_.Alert(20'000, "user-rule", 600, std::nullopt, "low");  // no start_time
  const int64_t on_vim = store_.Alert(55'000, "proc-exec-from-tmp", 702, 50'000);       // the reused pid

  auto tree = ProcessTreeForAlert(store_.db(), on_x);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(tree->target, (ProcessKey{702, 10'300}));
  EXPECT_EQ(tree->at, 10'350);
  EXPECT_FALSE(tree->truncated);
  EXPECT_EQ(Path(tree->root), (std::vector<int64_t>{1, 500, 600, 700, 702}));
  EXPECT_EQ(tree->root.ppid, 0);
  EXPECT_EQ(tree->root.command_line, (std::vector<std::string>{"/sbin/init"}));
  EXPECT_TRUE(tree->root.from_scan);
  EXPECT_FALSE(tree->root.from_event);

  // Ancestors hold only the next node towards the target.
  const ProcessNode* bash = Find(tree->root, 600);
  ASSERT_NE(bash, nullptr);
  EXPECT_EQ(ChildPids(*bash), (std::vector<int64_t>{700}));
  ASSERT_EQ(bash->alerts.size(), 1u);
  EXPECT_EQ(bash->alerts[0].id, on_bash);
  EXPECT_EQ(bash->alerts[0].severity, "low");

  const ProcessNode* sh = Find(tree->root, 700);
  ASSERT_NE(sh, nullptr);
  ASSERT_EQ(sh->execs.size(), 2u) << "one process, two execs";
  EXPECT_EQ(sh->execs[0].time, 10'000);
  EXPECT_EQ(sh->execs[0].command_line, (std::vector<std::string>{"/bin/sh", "-c", "./stage.sh"}));
  EXPECT_EQ(sh->execs[1].command_line, (std::vector<std::string>{"/bin/sh", "./stage.sh"}));
  EXPECT_EQ(sh->command_line, (std::vector<std::string>{"/bin/sh", "./stage.sh"})) << "the last image";
  EXPECT_EQ(sh->exit_code, 0);
  EXPECT_EQ(sh->exited_at, 10'500);
  EXPECT_EQ(sh->ppid, 600);

  const ProcessNode* x = Find(tree->root, 702);
  ASSERT_NE(x, nullptr);
  EXPECT_TRUE(x->is_target);
  EXPECT_EQ(x->start_time, 10'300);
  EXPECT_EQ(x->exit_code, 3);
  EXPECT_EQ(x->exe_path, "/tmp/d/x");
  EXPECT_EQ(x->user_name, "alice");
  ASSERT_EQ(x->alerts.size(), 1u) << "the alert on the later process with pid 702 is not this one's";
  EXPECT_EQ(x->alerts[0].id, on_x);
  EXPECT_EQ(x->alerts[0].rule_id, "proc-exec-from-tmp");
  EXPECT_TRUE(x->children.empty());

  // The JSON shape the CLI and the web UI share.
  const ordered_json j = ProcessTreeToJson(*tree);
  EXPECT_EQ(j["target"], (ordered_json{{"pid", 702}, {"start_time", 10'300}}));
  EXPECT_EQ(j["root"]["sources"], ordered_json::array({"scan"}));
  const ordered_json& jx = j["root"]["children"][0]["children"][0]["children"][0]["children"][0];
  EXPECT_EQ(jx["pid"], 702);
  EXPECT_EQ(jx["is_target"], true);
  EXPECT_EQ(jx["alerts"][0]["id"], on_x);
  EXPECT_EQ(jx["command_line"], ordered_json::array({"/tmp/d/x", "--beacon"}));
  EXPECT_EQ(jx["exit_code"], 3);
  EXPECT_EQ(jx["sources"], ordered_json::array({"event"}));
  EXPECT_EQ(jx["children_omitted"], 0);
  std::vector<std::string> keys;
  for (auto it = jx.begin(); it != jx.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"pid", "ppid", "start_time", "name", "exe_path", "command_line",
                                            "user_id", "user_name", "first_seen", "last_seen", "exited_at",
                                            "exit_code", "sources", "execs", "alerts", "is_target",
                                            "children", "children_omitted"}));

  // The reused pid's own alert makes its own tree, under bash.
  auto vim = ProcessTreeForAlert(store_.db(), on_vim);
  ASSERT_TRUE(vim.ok()) << vim.status().ToString();
  EXPECT_EQ(Path(vim->root), (std::vector<int64_t>{1, 500, 600, 702}));
  EXPECT_EQ(Find(vim->root, 702)->command_line, (std::vector<std::string>{"/usr/bin/vim", "notes"}));
  EXPECT_TRUE(Find(vim->root, 702)->from_scan && Find(vim->root, 702)->from_event);
}

TEST_F(ProcessTreeTest, TargetsDescendantsAreListedAndAReusedPidIsNotMerged) {
  // 703's exit event was lost (ENOBUFS); then its pid went to another child of bash.
  store_.Events({Exec(10'320, 703, 10'320, 700, 10'000, {"/bin/sleep", "1"}),
                 Exec(40'000, 703, 40'000, 600, 3'000, {"/usr/bin/top"})});
  auto tree = ProcessTreeForPid(store_.db(), 600, std::nullopt);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  const ProcessNode* bash = Find(tree->root, 600);
  ASSERT_NE(bash, nullptr);
  EXPECT_TRUE(bash->is_target);
  // sh (700) and, later, the second processes with pids 703 and 702.
  ASSERT_EQ(ChildPids(*bash), (std::vector<int64_t>{700, 703, 702}));
  EXPECT_EQ(bash->children[1].start_time, 40'000);
  EXPECT_EQ(bash->children[2].start_time, 50'000);
  const ProcessNode& sh = bash->children[0];
  ASSERT_EQ(ChildPids(sh), (std::vector<int64_t>{701, 702, 703}));
  EXPECT_EQ(sh.children[1].start_time, 10'300);
  EXPECT_EQ(sh.children[1].execs.size(), 1u) << "vim's exec is not /tmp/d/x's";
  EXPECT_EQ(sh.children[0].exit_code, 0);
  const ProcessNode& sleeper = sh.children[2];
  ASSERT_EQ(sleeper.execs.size(), 1u) << "top's exec is not sleep's";
  EXPECT_EQ(sleeper.command_line, (std::vector<std::string>{"/bin/sleep", "1"}));
  EXPECT_EQ(sleeper.last_seen, 10'320);
}

TEST_F(ProcessTreeTest, AtChoosesTheInstanceAliveThenOrTheLastBefore) {
  EXPECT_EQ(FindProcess(store_.db(), 702, std::nullopt)->start_time, 50'000) << "the most recent";
  EXPECT_EQ(FindProcess(store_.db(), 702, 10'350)->start_time, 10'300) << "alive then";
  EXPECT_EQ(FindProcess(store_.db(), 702, 30'000)->start_time, 10'300) << "exited, the last before";
  EXPECT_EQ(FindProcess(store_.db(), 702, 50'000)->start_time, 50'000);
  auto before = FindProcess(store_.db(), 702, 9'000);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.status().code(), StatusCode::kNotFound);
  auto unknown = FindProcess(store_.db(), 4242, std::nullopt);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("pid 4242"), std::string::npos);

  // Scans alone: pid 800 twice, at different start times.
  store_.Scan(100'000, {Proc(800, 1, 90'000, {"/usr/bin/old"})});
  store_.Scan(200'000, {Proc(800, 1, 150'000, {"/usr/bin/new"})});
  EXPECT_EQ(FindProcess(store_.db(), 800, 120'000)->start_time, 90'000);
  EXPECT_EQ(FindProcess(store_.db(), 800, 160'000)->start_time, 150'000);
  auto old = ProcessTreeForPid(store_.db(), 800, 120'000);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(Find(old->root, 800)->command_line, (std::vector<std::string>{"/usr/bin/old"}));
  EXPECT_EQ(Find(old->root, 800)->last_seen, 100'000);

  // A process forked before T that exec'd after it is the one alive at T.
  store_.Events({Exec(300'000, 900, 250'000, 600, 3'000, {"/bin/late"})});
  EXPECT_EQ(FindProcess(store_.db(), 900, 260'000)->start_time, 250'000);
}

TEST_F(ProcessTreeTest, ScansAndEventsMergeByIdentityAndAForkSharesItsParentsImage) {
  // python3 (610) seen by scans and by its exec event; a forked worker
  // (611) never exec'd: a scan shows it with its parent's image.
  store_.Events({Exec(61'000, 610, 61'000, 600, 3'000, {"/usr/bin/python3", "app.py"})});
  store_.Scan(70'000,
              {Proc(1, 0, 1'000, {"/sbin/init"}), Proc(500, 1, 2'000, {"/usr/sbin/sshd", "-D"}),
               Proc(600, 500, 3'000, {"/bin/bash"}), Proc(610, 600, 61'000, {"/usr/bin/python3", "app.py"}),
               Proc(611, 610, 62'000, {"/usr/bin/python3", "app.py"})});
  auto tree = ProcessTreeForPid(store_.db(), 610, std::nullopt);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  const ProcessNode* py = Find(tree->root, 610);
  ASSERT_NE(py, nullptr);
  EXPECT_TRUE(py->from_scan);
  EXPECT_TRUE(py->from_event);
  ASSERT_EQ(py->execs.size(), 1u) << "the scanned image is the exec's";
  EXPECT_EQ(py->first_seen, 61'000);
  EXPECT_EQ(py->last_seen, 70'000);
  ASSERT_EQ(ChildPids(*py), (std::vector<int64_t>{611}));
  const ProcessNode& worker = py->children[0];
  EXPECT_TRUE(worker.from_scan);
  EXPECT_FALSE(worker.from_event);
  EXPECT_EQ(worker.command_line, (std::vector<std::string>{"/usr/bin/python3", "app.py"}));
  EXPECT_EQ(worker.ppid, 610);
  EXPECT_EQ(Path(tree->root), (std::vector<int64_t>{1, 500, 600, 610}));
}

TEST_F(ProcessTreeTest, AParentKnownOnlyFromItsChildsEventIsShownFromThatEvent) {
  models::ProcessEvent child = Exec(80'000, 1001, 80'000, 1000, 79'000, {"/usr/bin/id"});
  child.parent_name = "sh";
  child.parent_exe_path = "/bin/sh";
  child.parent_command_line = std::vector<std::string>{"sh", "-c", "id"};
  store_.Events({child});
  auto tree = ProcessTreeForPid(store_.db(), 1001, std::nullopt);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(Path(tree->root), (std::vector<int64_t>{1000, 1001}));
  EXPECT_EQ(tree->root.start_time, 79'000);
  EXPECT_EQ(tree->root.command_line, (std::vector<std::string>{"sh", "-c", "id"}));
  EXPECT_EQ(tree->root.exe_path, "/bin/sh");
  EXPECT_TRUE(tree->root.from_event);
}

TEST_F(ProcessTreeTest, LimitsCutChildrenDepthAndNodesAndCountWhatTheyCut) {
  // An exec storm under 2000: 30 children; and a chain 3000 -> 3001 -> ... -> 3005.
  std::vector<models::ProcessEvent> events = {Exec(100'000, 2000, 100'000, 600, 3'000, {"/bin/storm"})};
  for (int i = 0; i < 30; ++i) {
    events.push_back(Exec(100'010 + i, 2100 + i, 100'010 + i, 2000, 100'000, {"/bin/true"}));
    events.push_back(Exit(100'050 + i, 2100 + i, 100'010 + i, 0));
  }
  events.push_back(Exec(110'000, 3000, 110'000, 600, 3'000, {"/bin/c0"}));
  for (int i = 1; i <= 5; ++i)
    events.push_back(Exec(110'000 + i, 3000 + i, 110'000 + i, 3000 + i - 1, 110'000 + i - 1, {"/bin/c"}));
  store_.Events(events);

  TreeLimits limits;
  limits.max_children = 10;
  auto storm = ProcessTreeForPid(store_.db(), 2000, std::nullopt, limits);
  ASSERT_TRUE(storm.ok()) << storm.status().ToString();
  const ProcessNode* s = Find(storm->root, 2000);
  ASSERT_EQ(s->children.size(), 10u);
  EXPECT_EQ(s->children_omitted, 20);
  EXPECT_EQ(s->children.front().pid, 2100) << "the oldest first";
  EXPECT_TRUE(storm->truncated);
  EXPECT_EQ(ProcessTreeToJson(*storm)["truncated"], true);

  limits = {};
  limits.max_nodes = 4 + 11;  // the target and its 3 ancestors, then 11 children
  auto budget = ProcessTreeForPid(store_.db(), 2000, std::nullopt, limits);
  ASSERT_TRUE(budget.ok());
  EXPECT_EQ(Path(budget->root), (std::vector<int64_t>{1, 500, 600, 2000})) << "ancestors come first";
  EXPECT_EQ(Find(budget->root, 2000)->children.size(), 11u);
  EXPECT_EQ(Find(budget->root, 2000)->children_omitted, 19);

  limits = {};
  limits.max_depth = 2;
  auto chain = ProcessTreeForPid(store_.db(), 3000, std::nullopt, limits);
  ASSERT_TRUE(chain.ok());
  const ProcessNode* c2 = Find(chain->root, 3002);
  ASSERT_NE(c2, nullptr);
  EXPECT_TRUE(c2->children.empty());
  EXPECT_EQ(c2->children_omitted, 1);
  EXPECT_EQ(Find(chain->root, 3003), nullptr);
  EXPECT_TRUE(chain->truncated);

  limits = {};
  limits.max_ancestors = 1;
  auto short_path = ProcessTreeForPid(store_.db(), 3005, std::nullopt, limits);
  ASSERT_TRUE(short_path.ok());
  EXPECT_EQ(Path(short_path->root), (std::vector<int64_t>{3004, 3005}));
  EXPECT_TRUE(short_path->truncated);

  auto whole = ProcessTreeForPid(store_.db(), 3000, std::nullopt);
  ASSERT_TRUE(whole.ok());
  EXPECT_NE(Find(whole->root, 3005), nullptr);
  EXPECT_FALSE(whole->truncated);
}

TEST_F(ProcessTreeTest, LimitsCutExecsAndAlertsKeepingTheFirstExecsAndTheNewestAlerts) {
  std::vector<models::ProcessEvent> execs;
  for (int i = 0; i < 5; ++i)
    execs.push_back(Exec(130'000 + i, 6000, 130'000, 600, 3'000, {"/bin/step" + std::to_string(i)}));
  store_.Events(execs);
  std::vector<int64_t> alerts;
  for (int i = 0; i < 4; ++i)
    alerts.push_back(store_.Alert(131'000 + i, "r" + std::to_string(i), 6000, 130'000));
  TreeLimits limits;
  limits.max_execs = 3;
  limits.max_alerts = 2;
  auto tree = ProcessTreeForPid(store_.db(), 6000, std::nullopt, limits);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  const ProcessNode* n = Find(tree->root, 6000);
  ASSERT_EQ(n->execs.size(), 3u);
  EXPECT_EQ(n->execs[0].command_line, (std::vector<std::string>{"/bin/step0"}));
  EXPECT_EQ(n->execs[2].command_line, (std::vector<std::string>{"/bin/step2"}));
  ASSERT_EQ(n->alerts.size(), 2u);
  EXPECT_EQ(n->alerts[0].id, alerts[2]);
  EXPECT_EQ(n->alerts[1].id, alerts[3]);
  EXPECT_TRUE(tree->truncated);
  auto whole = ProcessTreeForPid(store_.db(), 6000, std::nullopt);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(Find(whole->root, 6000)->execs.size(), 5u);
  EXPECT_EQ(Find(whole->root, 6000)->alerts.size(), 4u);
  EXPECT_EQ(Find(whole->root, 6000)->command_line, (std::vector<std::string>{"/bin/step4"}));
  EXPECT_FALSE(whole->truncated);
}

TEST_F(ProcessTreeTest, HostileNamesAndArgumentsStayIntactInJson) {
  const std::string evil_name = "ev\x1b[31mil";
  const std::string evil_arg = "a\nb\x1b]0;pwned\x07\xe2\x80\xae";
  models::ProcessEvent e = Exec(120'000, 4000, 120'000, 600, 3'000, {"/tmp/\x1b[2Jx", evil_arg});
  e.name = evil_name;
  store_.Events({e});
  auto tree = ProcessTreeForPid(store_.db(), 4000, std::nullopt);
  ASSERT_TRUE(tree.ok());
  const ordered_json j = ProcessTreeToJson(*tree);
  const std::string text = j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  const ordered_json back = ordered_json::parse(text);
  const ordered_json& node = back["root"]["children"][0]["children"][0]["children"][0];
  EXPECT_EQ(node["name"], evil_name);
  EXPECT_EQ(node["exe_path"], "/tmp/\x1b[2Jx");
  EXPECT_EQ(node["command_line"][1], evil_arg);
}

TEST_F(ProcessTreeTest, AlertErrorsAndAnAlertWhoseProcessLeftTheStore) {
  auto missing = ProcessTreeForAlert(store_.db(), 999);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_.db()
                  .Exec("INSERT INTO alerts(alert_time, rule_id, title, severity, affected_processes)"
                        " VALUES(1, 'r', 't', 'low', '[]')")
                  .ok());
  auto none = ProcessTreeForAlert(store_.db(), store_.db().LastInsertRowId());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("names no process"), std::string::npos);

  // The process is gone from the store (retention): the node still shows
  // what the alert says, under the parent the finding named.
  ordered_json raw = {{"pid", 5555}, {"ppid", 600}, {"start_time", 140'000}};
  auto st = store_.db().Prepare(
      "INSERT INTO alerts(alert_time, rule_id, title, severity, affected_processes, process_count, raw_data)"
      " VALUES(140500, 'r', 't', 'critical', ?1, 1, ?2)");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->BindText(1, R"([{"pid":5555,"name":"gone","exe_path":"/tmp/gone"}])").ok());
  ASSERT_TRUE(st->BindText(2, raw.dump()).ok());
  ASSERT_TRUE(st->Run().ok());
  const int64_t id = store_.db().LastInsertRowId();
  auto gone = ProcessTreeForAlert(store_.db(), id);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(Path(gone->root), (std::vector<int64_t>{1, 500, 600, 5555}));
  const ProcessNode* n = Find(gone->root, 5555);
  EXPECT_EQ(n->name, "gone");
  EXPECT_EQ(n->exe_path, "/tmp/gone");
  EXPECT_FALSE(n->from_scan || n->from_event);
  ASSERT_EQ(n->alerts.size(), 1u);
  EXPECT_EQ(n->alerts[0].severity, "critical");
}

// The lookups stay on indexes (migration 10): an exec storm under a node
// must not turn them into table scans.
TEST_F(ProcessTreeTest, ChildLookupsUseTheParentIndexes) {
  auto plan = [&](const std::string& sql) {
    auto st = store_.db().Prepare("EXPLAIN QUERY PLAN " + sql);
    EXPECT_TRUE(st.ok());
    std::string out;
    while (*st->Step()) out += st->ColumnText(3) + "\n";
    return out;
  };
  const std::string exact = plan(
      "SELECT pid, start_time, event_time_ms FROM process_events WHERE event_type IN ('exec', 'fork')"
      " AND ppid = 1 AND parent_start_time = 2 ORDER BY event_time_ms LIMIT 5");
  EXPECT_NE(exact.find("USING INDEX idx_process_events_parent"), std::string::npos) << exact;
  EXPECT_EQ(exact.find("TEMP B-TREE"), std::string::npos) << exact;
  EXPECT_NE(
      plan("SELECT pid, start_time, event_time_ms FROM process_events WHERE event_type IN ('exec', 'fork')"
           " AND ppid = 1 AND parent_start_time IS NULL AND event_time_ms BETWEEN 1 AND 2"
           " ORDER BY event_time_ms LIMIT 5")
          .find("USING INDEX idx_process_events_parent"),
      std::string::npos);
  EXPECT_NE(plan("SELECT i.pid, i.start_time FROM process_states st JOIN process_instances i ON"
                 " i.instance_id = st.instance_id WHERE st.ppid = 1 AND i.start_time BETWEEN 1 AND 2 LIMIT 5")
                .find("USING COVERING INDEX idx_states_ppid"),
            std::string::npos);
}

}  // namespace
}  // namespace sentinel::history
