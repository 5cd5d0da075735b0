// The real-time detector over a real event store in a temporary directory,
// with `on: exec` rules run in real query workers (this binary re-executed,
// test_main.cc) and a real control server standing in for procmond.sock.
#include "sentinelagent/realtime_detector.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "sentinel/base/time.h"
#include "sentinel/detection/rule_store.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"
#include "sentinel/testing/wait.h"
#include "sentinelagent/rule_scheduler.h"

namespace sentinel::agent {
namespace {

detection::Rule ExecRule(const std::string& id, const std::string& query) {
  detection::Rule r;
  r.id = id;
  r.name = id;
  r.severity = models::Severity::kHigh;
  r.on = detection::RuleTrigger::kExec;
  r.query = query;
  r.dedup_keys = {"pid", "start_time"};
  r.source_path = "rules/" + id + ".yaml";
  return r;
}

class RealtimeDetectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("events.db");
    auto store = storage::EventStore::Open({path_, storage::OpenMode::kReadWrite, 5000});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    opts_.database_path = path_;
    opts_.procmond_socket = dir_.File("run/procmond.sock");
    opts_.interval_ms = 30'000;
    opts_.dedup_window_ms = 0;  // every evaluation of a matching exec would make an alert
    opts_.chunk_events = 5;
    opts_.reconnect_ms = 50;
  }

  // Writes `n` exec events (every third an exit); names from `name(i)`.
  void WriteExecs(int first_pid, int n, const std::function<std::string(int)>& name, int64_t time_ms = 0) {
    std::vector<models::ProcessEvent> events;
    for (int i = 0; i < n; ++i) {
      models::ProcessEvent e;
      e.event_time_ms = time_ms ? time_ms : NowMs();
      e.event_type = "exec";
      e.pid = first_pid + i;
      e.ppid = 1;
      e.name = name(i);
      e.start_time_ms = 1'000'000 + first_pid + i;
      events.push_back(e);
      models::ProcessEvent x = e;
      x.event_type = "exit";
      if (i % 3 == 0) events.push_back(x);
    }
    ASSERT_TRUE(store_->WriteEvents(events).ok());
  }

  std::unique_ptr<RealtimeDetector> Make(const std::vector<detection::Rule>& rules) {
    auto d = std::make_unique<RealtimeDetector>(
        opts_, [this](const std::vector<alerting::Alert>& a) { hooked_ += static_cast<int>(a.size()); });
    EXPECT_TRUE(d->Open().ok());
    EXPECT_TRUE(detection::SyncRules(store_->db(), rules, NowMs()).ok());
    d->SetRules(rules);
    return d;
  }

  int64_t QueryInt(const std::string& sql) {
    auto v = store_->db().QueryInt(sql);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v->value_or(-1) : -1;
  }

  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<storage::EventStore> store_;
  RealtimeOptions opts_;
  std::atomic<int> hooked_{0};
};

const std::function<std::string(int)> kEveryFourthEvil = [](int i) {
  return i % 4 == 0 ? std::string("evil") : std::string("benign");
};

// Bounded batches, alerts and cursors committed together: a second detector
// (a restart) evaluates only what came after, so no exec makes two alerts.
TEST_F(RealtimeDetectorTest, EveryExecIsEvaluatedExactlyOnceAcrossBatchesAndRestarts) {
  const auto rule = ExecRule("evil", "SELECT pid, start_time, name FROM exec_events WHERE name = 'evil'");
  WriteExecs(1000, 12, kEveryFourthEvil);  // evil: 1000, 1004, 1008
  {
    auto d = Make({rule});
    ASSERT_TRUE(d->CatchUp().ok());
    const RealtimeStats s = d->Stats();
    EXPECT_EQ(s.batches, 4u) << "16 ids in chunks of 5";
    EXPECT_EQ(s.exec_events, 12u);
    EXPECT_EQ(s.alerts, 3u);
    EXPECT_EQ(s.lag_events(), 0);
  }
  EXPECT_EQ(hooked_.load(), 3);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'evil'"), 3);
  EXPECT_EQ(QueryInt("SELECT last_event_id FROM detection_cursors WHERE rule_id = 'evil'"),
            QueryInt("SELECT max(id) FROM process_events"));

  WriteExecs(2000, 8, kEveryFourthEvil);  // evil: 2000, 2004
  auto again = Make({rule});
  ASSERT_TRUE(again->CatchUp().ok());
  EXPECT_EQ(again->Stats().exec_events, 8u);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'evil'"), 5);
  EXPECT_EQ(QueryInt("SELECT count(DISTINCT json_extract(raw_data, '$.pid')) FROM alerts"), 5);
  // Nothing pending: nothing evaluated, nothing committed.
  ASSERT_TRUE(again->CatchUp().ok());
  EXPECT_EQ(again->Stats().exec_events, 8u);
}

