#include "sentinel/detection/sql_guard.h"

#include <gtest/gtest.h>

#include "sentinel/base/features.h"
#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::detection {
namespace {

class SqlGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("e.db");
    auto rw = storage::EventStore::Open({path_, storage::OpenMode::kReadWrite, 1000});
    ASSERT_TRUE(rw.ok());
    models::ScanRecord scan;
    scan.started_at_ms = 1000;
    scan.completed_at_ms = 1001;
    models::ProcessRecord p;
    p.pid = 42;
    p.name = "bash";
    p.exe_path = "/usr/bin/bash";
    scan.processes.push_back(p);
    ASSERT_TRUE((*rw)->WriteScan(scan).ok());
    rw->reset();
    auto ro = storage::OpenStore(storage::DatabaseKind::kEvents, {path_, storage::OpenMode::kReadOnly, 1000});
    ASSERT_TRUE(ro.ok());
    db_ = std::move(*ro);
  }

  Status Check(const std::string& sql) {
    auto q = GuardedQuery::Prepare(*db_, sql, GuardLimits{});
    return q.status();
  }

  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<storage::Database> db_;
};

TEST_F(SqlGuardTest, AcceptsReadsOfVisibleTables) {
  for (const char* sql : {
           "SELECT pid, name FROM processes",
           "select * from process_snapshots where scan_id = 1;",
           "WITH r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 5) SELECT n FROM r",
           "SELECT count(*), max(pid) FROM processes GROUP BY name",
           "SELECT json_extract(platform_data, '$.threads') FROM processes",
           "SELECT value FROM processes, json_each(processes.command_line)",
           "SELECT * FROM scan_metadata -- trailing comment",
           "SELECT * FROM process_events; ;  /* and another */",
           "SELECT lower(name) LIKE '%sh' FROM processes",
           "SELECT count(*) FROM processes",
           "SELECT count(*) FROM process_snapshots",
           "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 3) SELECT count(*) FROM r",
       }) {
    Status s = Check(sql);
    EXPECT_TRUE(s.ok()) << sql << " -> " << s.message();
  }
  auto q = GuardedQuery::Prepare(*db_, "SELECT name FROM processes WHERE pid = 42", GuardLimits{});
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(*(*q)->Step());
  EXPECT_EQ((*q)->statement().ColumnText(0), "bash");
}

TEST_F(SqlGuardTest, RejectsHostileQueriesNamingTheConstruct) {
  struct Case {
    const char* sql;
    const char* expect;
  };
  const Case cases[] = {
      {"SELECT * FROM sqlite_master", "sqlite_master"},
      {"SELECT * FROM sqlite_schema", "sqlite_"},
      {"SELECT count(*) FROM sqlite_master", "sqlite_master"},
      {"SELECT count(*) FROM alerts", "alerts"},
      {"SELECT * FROM process_instances", "process_instances"},
      {"SELECT * FROM alerts", "alerts"},
      {"SELECT * FROM pragma_table_info('alerts')", "sqlite_master"},
      {"PRAGMA table_info(alerts)", "PRAGMA"},
      {"PRAGMA writable_schema=1", "PRAGMA"},
      {"ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"},
      {"SELECT load_extension('/tmp/evil.so')", "load_extension"},
      {"SELECT readfile('/etc/shadow')", "readfile"},
      {"SELECT writefile('/tmp/x', 'y')", "writefile"},
      {"SELECT randomblob(1000000000)", "randomblob"},
      {"SELECT zeroblob(1000000000)", "zeroblob"},
      {"SELECT sqlite_version()", "sqlite_version"},
      {"DELETE FROM process_events", "writing"},
      {"INSERT INTO process_events(event_time_ms,event_type,pid) VALUES(1,'exec',1)", "writing"},
      {"UPDATE process_events SET pid = 1", "writing"},
      {"DROP VIEW processes", "DROP"},
      {"DROP TABLE process_events", "DROP"},
      {"CREATE TABLE t(a)", "CREATE"},
      {"BEGIN", "transaction"},
      {"VACUUM", ""},
      {"SELECT 1; SELECT 2", "more than one statement"},
      {"SELECT 1; DELETE FROM process_events", "more than one statement"},
      {"EXPLAIN SELECT 1", "EXPLAIN"},
      {"", "empty"},
      {"-- only a comment", "no statement"},
      {"SELEC pid FROM processes", "syntax error"},
  };
  for (const auto& c : cases) {
    Status s = Check(c.sql);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.sql;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << c.sql << " -> " << s.message();
  }
}

TEST_F(SqlGuardTest, RunawayRecursiveCteIsStopped) {
  GuardLimits limits;
  limits.timeout_ms = 200;
  auto q = GuardedQuery::Prepare(
      *db_, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT count(*) FROM r", limits);
  ASSERT_TRUE(q.ok()) << q.status().message();
  auto r = (*q)->Step();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);

  GuardLimits steps;
  steps.max_vm_steps = 100'000;
  auto q2 = GuardedQuery::Prepare(
      *db_, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT count(*) FROM r", steps);
  ASSERT_TRUE(q2.ok());
  auto r2 = (*q2)->Step();
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), StatusCode::kResourceExhausted);
}

TEST_F(SqlGuardTest, MemoryBombIsCapped) {
  GuardLimits limits;
  limits.max_length = 1'000'000;
  // Doubling a string passes the cap after 20 rounds.
  auto q = GuardedQuery::Prepare(*db_,
                                 "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r"
                                 " WHERE length(s) < 100000000) SELECT max(length(s)) FROM r",
                                 limits);
  ASSERT_TRUE(q.ok());
  auto r = (*q)->Step();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("too big"), std::string::npos) << r.status().message();
}

