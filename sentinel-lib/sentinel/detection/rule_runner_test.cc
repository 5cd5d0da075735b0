#include "sentinel/detection/rule_runner.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace sentinel::detection