// A rule seen for the first time starts one scan interval back, not at the
// beginning of history; a rule added later catches up to the others first.
TEST_F(RealtimeDetectorTest, NewRulesStartOneIntervalBackAndCatchUp) {
  const auto a = ExecRule("rule-a", "SELECT pid, start_time FROM exec_events WHERE name = 'evil'");
  WriteExecs(
      100, 4, [](int) { return "evil"; }, NowMs() - 120'000);  // older than the interval
  WriteExecs(200, 2, [](int) { return "evil"; });
  auto d = Make({a});
  ASSERT_TRUE(d->CatchUp().ok());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'rule-a'"), 2);

  WriteExecs(300, 3, [](int) { return "evil"; });
  const auto b = ExecRule("rule-b", "SELECT pid, start_time FROM exec_events WHERE name = 'evil'");
  d = Make({a, b});
  ASSERT_TRUE(d->CatchUp().ok());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'rule-a'"), 5);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'rule-b'"), 5) << "200.., 300..";
  EXPECT_EQ(QueryInt("SELECT count(DISTINCT last_event_id) FROM detection_cursors"), 1);
  // A disabled rule is not evaluated and keeps its cursor.
  ASSERT_TRUE(detection::SetRuleEnabled(store_->db(), b, false, NowMs()).ok());
  const int64_t b_cursor = QueryInt("SELECT last_event_id FROM detection_cursors WHERE rule_id = 'rule-b'");
  WriteExecs(400, 1, [](int) { return "evil"; });
  ASSERT_TRUE(d->CatchUp().ok());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'rule-a'"), 6);
  EXPECT_EQ(QueryInt("SELECT last_event_id FROM detection_cursors WHERE rule_id = 'rule-b'"), b_cursor);
}

// A rule that fails on a batch does not hold the others back; after
// kMaxRuleFailures failures it moves past that batch (counted).
TEST_F(RealtimeDetectorTest, FailingRuleIsRetriedThenSkipsOnlyItsBatch) {
  const auto good = ExecRule("good", "SELECT pid, start_time FROM exec_events WHERE name = 'evil'");
  auto bad = ExecRule("bad", "SELECT pid, start_time, json_extract(name, '$.x') AS x FROM exec_events");
  WriteExecs(10, 3, [](int) { return "evil"; });  // not JSON: json_extract fails at run time
  auto d = Make({good, bad});
  ASSERT_TRUE(d->CatchUp().ok());
  const RealtimeStats s = d->Stats();
  EXPECT_EQ(s.rule_failures, static_cast<uint64_t>(kMaxRuleFailures));
  EXPECT_EQ(s.skipped_batches, 1u);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'good'"), 3);
  EXPECT_EQ(QueryInt("SELECT count(DISTINCT last_event_id) FROM detection_cursors"), 1);
}

// The rules of a batch go to the worker in one request: a rule stopped at
// its time limit in the middle fails alone, the rules before and after it
// still alert, in the same batch.
TEST_F(RealtimeDetectorTest, ARuleStoppedAtItsLimitInTheMiddleOfABatchFailsAlone) {
  opts_.rule_timeout_ms = 300;
  const auto before = ExecRule("before", "SELECT pid, start_time FROM exec_events WHERE name = 'evil'");
  const auto spin =
      ExecRule("spin",
               "SELECT pid, start_time FROM exec_events WHERE (WITH RECURSIVE r(n) AS (SELECT 1 "
               "UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r) > 0");
  const auto after = ExecRule("after", "SELECT pid, start_time, name FROM exec_events WHERE name = 'evil'");
  WriteExecs(10, 4, kEveryFourthEvil);  // evil: 10
  auto d = Make({before, spin, after});
  ASSERT_TRUE(d->CatchUp().ok());
  EXPECT_EQ(d->Stats().rule_failures, static_cast<uint64_t>(kMaxRuleFailures));
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'before'"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'after'"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'spin'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(DISTINCT last_event_id) FROM detection_cursors"), 1);
}