TEST_F(SqlGuardTest, MemoryCeilingStopsAMemoryBomb) {
  // Values under the length cap, but together more than the ceiling:
  // 3 MB, 6 MB and 9 MB strings alive at once against a 12 MB ceiling
  // (without the ceiling this query succeeds: 9 MB is under the length cap).
  const int64_t previous = SetMemoryCeiling(int64_t{12} << 20);
  GuardLimits limits;
  auto q = GuardedQuery::Prepare(
      *db_, "SELECT length(a || a || a) FROM (SELECT printf('%.3000000c', 'x') AS a)", limits);
  ASSERT_TRUE(q.ok()) << q.status().message();
  auto r = (*q)->Step();
  SetMemoryCeiling(previous);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().message();
  EXPECT_NE(r.status().message().find("memory"), std::string::npos) << r.status().message();
  // The connection is usable again afterwards.
  auto again = GuardedQuery::Prepare(*db_, "SELECT count(*) FROM processes", limits);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*(*again)->Step());
}

}  // namespace
}  // namespace sentinel::detection

namespace sentinel::detection {
namespace {

// Internal storage tables are refused in every form, including the
// column-less reads SQLite reports without a schema name.
TEST_F(SqlGuardTest, RefusesInternalTablesEvenWithoutColumns) {
  for (const char* sql : {
           "SELECT count(*) FROM process_instances",
           "SELECT 1 FROM process_instances LIMIT 1",
           "SELECT count(*) FROM process_states",
           "SELECT count(*) FROM detection_rules",
           "SELECT count(*) FROM alerts",
           "SELECT count(*) FROM processes, process_instances",
           "SELECT count(*) FROM main.process_instances",
       }) {
    Status s = Check(sql);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << sql;
    EXPECT_NE(s.message().find("is not readable"), std::string::npos) << sql << " -> " << s.message();
  }
}

// A compiled statement re-armed runs again from the start with fresh limits
// (the query worker reuses rule statements across exec batches).
TEST_F(SqlGuardTest, RearmedStatementRunsAgainWithFreshLimits) {
  GuardLimits tight;
  tight.max_vm_steps = 1'000'000;
  auto q = GuardedQuery::Prepare(*db_, "SELECT pid FROM processes ORDER BY pid", tight);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  for (int run = 0; run < 3; ++run) {
    int rows = 0;
    while (true) {
      auto more = (*q)->Step();
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      if (!*more) break;
      ++rows;
    }
    EXPECT_GT(rows, 0) << "run " << run;
    (*q)->Rearm(tight);
  }
  // A budget exhausted once is not carried over: the re-armed statement has its own.
  auto spin = GuardedQuery::Prepare(
      *db_, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", tight);
  ASSERT_TRUE(spin.ok());
  EXPECT_EQ((*spin)->Step().status().code(), StatusCode::kResourceExhausted);
  GuardLimits roomy;
  roomy.max_vm_steps = 0;
  roomy.timeout_ms = 50;
  (*spin)->Rearm(roomy);
  EXPECT_EQ((*spin)->Step().status().code(), StatusCode::kDeadlineExceeded);
}

// With the frozen snapshot of a detection cycle, `processes` and
// temp.processes read it; main.processes (the live view) is refused.
TEST_F(SqlGuardTest, MainProcessesCannotBypassTheRuleSnapshot) {
  ASSERT_TRUE(Check("SELECT pid FROM main.processes").ok());  // no snapshot: the live view
  ASSERT_TRUE(db_->Exec("PRAGMA query_only=0").ok());
  ASSERT_TRUE(db_->Exec("CREATE TEMP TABLE processes AS SELECT * FROM main.process_snapshots").ok());
  for (const char* sql :
       {"SELECT pid FROM main.processes", "SELECT count(*) FROM main.processes",
        "SELECT 1 FROM main.processes", "SELECT p.pid FROM processes p JOIN main.processes m"}) {
    Status s = Check(sql);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << sql;
    EXPECT_NE(s.message().find("main.processes"), std::string::npos) << sql << " -> " << s.message();
  }
  for (const char* sql : {"SELECT pid FROM processes", "SELECT count(*) FROM temp.processes",
                          "SELECT pid FROM temp.processes", "SELECT count(*) FROM process_snapshots"}) {
    Status s = Check(sql);
    EXPECT_TRUE(s.ok()) << sql << " -> " << s.message();
  }
}

// regexp() is the sigma feature's (RE2): there it runs; in a build without it a query that calls
// it is refused when prepared, naming the feature's option rather than "no such function".
TEST_F(SqlGuardTest, RegexpIsThereOrRefusedNamingTheSigmaOption) {
  for (const std::string sql :
       {"SELECT regexp('^ba', name) FROM processes", "SELECT 1 FROM processes WHERE name REGEXP 'sh$'"}) {
    SCOPED_TRACE(sql);
    Status s = Check(sql);
    if (Built(Feature::kSigma)) {
      EXPECT_TRUE(s.ok()) << s.ToString();
    } else {
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(s.message().find("regexp()"), std::string::npos) << s.message();
      EXPECT_NE(s.message().find("-DSENTINEL_SIGMA=ON"), std::string::npos) << s.message();
    }
  }
  // Any other unknown function keeps SQLite's own words.
  EXPECT_NE(Check("SELECT nosuchfn(name) FROM processes").message().find("no such function: nosuchfn"),
            std::string::npos);
}

}  // namespace
}  // namespace sentinel::detection
