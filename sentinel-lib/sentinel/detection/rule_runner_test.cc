#include "sentinel/detection/rule_runner.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <tuple>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::detection {
namespace {

Rule MakeRule(const std::string& query, std::vector<std::string> dedup = {}) {
  Rule r;
  r.id = "t";
  r.name = "t";
  r.query = query;
  r.dedup_keys = std::move(dedup);
  r.source_path = "rules/t.yaml";
  return r;
}

class RuleRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("e.db");
    auto rw = storage::EventStore::Open({path_, storage::OpenMode::kReadWrite, 1000});
    ASSERT_TRUE(rw.ok());
    for (int s = 0; s < 3; ++s) {
      models::ScanRecord scan;
      scan.started_at_ms = 1000 + s;
      scan.completed_at_ms = 1001 + s;
      for (int pid : {1, 42, 43 + s}) {
        models::ProcessRecord p;
        p.pid = pid;
        p.start_time_ms = pid * 10;
        p.name = pid == 42 ? "bash" : "sleep";
        p.exe_path = pid == 42 ? "/tmp/x (deleted)" : "/usr/bin/sleep";
        scan.processes.push_back(p);
      }
      ASSERT_TRUE((*rw)->WriteScan(scan).ok());
    }
    rw->reset();
    auto ro = storage::OpenStore(storage::DatabaseKind::kEvents, {path_, storage::OpenMode::kReadOnly, 1000});
    ASSERT_TRUE(ro.ok());
    db_ = std::move(*ro);
  }

  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<storage::Database> db_;
};

TEST_F(RuleRunnerTest, FindingsAreRowsWithColumnsInOrder) {
  Rule r = MakeRule(
      "SELECT pid, name, exe_path, 1.5 AS score, NULL AS empty FROM processes "
      "WHERE exe_path LIKE '% (deleted)'",
      {"pid", "exe_path"});
  RunParams params;
  ASSERT_TRUE(FillScanIds(*db_, &params).ok());
  auto res = RunRule(*db_, r, params, RunLimits{});
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->columns, (std::vector<std::string>{"pid", "name", "exe_path", "score", "empty"}));
  ASSERT_EQ(res->rows.size(), 1u);
  EXPECT_EQ(res->rows[0].dump(),
            R"j({"pid":42,"name":"bash","exe_path":"/tmp/x (deleted)","score":1.5,"empty":null})j");
  EXPECT_FALSE(res->truncated);
}

// A long-lived worker moves its snapshot from scan to scan: the rows are
// the new scan's, and the schema (so every compiled rule) stays as it was.
TEST_F(RuleRunnerTest, SnapshotOfAnotherScanKeepsCompiledRulesValid) {
  ASSERT_TRUE(PrepareRuleSnapshot(*db_, 1).ok());
  const auto version = db_->QueryInt("PRAGMA temp.schema_version");
  ASSERT_TRUE(version.ok());
  Rule r = MakeRule("SELECT pid FROM processes WHERE pid > 42");
  auto q = PrepareRule(*db_, r, RunParams{}, GuardLimits{});
  ASSERT_TRUE(q.ok()) << q.status().message();
  for (int64_t scan : {1, 3, 2}) {
    ASSERT_TRUE(PrepareRuleSnapshot(*db_, scan).ok());
    EXPECT_EQ(*db_->QueryInt("PRAGMA temp.schema_version"), *version) << "scan " << scan;
    EXPECT_EQ(*db_->QueryInt("SELECT count(*) FROM temp.processes"), 3) << "scan " << scan;
    (*q)->Rearm(GuardLimits{});
    std::vector<int64_t> pids;
    while (true) {
      auto more = (*q)->Step();
      ASSERT_TRUE(more.ok()) << more.status().message();
      if (!*more) break;
      pids.push_back((*q)->statement().ColumnInt(0));
    }
    sqlite3_reset((*q)->statement().raw());
    EXPECT_EQ(pids, std::vector<int64_t>{42 + scan}) << "scan " << scan;
  }
  EXPECT_EQ(sqlite3_stmt_status((*q)->statement().raw(), SQLITE_STMTSTATUS_REPREPARE, 0), 0);
}

