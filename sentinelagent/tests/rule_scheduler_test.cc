// The detection cycle over a real event store in a temporary directory, with
// rules run in real query workers (this binary re-executed, test_main.cc).
#include "sentinelagent/rule_scheduler.h"

#include <gtest/gtest.h>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::agent {
namespace {

class RuleSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.database.path = dir_.File("events.db");
    cfg_.detection.builtin_rules = false;
    cfg_.detection.rules_dirs = {dir_.File("rules")};
    cfg_.detection.rule_timeout_secs = 30;
    std::filesystem::create_directories(dir_.File("rules"));
    auto db = storage::OpenStore(storage::DatabaseKind::kEvents,
                                 {cfg_.database.path, storage::OpenMode::kReadWrite, 5000});
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }

  void WriteRule(const std::string& id, const std::string& query) {
    testing::WriteFile(dir_.File("rules/" + id + ".yaml"),
                       "id: " + id + "\nname: " + id + "\nseverity: high\nquery: |\n  " + query + "\n");
  }

  int64_t QueryInt(const std::string& sql) {
    auto v = db_->QueryInt(sql);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v->value_or(-1) : -1;
  }

  static const RuleRunReport* Run(const CycleReport& r, const std::string& id) {
    for (const auto& run : r.runs) {
      if (run.rule_id == id) return &run;
    }
    return nullptr;
  }

  testing::TempDir dir_;
  config::Config cfg_;
  std::unique_ptr<storage::Database> db_;
};

TEST_F(RuleSchedulerTest, FindingsBecomeOneDeduplicatedAlertAndEveryRunIsRecorded) {
  WriteRule("finds", "SELECT 4242 AS pid, 'implant' AS name");
  WriteRule("quiet", "SELECT 1 AS pid WHERE 0");
  RuleScheduler scheduler(cfg_, *db_, 2);
  int committed = 0;
  scheduler.SetAlertsCommittedHook([&] { ++committed; });
  ASSERT_TRUE(scheduler.LoadRules(cfg_).ok());
  ASSERT_EQ(scheduler.rules().size(), 2u);

  auto first = scheduler.RunCycle();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->stopped);
  EXPECT_EQ(first->failed, 0);
  ASSERT_EQ(first->runs.size(), 2u);
  ASSERT_NE(Run(*first, "finds"), nullptr);
  EXPECT_EQ(Run(*first, "finds")->findings, 1);
  EXPECT_EQ(Run(*first, "finds")->alerts, 1);
  EXPECT_EQ(Run(*first, "quiet")->findings, 0);
  ASSERT_EQ(first->alerts.size(), 1u);
  EXPECT_EQ(first->alerts[0].rule_id, "finds");
  EXPECT_GT(first->alerts[0].id, 0);
  EXPECT_EQ(committed, 1);
  EXPECT_EQ(first->record_writes_failed, 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'finds'"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM detection_rules WHERE last_run_ms IS NOT NULL"), 2);
  EXPECT_EQ(scheduler.CycleStartedMs(), 0) << "idle after the cycle";

  // The same finding again, inside the dedup window: suppressed.
  auto second = scheduler.RunCycle();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->alerts.empty());
  EXPECT_EQ(Run(*second, "finds")->suppressed, 1);
  EXPECT_EQ(committed, 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts"), 1);
}

TEST_F(RuleSchedulerTest, ARuleOverItsTimeoutFailsAndTheOthersStillAlert) {
  cfg_.detection.rule_timeout_secs = 1;
  WriteRule("spin",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) AS n FROM r");
  WriteRule("finds", "SELECT 4242 AS pid");
  RuleScheduler scheduler(cfg_, *db_, 1);  // one worker: the next rule needs a fresh one
  ASSERT_TRUE(scheduler.LoadRules(cfg_).ok());
  auto report = scheduler.RunCycle();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->failed, 1);
  ASSERT_NE(Run(*report, "spin"), nullptr);
  EXPECT_EQ(Run(*report, "spin")->status.code(), StatusCode::kDeadlineExceeded)
      << Run(*report, "spin")->status.ToString();
  ASSERT_NE(Run(*report, "finds"), nullptr);
  EXPECT_TRUE(Run(*report, "finds")->status.ok());
  EXPECT_EQ(report->alerts.size(), 1u);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM detection_rules WHERE id = 'spin' AND last_error != ''"), 1);
}

TEST_F(RuleSchedulerTest, AStopRequestEndsTheCycleWithoutRecordingUnfinishedRules) {
  WriteRule("spin",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) AS n FROM r");
  RuleScheduler scheduler(cfg_, *db_, 1);
  ASSERT_TRUE(scheduler.LoadRules(cfg_).ok());
  scheduler.SetStopCheck([] { return true; });
  auto report = scheduler.RunCycle();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->stopped);
  EXPECT_TRUE(report->runs.empty());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM detection_rules WHERE last_run_ms IS NOT NULL"), 0);
}