// Wake-up: a notice on the subscription is evaluated within the batch
// delay; without procmond the detector retries and still evaluates.
TEST_F(RealtimeDetectorTest, NoticeOnTheSubscriptionWakesTheDetector) {
  ipc::ServerOptions so;
  so.socket_dir = dir_.File("run");
  so.socket_name = ipc::kProcmondSocket;
  so.component = "procmond";
  so.subscribe_command = ipc::kSubscribeEvents;
  auto server = ipc::ControlServer::Listen(so, {});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE((*server)->Start().ok());
  const auto rule = ExecRule("evil", "SELECT pid, start_time FROM exec_events WHERE name = 'evil'");
  auto d = Make({rule});  // connected, it waits for notices only (no timer)
  ASSERT_TRUE(d->Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return d->Stats().connected; }, std::chrono::seconds(10)));
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*server)->stats().subscribers == 1; }, std::chrono::seconds(10)));
  WriteExecs(500, 2, [](int) { return "evil"; });
  (*server)->Publish({{"event", "events_written"}, {"last_id", 4}});
  ASSERT_TRUE(testing::WaitFor([&] { return hooked_.load() == 2; }, std::chrono::seconds(10)));
  EXPECT_GE(d->Stats().notices, 1u);

  // procmond goes away: the detector notices, and still evaluates what is written.
  (*server)->Stop();
  ASSERT_TRUE(testing::WaitFor([&] { return !d->Stats().connected; }, std::chrono::seconds(10)));
  WriteExecs(600, 1, [](int) { return "evil"; });
  ASSERT_TRUE(testing::WaitFor([&] { return hooked_.load() == 3; }, std::chrono::seconds(10)));
  d->Stop();
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts WHERE rule_id = 'evil'"), 3);
}

// One rule, both paths: the scan cycle evaluates the exec rule over the
// scan's processes, the detector over the exec event of the same process;
// with dedup_keys [pid, start_time] that is one alert.
TEST_F(RealtimeDetectorTest, ScanAndExecPathsOfOneProcessMakeOneAlert) {
  std::filesystem::create_directories(dir_.File("rules"));
  testing::WriteFile(
      dir_.File("rules/demo.yaml"),
      "id: demo\nname: demo\nseverity: high\non: exec\ndedup_keys: [pid, start_time]\n"
      "query: |\n  SELECT pid, start_time, exe_path FROM exec_events WHERE exe_path GLOB '/tmp/*'\n");
  config::Config cfg;
  cfg.database.path = path_;
  cfg.detection.builtin_rules = false;
  cfg.detection.rules_dirs = {dir_.File("rules")};
  RuleScheduler scheduler(cfg, store_->db(), 1);
  ASSERT_TRUE(scheduler.LoadRules(cfg).ok());
  ASSERT_EQ(scheduler.rules().size(), 1u);

  models::ScanRecord scan;
  scan.started_at_ms = NowMs();
  scan.completed_at_ms = scan.started_at_ms + 1;
  models::ProcessRecord p;
  p.pid = 4321;
  p.ppid = 1;
  p.name = "demo";
  p.exe_path = "/tmp/demo";
  p.start_time_ms = 1'700'000'000'123;
  scan.processes.push_back(p);
  ASSERT_TRUE(store_->WriteScan(scan).ok());
  models::ProcessEvent e;
  e.event_time_ms = NowMs();
  e.event_type = "exec";
  e.pid = 4321;
  e.ppid = 1;
  e.name = "demo";
  e.exe_path = "/tmp/demo";
  e.start_time_ms = 1'700'000'000'123;
  ASSERT_TRUE(store_->WriteEvents({e}).ok());

  opts_.dedup_window_ms = 3'600'000;
  auto d = Make(scheduler.rules());
  auto cycle = scheduler.RunCycle();
  ASSERT_TRUE(cycle.ok()) << cycle.status().ToString();
  ASSERT_EQ(cycle->alerts.size(), 1u) << "the scan path of the exec rule";
  ASSERT_TRUE(d->CatchUp().ok());
  EXPECT_EQ(d->Stats().exec_events, 1u);
  EXPECT_EQ(d->Stats().alerts, 0u);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM alerts"), 1);
}

}  // namespace
}  // namespace sentinel::agent