TEST_F(RuleRunnerTest, StandardParametersAreBound) {
  RunParams params;
  ASSERT_TRUE(FillScanIds(*db_, &params).ok());
  ASSERT_EQ(params.scan_id, 3);
  ASSERT_EQ(params.prev_scan_id, 2);
  params.now_ms = 777;
  params.last_run_ms = 555;
  // New in this scan: present at :scan_id, absent at :prev_scan_id.
  Rule r = MakeRule(
      "SELECT pid, :now_ms AS now, :last_run_ms AS last FROM process_snapshots s WHERE scan_id = :scan_id "
      "AND NOT "
      "EXISTS (SELECT 1 FROM process_snapshots p WHERE p.scan_id = :prev_scan_id AND p.pid = s.pid)");
  auto res = RunRule(*db_, r, params, RunLimits{});
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->rows.size(), 1u);
  EXPECT_EQ(res->rows[0]["pid"], 45);
  EXPECT_EQ(res->rows[0]["now"], 777);
  EXPECT_EQ(res->rows[0]["last"], 555);
}

TEST_F(RuleRunnerTest, RejectsUnknownParametersAndDedupKeys) {
  auto check = [&](const Rule& r, const std::string& want) {
    Status s = ValidateRuleQuery(*db_, r);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << r.query;
    EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("rules/t.yaml"), std::string::npos) << s.message();
  };
  check(MakeRule("SELECT pid FROM processes WHERE pid = :pid"), "unknown parameter \":pid\"");
  check(MakeRule("SELECT pid FROM processes WHERE pid = ?"), "positional parameter");
  check(MakeRule("SELECT pid FROM processes WHERE pid = $now_ms"), "unknown parameter");
  check(MakeRule("SELECT pid FROM processes", {"exe_path"}), "dedup_keys: \"exe_path\" is not a column");
  check(MakeRule("SELECT * FROM sqlite_master"), "query: ");
  check(MakeRule("DELETE FROM process_events"), "query: ");
  EXPECT_TRUE(
      ValidateRuleQuery(*db_, MakeRule("SELECT pid FROM processes WHERE start_time > :now_ms", {"pid"}))
          .ok());
}

TEST_F(RuleRunnerTest, RunawayRuleIsStoppedAndRowsAreCapped) {
  RunLimits limits;
  limits.guard.timeout_ms = 100;
  auto res = RunRule(
      *db_, MakeRule("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT count(*) FROM r"),
      RunParams{}, limits);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(res.status().message().find("rule t"), std::string::npos);

  RunLimits rows;
  rows.max_rows = 5;
  auto capped = RunRule(
      *db_,
      MakeRule("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 100) SELECT n FROM r"),
      RunParams{}, rows);
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->rows.size(), 5u);
  EXPECT_TRUE(capped->truncated);
}

TEST(RuleRunnerSchemaOnly, ValidatesWithoutAStore) {
  auto db = OpenSchemaOnlyEventStore();
  ASSERT_TRUE(db.ok()) << db.status().message();
  EXPECT_TRUE(ValidateRuleQuery(**db, MakeRule("SELECT pid, name FROM processes", {"pid"})).ok());
  EXPECT_FALSE(ValidateRuleQuery(**db, MakeRule("SELECT nosuchcolumn FROM processes")).ok());
}