TEST_F(RuleSchedulerTest, ARejectedRuleIsAuditedAndSkipped) {
  WriteRule("bad", "SELECT * FROM no_such_table");
  WriteRule("good", "SELECT 1 AS pid WHERE 0");
  RuleScheduler scheduler(cfg_, *db_, 1);
  std::vector<std::string> audited;
  scheduler.SetAuditHook([&](const std::string& action, const std::string& rule, const std::string&) {
    audited.push_back(action + " " + rule);
  });
  ASSERT_TRUE(scheduler.LoadRules(cfg_).ok());
  ASSERT_EQ(scheduler.rules().size(), 1u);
  EXPECT_EQ(scheduler.rules()[0].id, "good");
  EXPECT_NE(std::find(audited.begin(), audited.end(), "rule_rejected bad"), audited.end());
  EXPECT_NE(std::find(audited.begin(), audited.end(), "rule_loaded good"), audited.end());
}

models::ProcessRecord Proc(int64_t pid, int64_t ppid, const std::string& exe, int64_t uid = 1000) {
  models::ProcessRecord p;
  p.pid = pid;
  p.ppid = ppid;
  p.name = exe.substr(exe.rfind('/') + 1);
  p.exe_path = exe;
  p.command_line = std::vector<std::string>{p.name};
  p.start_time_ms = 1'700'000'000'000 + pid;
  p.user_id = uid;
  p.effective_uid = uid;
  return p;
}

// Exec rules on scan cycles judge only what changed since the scan they all
// judged last (decision 71): new instances, changed states, children of a
// new instance; every process again after the rules change or a rule fails.
TEST_F(RuleSchedulerTest, ExecRulesJudgeOnlyProcessesChangedSinceTheLastScanTheyJudged) {
  auto writer = storage::EventStore::Open({cfg_.database.path, storage::OpenMode::kReadWrite, 5000});
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  auto write_scan = [&](const std::vector<models::ProcessRecord>& procs) {
    static int64_t t = 1'700'000'100'000;
    models::ScanRecord scan;
    scan.started_at_ms = t;
    scan.completed_at_ms = t + 10;
    t += 30'000;
    scan.processes = procs;
    ASSERT_TRUE((*writer)->WriteScan(scan).ok());
  };
  auto write_rule = [&](const std::string& query) {
    testing::WriteFile(dir_.File("rules/every-exec.yaml"),
                       "id: every-exec\nname: every exec row\nseverity: low\non: exec\n"
                       "dedup_keys: [pid, start_time]\nquery: |\n  " +
                           query + "\n");
  };
  auto judged = [&](RuleScheduler& scheduler) -> int64_t {
    auto r = scheduler.RunCycle();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || Run(*r, "every-exec") == nullptr) return -1;
    EXPECT_TRUE(Run(*r, "every-exec")->status.ok()) << Run(*r, "every-exec")->status.ToString();
    return Run(*r, "every-exec")->findings;
  };
  write_rule("SELECT pid, start_time FROM exec_events");
  RuleScheduler scheduler(cfg_, *db_, 2);
  ASSERT_TRUE(scheduler.LoadRules(cfg_).ok());

  const std::vector<models::ProcessRecord> first = {Proc(100, 1, "/usr/bin/a"), Proc(101, 1, "/usr/bin/b"),
                                                    Proc(102, 100, "/usr/bin/c"), Proc(103, 1, "/usr/bin/d"),
                                                    Proc(104, 103, "/usr/bin/e")};
  write_scan(first);
  EXPECT_EQ(judged(scheduler), 5) << "the first cycle judges every process";
  EXPECT_EQ(judged(scheduler), 0) << "no new scan: nothing new to judge";

  // 101 changes user (a state row), 103 executes another image (a new
  // instance, and so its child 104's parent changes), 105 is new; 100 and
  // 102 are as they were.
  std::vector<models::ProcessRecord> second = first;
  second[1].user_id = 0;
  second[3].exe_path = "/tmp/implant";
  second[3].name = "implant";
  second.push_back(Proc(105, 1, "/usr/bin/f"));
  write_scan(second);
  EXPECT_EQ(judged(scheduler), 4);
  write_scan(second);
  EXPECT_EQ(judged(scheduler), 0) << "an identical scan";

  // Another query: every process again.
  write_rule("SELECT pid, start_time, name FROM exec_events");
  ASSERT_TRUE(scheduler.LoadRules(cfg_).ok());
  EXPECT_EQ(judged(scheduler), 6);
  EXPECT_EQ(judged(scheduler), 0);

  // A cycle whose exec rule fails (it spins past its timeout over a scan
  // of more than 6 processes): the next cycle judges every process again,
  // although the rule and the processes are those of the last judged scan.
  cfg_.detection.rule_timeout_secs = 1;
  write_rule(
      "SELECT pid, start_time FROM exec_events WHERE CASE WHEN (SELECT count(*) FROM processes) > 6 "
      "THEN (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r) "
      "ELSE 1 END");
  ASSERT_TRUE(scheduler.LoadRules(cfg_).ok());
  EXPECT_EQ(judged(scheduler), 6);
  EXPECT_EQ(judged(scheduler), 0);
  std::vector<models::ProcessRecord> third = second;
  third.push_back(Proc(106, 1, "/usr/bin/g"));
  write_scan(third);
  auto failed = scheduler.RunCycle();
  ASSERT_TRUE(failed.ok());
  ASSERT_NE(Run(*failed, "every-exec"), nullptr);
  EXPECT_FALSE(Run(*failed, "every-exec")->status.ok());
  write_scan(second);  // 106 is gone; the rest as at the last judged scan
  EXPECT_EQ(judged(scheduler), 6);
}

}  // namespace
}  // namespace sentinel::agent