// A store with one scan (a parent nginx 100, its child sh 101, a process with
// bad platform_data) and exec/fork/exit events with ids 1..8.
class ExecEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("e.db");
    auto rw = storage::EventStore::Open({path_, storage::OpenMode::kReadWrite, 1000});
    ASSERT_TRUE(rw.ok());
    models::ScanRecord scan;
    scan.started_at_ms = 5000;
    scan.completed_at_ms = 5001;
    scan.processes.push_back(Proc(100, 1, "nginx", 1000, R"({"cwd": "/"})"));
    scan.processes.push_back(Proc(101, 100, "sh", 2000,
                                  R"({"cwd": "/srv/www", "tty": "pts/3", "exe_host_mismatch": true,)"
                                  R"( "exe_memfd_seals": 15, "loader_env": ["LD_PRELOAD"]})"));
    scan.processes.push_back(Proc(102, 100, "odd", 3000, "not json"));
    ASSERT_TRUE((*rw)->WriteScan(scan).ok());
    std::vector<models::ProcessEvent> events;
    for (int i = 1; i <= 8; ++i) {
      models::ProcessEvent e;
      e.event_time_ms = 6000 + i;
      e.event_type = i % 3 == 0 ? "exit" : "exec";
      e.pid = 200 + i;
      e.ppid = 101;
      e.name = "cmd" + std::to_string(i);
      e.command_line = std::vector<std::string>{"cmd", "-" + std::to_string(i)};
      e.start_time_ms = 6000 + i;
      e.parent_name = "sh";
      e.cwd = "/tmp";
      if (i == 2) {
        e.args_truncated = true;
        e.args_length = 9000;
        e.exe_host_mismatch = false;
        e.exe_memfd_seals = 0;
        e.env = std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", "/x.so"}};
      }
      events.push_back(e);
    }
    ASSERT_TRUE((*rw)->WriteEvents(events).ok());
    rw->reset();
    auto ro = storage::OpenStore(storage::DatabaseKind::kEvents, {path_, storage::OpenMode::kReadOnly, 1000});
    ASSERT_TRUE(ro.ok());
    db_ = std::move(*ro);
    ASSERT_TRUE(FillScanIds(*db_, &params_).ok());
    ASSERT_TRUE(PrepareRuleSnapshot(*db_, params_.scan_id).ok());
  }
  static models::ProcessRecord Proc(int64_t pid, int64_t ppid, const std::string& name, int64_t start,
                                    const std::string& pd) {
    models::ProcessRecord p;
    p.pid = pid;
    p.ppid = ppid;
    p.name = name;
    p.start_time_ms = start;
    p.exe_path = "/usr/bin/" + name;
    p.command_line = std::vector<std::string>{name, "-x"};
    p.platform_data = pd;
    return p;
  }
  Result<RuleResult> Run(const std::string& query) {
    Rule r = MakeRule(query);
    r.on = RuleTrigger::kExec;
    return RunRule(*db_, r, params_, RunLimits{});
  }

  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<storage::Database> db_;
  RunParams params_;
};

// The scan path of an exec rule: each process of the snapshot is one exec row with the
// process's start time, its parent from the snapshot, cwd and tty from platform_data.
TEST_F(ExecEventsTest, ScanProcessesAreExecRowsWithTheirParent) {
  auto res =
      Run("SELECT pid, id, event_type, event_time_ms, start_time, parent_name, parent_exe_path, "
          "parent_command_text, parent_start_time, cwd, tty, command_text FROM exec_events ORDER BY pid");
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->rows.size(), 3u);
  EXPECT_EQ(res->rows[1].dump(),
            R"j({"pid":101,"id":null,"event_type":"exec","event_time_ms":2000,"start_time":2000,)j"
            R"j("parent_name":"nginx","parent_exe_path":"/usr/bin/nginx","parent_command_text":"nginx -x",)j"
            R"j("parent_start_time":1000,"cwd":"/srv/www","tty":"pts/3","command_text":"sh -x"})j");
  EXPECT_EQ(res->rows[0]["parent_name"], nullptr);  // pid 1 is not in the scan
  EXPECT_EQ(res->rows[2]["cwd"], nullptr);          // platform_data that is not JSON: no value, no error
  EXPECT_EQ(res->rows[2]["parent_name"], "nginx");
}

// Issue 17's exec columns: from platform_data on the scan path (the loader
// variables' names with null values), as stored on the event path.
TEST_F(ExecEventsTest, BlindSpotColumnsOnTheScanAndTheEventPaths) {
  auto res =
      Run("SELECT pid, args_truncated, args_length, exe_host_mismatch, exe_memfd_seals, env FROM exec_events "
          "ORDER BY pid");
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->rows.size(), 3u);
  EXPECT_EQ(res->rows[1].dump(),
            R"j({"pid":101,"args_truncated":null,"args_length":null,"exe_host_mismatch":1,)j"
            R"j("exe_memfd_seals":15,"env":"{\"LD_PRELOAD\":null}"})j");
  EXPECT_EQ(res->rows[0]["exe_host_mismatch"], nullptr);
  EXPECT_EQ(res->rows[2]["env"], nullptr);
  ASSERT_EQ(*LoadExecBatch(*db_, 1, 2), 1);
  res =
      Run("SELECT id, args_truncated, args_length, exe_host_mismatch, exe_memfd_seals, env FROM exec_events");
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->rows.size(), 1u);
  EXPECT_EQ(res->rows[0].dump(),
            R"j({"id":2,"args_truncated":1,"args_length":9000,"exe_host_mismatch":0,"exe_memfd_seals":0,)j"
            R"j("env":"{\"LD_PRELOAD\":\"/x.so\"}"})j");
}

// A rule's compiled statement outlives the batches it reads: loading one
// must not expire it (a flag pragma such as query_only toggled around the
// TEMP writes did, and every cached rule was compiled again per batch).
TEST_F(ExecEventsTest, LoadingABatchKeepsCompiledRulesValid) {
  Rule r = MakeRule("SELECT pid FROM exec_events WHERE command_text LIKE 'cmd%'");
  r.on = RuleTrigger::kExec;
  auto q = PrepareRule(*db_, r, params_, GuardLimits{});
  ASSERT_TRUE(q.ok()) << q.status().message();
  sqlite3_stmt* st = (*q)->statement().raw();
  for (auto [from, to, expect] : {std::tuple{1, 6, 3}, std::tuple{0, 8, 6}, std::tuple{6, 8, 2}}) {
    ASSERT_EQ(*LoadExecBatch(*db_, from, to), expect);
    (*q)->Rearm(GuardLimits{});
    int rows = 0;
    while (true) {
      auto more = (*q)->Step();
      ASSERT_TRUE(more.ok()) << more.status().message();
      if (!*more) break;
      ++rows;
    }
    EXPECT_EQ(rows, expect) << "batch (" << from << ", " << to << "]";
  }
  EXPECT_EQ(sqlite3_stmt_status(st, SQLITE_STMTSTATUS_REPREPARE, 0), 0);
  // The TEMP tables are writable now, by the loader only: a rule that writes
  // them is still refused by the sandbox.
  Rule w = MakeRule("DELETE FROM exec_events RETURNING pid");
  EXPECT_FALSE(PrepareRule(*db_, w, params_, GuardLimits{}).ok());
  EXPECT_EQ(*LoadExecBatch(*db_, 0, 8), 6);
}

// The event path: exactly the exec events of the id range, every stored column.
TEST_F(ExecEventsTest, BatchHoldsTheExecEventsOfTheIdRangeOnly) {
  auto n = LoadExecBatch(*db_, 1, 6);  // ids 2..6: 3 and 6 are exits
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(*n, 3);
  auto res =
      Run("SELECT id, pid, name, start_time, parent_name, cwd, command_text FROM exec_events ORDER BY id");
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->rows.size(), 3u);
  EXPECT_EQ(res->rows[0].dump(),
            R"j({"id":2,"pid":202,"name":"cmd2","start_time":6002,"parent_name":"sh","cwd":"/tmp",)j"
            R"j("command_text":"cmd -2"})j");
  EXPECT_EQ(res->rows[2]["id"], 5);
  // A batch replaces the previous one; an empty range empties the table.
  ASSERT_EQ(*LoadExecBatch(*db_, 6, 8), 2);
  ASSERT_EQ(*LoadExecBatch(*db_, 8, 8), 0);
  res = Run("SELECT count(*) AS n FROM exec_events");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->rows[0]["n"], 0);
  // Joins with the frozen processes snapshot and the event history still work.
  ASSERT_EQ(*LoadExecBatch(*db_, 0, 8), 6);
  res =
      Run("SELECT e.pid, p.name AS parent FROM exec_events e JOIN processes p ON p.pid = e.ppid "
          "WHERE EXISTS (SELECT 1 FROM process_events h WHERE h.pid = e.pid) ORDER BY e.id LIMIT 1");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->rows[0]["parent"], "sh");
}

TEST(RuleRunnerSchemaOnly, ExecRulesValidateAgainstExecEvents) {
  auto db = OpenSchemaOnlyEventStore();
  ASSERT_TRUE(db.ok());
  Rule r = MakeRule("SELECT pid, start_time, parent_name, cwd, env FROM exec_events WHERE name = 'sh'",
                    {"pid", "start_time"});
  r.on = RuleTrigger::kExec;
  EXPECT_TRUE(ValidateRuleQuery(**db, r).ok()) << ValidateRuleQuery(**db, r).message();
  r.query = "SELECT pid FROM temp.exec_events";
  r.dedup_keys = {"pid"};
  EXPECT_TRUE(ValidateRuleQuery(**db, r).ok());
  r.query = "SELECT pid, no_such_column FROM exec_events";
  EXPECT_EQ(ValidateRuleQuery(**db, r).code(), StatusCode::kInvalidArgument);
  r.query = "SELECT pid FROM exec_events; DELETE FROM exec_events";
  EXPECT_EQ(ValidateRuleQuery(**db, r).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sentinel::detection
