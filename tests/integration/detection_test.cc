// Detection end to end with the real binaries (SPEC §6, §9): procmond scans
// a host where a test process runs from a deleted binary, sentinelagent
// turns the finding into one deduplicated alert, and sentinelcli lists,
// shows, tests, enables, disables, imports and exports rules. Hostile rule
// files are refused and a runaway rule is stopped without holding up the
// others.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;

class DetectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = sb_.File("events.db");
    rules_dir_ = sb_.File("rules.d");
    ::mkdir(rules_dir_.c_str(), 0755);  // readable by the agent's user
  }
  std::vector<std::string> Env(std::vector<std::string> extra = {}) const {
    return DetectionEnv(sb_, db_, rules_dir_, std::move(extra));
  }
  RunResult Scan() const { return sb_.Procmond({"--once"}, Env()); }
  RunResult AgentOnce(std::vector<std::string> env = {}) const {
    return sb_.Agent({"--once", "--no-collector"}, Env(std::move(env)));
  }
  RunResult Cli(const std::vector<std::string>& args) const { return sb_.Cli(args, Env()); }
  int64_t Alerts(const std::string& where = "1") const {
    return QueryInt(db_, "SELECT count(*) FROM alerts WHERE " + where).value_or(-1);
  }

  Sandbox sb_;
  std::string db_;
  std::string rules_dir_;
};

TEST_F(DetectionTest, DeletedBinaryRaisesOneDeduplicatedAlert) {
  DeletedBinary implant(sb_.File("implant"));
  ASSERT_EQ(Scan().exit_code, 0);
  RunResult first = AgentOnce();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string pid = std::to_string(implant.pid());
  // The console sink prints the alert on stdout.
  EXPECT_TRUE(Contains(first.out, "ALERT HIGH proc-deleted-executable")) << first.out;
  EXPECT_TRUE(Contains(first.out, "pid " + pid + " implant")) << first.out;
  const std::string mine =
      "rule_id = 'proc-deleted-executable' AND affected_processes LIKE '%\"pid\":" + pid + ",%'";
  EXPECT_EQ(Alerts(mine), 1);

  // Same finding again (next scan, next cycle): deduplicated.
  ASSERT_EQ(Scan().exit_code, 0);
  RunResult second = AgentOnce();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(Alerts(mine), 1);
  EXPECT_FALSE(Contains(second.out, "pid " + pid + " implant")) << second.out;

  // The operator's view of it.
  RunResult list = Cli({"alerts", "list", "--json", "--rule", "proc-deleted-executable"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json alerts = json::parse(list.out);
  ASSERT_TRUE(alerts.is_array());
  int64_t id = -1;
  for (const auto& a : alerts) {
    json procs = json::parse(a["affected_processes"].get<std::string>());
    if (procs.size() == 1 && procs[0]["pid"] == implant.pid()) id = a["id"];
  }
  ASSERT_GT(id, 0) << list.out;
  RunResult show = Cli({"alerts", "show", std::to_string(id), "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  json alert = json::parse(show.out);
  EXPECT_EQ(alert["rule_id"], "proc-deleted-executable");
  EXPECT_EQ(alert["severity"], "high");
  EXPECT_EQ(alert["title"], "Process running from a deleted executable");
  EXPECT_EQ(alert["process_count"], 1);
  EXPECT_EQ(alert["rule_version"], 1);
  EXPECT_EQ(alert["status"], "open");
  EXPECT_TRUE(alert["scan_id"].is_number());
  EXPECT_EQ(alert["affected_processes"][0]["name"], "implant");
  EXPECT_EQ(alert["affected_processes"][0]["exe_path"], sb_.File("implant") + " (deleted)");
  EXPECT_EQ(alert["raw_data"]["pid"], implant.pid());
  EXPECT_EQ(alert["dedup_key"].get<std::string>().size(), 64u);

  // Filters: --severity is a minimum.
  RunResult critical =
      Cli({"alerts", "list", "--json", "--severity", "critical", "--rule", "proc-deleted-executable"});
  ASSERT_EQ(critical.exit_code, 0);
  EXPECT_EQ(json::parse(critical.out).size(), 0u);
  RunResult high = Cli({"alerts", "list", "--json", "--severity", "HIGH", "--since", "1h"});
  ASSERT_EQ(high.exit_code, 0);
  EXPECT_GE(json::parse(high.out).size(), 1u);
}

TEST_F(DetectionTest, RulesTestPrintsFindingsWithoutCreatingAlerts) {
  DeletedBinary implant(sb_.File("implant"));
  ASSERT_EQ(Scan().exit_code, 0);
  // A read-only reader leaves SQLite's -wal/-shm side files; take the
  // snapshot after one so only real changes count.
  ASSERT_EQ(Cli({"alerts", "list"}).exit_code, 0);
  DbSnapshot before = SnapshotDb(db_);
  RunResult r = Cli({"rules", "test", "proc-deleted-executable", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool found = false;
  for (const auto& row : json::parse(r.out)) found = found || row["pid"] == implant.pid();
  EXPECT_TRUE(found) << r.out;
  EXPECT_TRUE(Contains(r.err, "no alert was created")) << r.err;
  EXPECT_EQ(SnapshotDb(db_), before);
  EXPECT_EQ(Alerts(), 0);

  // A rule file can be tested before it is installed.
  const std::string file = sb_.File("mine.yaml");
  testing::WriteFile(file,
                     "id: my-rule\nname: Mine\nseverity: low\ndedup_keys: [pid]\nquery: |\n"
                     "  SELECT pid, name, exe_path FROM processes WHERE pid = " +
                         std::to_string(implant.pid()) + "\n");
  RunResult t = Cli({"rules", "test", file, "--format", "csv"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_TRUE(Contains(t.out, std::to_string(implant.pid()) + ",implant,")) << t.out;
}

// `rules test ID --since T` evaluates an on: exec rule over the stored exec
// events since T (as the real-time detector would), creating no alert; a scan
// rule or a bad time is a usage error.
TEST_F(DetectionTest, RulesTestSinceEvaluatesAnExecRuleOverStoredEvents) {
  ASSERT_EQ(Scan().exit_code, 0);
  const int64_t now = static_cast<int64_t>(::time(nullptr)) * 1000;
  const std::string insert =
      "INSERT INTO process_events(event_time_ms, event_type, pid, ppid, name, exe_path, command_line, "
      "start_time) "
      "VALUES ";
  ExecSql(db_, insert + "(" + std::to_string(now - 7'200'000) + ", 'exec', 3000001, 1, 'old', '/tmp/old', " +
                   "'[\"/tmp/old\"]', " + std::to_string(now - 7'200'000) + ")");
  ExecSql(db_, insert + "(" + std::to_string(now - 60'000) + ", 'exec', 3000002, 1, 'new', '/tmp/new', " +
                   "'[\"/tmp/new\"]', " + std::to_string(now - 60'000) + ")");
  ExecSql(db_, insert + "(" + std::to_string(now - 30'000) +
                   ", 'exit', 3000002, 1, 'new', '/tmp/new', NULL, " + "NULL)");
  RunResult r = Cli({"rules", "test", "proc-exec-from-tmp", "--since", "1h", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<int64_t> pids;
  for (const auto& row : json::parse(r.out)) {
    pids.insert(row["pid"].get<int64_t>());
    if (row["pid"] == 3000002) {
      EXPECT_EQ(row["source"], "event") << row;
    }
  }
  EXPECT_TRUE(pids.count(3000002)) << r.out;
  EXPECT_FALSE(pids.count(3000001)) << "stored before --since: " << r.out;
  EXPECT_TRUE(Contains(r.err, "over 1 exec event(s) since 1h; no alert was created")) << r.err;
  RunResult all = Cli({"rules", "test", "proc-exec-from-tmp", "--since", "3h", "--json"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_TRUE(Contains(all.out, "3000001")) << all.out;
  EXPECT_EQ(Alerts(), 0);

  RunResult scan_rule = Cli({"rules", "test", "proc-deleted-executable", "--since", "1h"});
  EXPECT_EQ(scan_rule.exit_code, 2);
  EXPECT_TRUE(Contains(scan_rule.err, "--since is for on: exec rules")) << scan_rule.err;
  RunResult bad_time = Cli({"rules", "test", "proc-exec-from-tmp", "--since", "yesterday-ish"});
  EXPECT_EQ(bad_time.exit_code, 2);
  EXPECT_TRUE(Contains(bad_time.err, "--since")) << bad_time.err;
}

// `sentinelagent --once` also evaluates the pending exec events: an exec
// already gone by the scan is alerted once, from its event; a second run
// evaluates nothing twice (the rule's cursor is stored).
TEST_F(DetectionTest, OnceEvaluatesPendingExecEventsOnce) {
  ASSERT_EQ(Scan().exit_code, 0);
  const int64_t now = static_cast<int64_t>(::time(nullptr)) * 1000;
  ExecSql(db_,
          "INSERT INTO process_events(event_time_ms, event_type, pid, ppid, name, exe_path, command_line, "
          "start_time) VALUES (" +
              std::to_string(now) + ", 'exec', 3000003, 1, 'gone', '/tmp/gone', '[\"/tmp/gone\"]', " +
              std::to_string(now) + ")");
  const std::string mine = "rule_id = 'proc-exec-from-tmp' AND json_extract(raw_data, '$.pid') = 3000003";
  RunResult first = AgentOnce({"SENTINELD_ALERTING__DEDUP_WINDOW_SECS=0"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(Alerts(mine), 1);
  EXPECT_EQ(Alerts(mine + " AND json_extract(raw_data, '$.source') = 'event'"), 1);
  EXPECT_EQ(QueryInt(db_, "SELECT last_event_id FROM detection_cursors WHERE rule_id = 'proc-exec-from-tmp'"),
            QueryInt(db_, "SELECT max(id) FROM process_events"));
  RunResult second = AgentOnce({"SENTINELD_ALERTING__DEDUP_WINDOW_SECS=0"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(Alerts(mine), 1) << "dedup is off: a second evaluation would be a second alert";
}

TEST_F(DetectionTest, HostileRuleFilesAreRejectedAndDetectionGoesOn) {
  struct Bad {
    const char* file;
    const char* query;
    const char* expect;
  };
  const Bad bad[] = {
      {"schema.yaml", "SELECT name FROM sqlite_master", "sqlite_master"},
      {"attach.yaml", "ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"},
      {"write.yaml", "DELETE FROM process_events", "writing"},
      {"pragma.yaml", "PRAGMA writable_schema = 1", "PRAGMA"},
      {"two.yaml", "SELECT 1; DELETE FROM alerts", "more than one statement"},
      {"ledger.yaml", "SELECT * FROM alerts", "alerts"},
      {"file.yaml", "SELECT readfile('/etc/shadow') AS pid", "readfile"},
  };
  for (const auto& b : bad) {
    testing::WriteFile(rules_dir_ + "/" + b.file, std::string("id: hostile-") + b.file[0] + b.file[1] +
                                                      "\nname: x\nseverity: low\nquery: \"" + b.query +
                                                      "\"\n");
  }
  testing::WriteFile(rules_dir_ + "/typo.yaml", "id: typo\nname: x\nseverity: urgent\nquery: SELECT 1\n");
  for (const auto& b : bad) {
    RunResult v = Cli({"rules", "validate", rules_dir_ + "/" + b.file});
    EXPECT_EQ(v.exit_code, 2) << b.file;
    EXPECT_TRUE(Contains(v.err, b.file)) << v.err;
    EXPECT_TRUE(Contains(v.err, b.expect)) << b.file << ": " << v.err;
  }
  RunResult typo = Cli({"rules", "validate", rules_dir_ + "/typo.yaml"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_TRUE(Contains(typo.err, "typo.yaml: severity: expected one of low, medium, high, critical"))
      << typo.err;

  DeletedBinary implant(sb_.File("implant"));
  ASSERT_EQ(Scan().exit_code, 0);
  const int64_t scans = QueryInt(db_, "SELECT count(*) FROM scan_metadata").value_or(-1);
  RunResult agent = AgentOnce();
  ASSERT_EQ(agent.exit_code, 0) << agent.err;
  EXPECT_TRUE(Contains(agent.err, "rule rejected")) << agent.err;
  // The built-ins still ran and found the implant; nothing hostile ran or was stored.
  EXPECT_GE(Alerts("rule_id = 'proc-deleted-executable'"), 1);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM detection_rules WHERE id LIKE 'hostile-%' OR id = 'typo'"),
            0);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM scan_metadata"), scans);
  EXPECT_FALSE(testing::FileExists("/tmp/x.db"));
}

TEST_F(DetectionTest, RunawayRuleIsStoppedAndOthersStillRun) {
  testing::WriteFile(
      rules_dir_ + "/spin.yaml",
      "id: spin\nname: Spins\nseverity: low\nquery: |\n"
      "  WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) AS n FROM r\n");
  DeletedBinary implant(sb_.File("implant"));
  ASSERT_EQ(Scan().exit_code, 0);
  RunResult agent = AgentOnce({"SENTINELD_DETECTION__RULE_TIMEOUT_SECS=1"});
  ASSERT_EQ(agent.exit_code, 0) << agent.err;
  EXPECT_TRUE(Contains(agent.err, "rule run failed")) << agent.err;
  EXPECT_EQ(
      QueryInt(db_, "SELECT count(*) FROM detection_rules WHERE id = 'spin' AND last_error LIKE '%time%'"),
      1);
  EXPECT_GE(Alerts("rule_id = 'proc-deleted-executable'"), 1);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM detection_rules WHERE last_run_ms IS NULL AND enabled = 1"),
            0);
}

// One SQLite call that runs for seconds without reaching the progress
// handler (~11 s each on a fast machine): only killing the evaluating
// process stops it.
std::string StallingColumns(int n) {
  std::string cols;
  for (int i = 0; i < n; ++i) cols += "printf('%.*c', 2000000000, 'x') AS c" + std::to_string(i) + ", ";
  return cols;
}

void WriteStallingRule(const std::string& path) {
  testing::WriteFile(path,
                     "id: stall\nname: Stalls inside one SQLite step\nseverity: low\nquery: |\n  SELECT " +
                         StallingColumns(20) + "1 AS pid\n");
}

TEST_F(DetectionTest, RuleStuckInsideOneStepEndsAtItsDeadlineAndOthersStillAlert) {
  WriteStallingRule(rules_dir_ + "/stall.yaml");
  DeletedBinary implant(sb_.File("implant"));
  ASSERT_EQ(Scan().exit_code, 0);
  RunResult agent = AgentOnce({"SENTINELD_DETECTION__RULE_TIMEOUT_SECS=1"});
  ASSERT_EQ(agent.exit_code, 0) << agent.err;
  EXPECT_TRUE(Contains(agent.err, "rule run failed")) << agent.err;
  EXPECT_EQ(QueryInt(db_,
                     "SELECT count(*) FROM detection_rules WHERE id = 'stall' AND "
                     "last_error LIKE '%exceeded its time limit of 1000 ms%'"),
            1);
  // The other rules of the cycle ran and alerted; the stalled one raised nothing.
  EXPECT_GE(Alerts("rule_id = 'proc-deleted-executable'"), 1);
  EXPECT_EQ(Alerts("rule_id = 'stall'"), 0);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM detection_rules WHERE last_run_ms IS NULL AND enabled = 1"),
            0);
}

TEST_F(DetectionTest, QueryStuckInsideOneStepFailsAtItsDeadline) {
  ASSERT_EQ(Scan().exit_code, 0);
  RunResult q = sb_.Cli({"query", "SELECT printf('%.*c', 2000000000, 'x') AS a"},
                        Env({"SENTINELD_DETECTION__RULE_TIMEOUT_SECS=1"}));
  EXPECT_EQ(q.exit_code, 1) << q.out << q.err;
  EXPECT_TRUE(Contains(q.err, "query stopped: exceeded its time limit of 1000 ms")) << q.err;

  // `rules test` runs a rule the same way (a rule that cannot finish is a bad rule: exit 2).
  WriteStallingRule(sb_.File("stall.yaml"));
  RunResult t =
      sb_.Cli({"rules", "test", sb_.File("stall.yaml")}, Env({"SENTINELD_DETECTION__RULE_TIMEOUT_SECS=1"}));
  EXPECT_EQ(t.exit_code, 2) << t.err;
  EXPECT_TRUE(Contains(t.err, "rule stall: query stopped: exceeded its time limit of 1000 ms")) << t.err;
}

TEST_F(DetectionTest, SigtermStopsAnAgentStuckOnARule) {
  WriteStallingRule(rules_dir_ + "/stall.yaml");
  DeletedBinary implant(sb_.File("implant"));
  ASSERT_EQ(Scan().exit_code, 0);
  // A limit far beyond the test: only the shutdown can end the stalled rule.
  Child agent({AgentBin(), "--no-collector"},
              sb_.ProcmondEnv(
                  Env({"SENTINELD_DETECTION__RULE_TIMEOUT_SECS=3600",
                       "SENTINELD_IPC__SOCKET_DIR=" + sb_.File("run"), "SENTINELD_TELEMETRY__HTTP_LISTEN="})),
              sb_.File("agent.out"), sb_.File("agent.err"));
  // Every rule but the stalled one has run: the cycle is held by it.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto enabled = TryQueryInt(db_, "SELECT count(*) FROM detection_rules WHERE enabled = 1");
        auto ran = TryQueryInt(db_, "SELECT count(*) FROM detection_rules WHERE last_run_ms IS NOT NULL");
        return enabled.value_or(0) > 1 && ran.value_or(0) == *enabled - 1;
      },
      std::chrono::seconds(60)))
      << testing::ReadFile(sb_.File("agent.err"));
  // The alerts of the rules that finished are delivered (the stdout sink)
  // while the cycle is still held.
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string out = testing::ReadFile(sb_.File("agent.out"));
        return Contains(out, "ALERT") && Contains(out, "proc-deleted-executable");
      },
      std::chrono::seconds(30)))
      << testing::ReadFile(sb_.File("agent.out")) << testing::ReadFile(sb_.File("agent.err"));
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM detection_rules WHERE id = 'stall' AND last_run_ms IS NULL"),
            1);
  agent.Signal(SIGTERM);
  auto code = agent.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(code.has_value()) << "the agent did not exit on SIGTERM\n"
                                << testing::ReadFile(sb_.File("agent.err"));
  EXPECT_EQ(*code, 0) << testing::ReadFile(sb_.File("agent.err"));
  EXPECT_TRUE(Contains(testing::ReadFile(sb_.File("agent.err")), "detection cycle stopped for shutdown"));
}

// One sandbox for `rules validate`, `rules test` and the agent: a
// reference that would bypass the cycle's frozen snapshot (main.processes)
// or read a storage table that is not rule-visible is refused by all three;
// temp.processes is the snapshot itself and runs the same everywhere.
TEST_F(DetectionTest, ValidateTestAndAgentAgreeOnTheSandbox) {
  struct Case {
    const char* id;
    const char* query;
    const char* expect;  // "" = accepted
  };
  const Case cases[] = {
      {"main-processes", "SELECT pid FROM main.processes", "main.processes"},
      {"main-processes-count", "SELECT count(*) AS n FROM main.processes", "main.processes"},
      {"instances", "SELECT count(*) AS n FROM process_instances", "process_instances"},
      {"instances-1", "SELECT 1 AS n FROM process_instances LIMIT 1", "process_instances"},
      {"states", "SELECT count(*) AS n FROM process_states", "process_states"},
      {"rules-table", "SELECT count(*) AS n FROM detection_rules", "detection_rules"},
      {"temp-processes", "SELECT count(*) AS n FROM temp.processes", ""},
  };
  DeletedBinary implant(sb_.File("implant"));
  ASSERT_EQ(Scan().exit_code, 0);
  for (const auto& c : cases) {
    const std::string file = rules_dir_ + "/" + c.id + ".yaml";
    testing::WriteFile(file,
                       std::string("id: ") + c.id + "\nname: x\nseverity: low\nquery: \"" + c.query + "\"\n");
    RunResult v = Cli({"rules", "validate", file});
    RunResult t = Cli({"rules", "test", file});
    if (*c.expect) {
      EXPECT_EQ(v.exit_code, 2) << c.id << ": " << v.out;
      EXPECT_TRUE(Contains(v.err, c.expect)) << c.id << ": " << v.err;
      EXPECT_EQ(t.exit_code, 2) << c.id << ": " << t.out;
      EXPECT_TRUE(Contains(t.err, c.expect)) << c.id << ": " << t.err;
    } else {
      EXPECT_EQ(v.exit_code, 0) << c.id << ": " << v.err;
      EXPECT_EQ(t.exit_code, 0) << c.id << ": " << t.err;
    }
  }
  RunResult agent = AgentOnce();
  ASSERT_EQ(agent.exit_code, 0) << agent.err;
  for (const auto& c : cases) {
    const std::string where = std::string("id = '") + c.id + "'";
    if (*c.expect) {
      // Rejected at load: never recorded, never run.
      EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM detection_rules WHERE " + where), 0) << c.id;
    } else {
      EXPECT_EQ(QueryInt(db_,
                         "SELECT count(*) FROM detection_rules WHERE last_error IS NULL AND "
                         "last_run_ms IS NOT NULL AND " +
                             where),
                1)
          << c.id << "\n"
          << agent.err;
    }
  }
  EXPECT_GE(Alerts("rule_id = 'proc-deleted-executable'"), 1);
  // `sentinelcli query` reads the live views: internal tables are refused there too.
  RunResult q = Cli({"query", "SELECT count(*) FROM process_instances"});
  EXPECT_EQ(q.exit_code, 2);
  EXPECT_TRUE(Contains(q.err, "process_instances")) << q.err;
}

TEST_F(DetectionTest, DisableAndEnableSurviveReloads) {
  RunResult missing = Cli({"rules", "disable", "proc-deleted-executable"});
  EXPECT_EQ(missing.exit_code, 1);  // no event store yet: nothing to record the choice in
  EXPECT_TRUE(Contains(missing.err, "event store does not exist")) << missing.err;
  EXPECT_FALSE(testing::FileExists(db_));
  DeletedBinary implant(sb_.File("implant"));
  ASSERT_EQ(Scan().exit_code, 0);
  ASSERT_EQ(AgentOnce({"SENTINELD_DETECTION__BUILTIN_RULES=false"}).exit_code, 0);

  RunResult off = Cli({"rules", "disable", "proc-deleted-executable"});
  ASSERT_EQ(off.exit_code, 0) << off.err;
  ASSERT_EQ(AgentOnce().exit_code, 0);
  EXPECT_EQ(Alerts("rule_id = 'proc-deleted-executable'"), 0);
  RunResult list = Cli({"rules", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0);
  bool seen = false;
  for (const auto& r : json::parse(list.out)) {
    if (r["id"] == "proc-deleted-executable") {
      seen = true;
      EXPECT_EQ(r["enabled"], 0);
    }
  }
  EXPECT_TRUE(seen);

  ASSERT_EQ(Cli({"rules", "enable", "proc-deleted-executable"}).exit_code, 0);
  ASSERT_EQ(AgentOnce().exit_code, 0);
  // Tests running alongside may have deleted binaries of their own: count ours.
  EXPECT_EQ(Alerts("rule_id = 'proc-deleted-executable' AND affected_processes LIKE '%\"pid\":" +
                   std::to_string(implant.pid()) + ",%'"),
            1);

  RunResult unknown = Cli({"rules", "enable", "no-such-rule"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_TRUE(Contains(unknown.err, "unknown rule id \"no-such-rule\"")) << unknown.err;
}

TEST_F(DetectionTest, ImportValidatesEverythingFirstAndExportRoundTrips) {
  const std::string bundle = sb_.File("bundle");
  ::mkdir(bundle.c_str(), 0750);
  testing::WriteFile(bundle + "/a.yaml",
                     "id: imported-a\nname: A\nseverity: low\nquery: SELECT pid FROM processes\n");
  testing::WriteFile(bundle + "/b.yaml",
                     "id: imported-b\nname: B\nseverity: low\nquery: SELECT * FROM sqlite_master\n");
  RunResult refused = Cli({"rules", "import", bundle});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(Contains(refused.err, "b.yaml")) << refused.err;
  EXPECT_TRUE(Contains(refused.err, "nothing imported")) << refused.err;
  EXPECT_TRUE(ListDir(rules_dir_).empty());

  testing::WriteFile(bundle + "/b.yaml",
                     "id: imported-b\nname: B\nseverity: low\nquery: SELECT name FROM processes\n");
  RunResult ok = Cli({"rules", "import", bundle});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ListDir(rules_dir_), (std::set<std::string>{"imported-a.yaml", "imported-b.yaml"}));
  // Readable by the agent's own user (root writes them; the directory is 0755 when installed).
  struct stat st {};
  ASSERT_EQ(::stat((rules_dir_ + "/imported-a.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  RunResult clash = Cli({"rules", "import", bundle + "/a.yaml"});
  EXPECT_EQ(clash.exit_code, 0) << clash.err;  // re-importing into the same file is an update
  testing::WriteFile(
      bundle + "/c.yaml",
      "id: proc-deleted-executable\nname: C\nseverity: low\nquery: SELECT pid FROM processes\n");
  RunResult builtin = Cli({"rules", "import", bundle + "/c.yaml"});
  EXPECT_EQ(builtin.exit_code, 2);
  EXPECT_TRUE(Contains(builtin.err, "already defined by builtin:rules/proc-deleted-executable.yaml"))
      << builtin.err;

  const std::string out = sb_.File("exported");
  RunResult exp = Cli({"rules", "export", "--output", out});
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  std::set<std::string> files = ListDir(out);
  EXPECT_TRUE(files.count("imported-a.yaml"));
  EXPECT_TRUE(files.count("proc-deleted-executable.yaml"));
  EXPECT_GE(files.size(), 20u);
  std::vector<std::string> args = {"rules", "validate"};
  for (const auto& f : files) args.push_back(out + "/" + f);
  RunResult valid = Cli(args);
  EXPECT_EQ(valid.exit_code, 0) << valid.err;
}

// `rules coverage` covers the configured set: built-ins and a user rule,
// whose technique lands under its tactic.
TEST_F(DetectionTest, RulesCoverageListsTheTacticsOfTheConfiguredRules) {
  testing::WriteFile(rules_dir_ + "/local-miner.yaml",
                     "id: local-miner\nname: M\nseverity: low\ntags: [impact]\nmitre: [T1496]\n"
                     "query: SELECT pid FROM processes WHERE 0\n");
  RunResult as_json = Cli({"rules", "coverage", "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  auto j = json::parse(as_json.out);
  bool found = false;
  for (const auto& tactic : j["tactics"]) {
    if (tactic["tactic"] != "impact") continue;
    for (const auto& t : tactic["techniques"]) {
      if (t["id"] != "T1496") continue;
      EXPECT_EQ(t["name"], "Resource Hijacking");
      for (const auto& r : t["rules"]) found = found || r == "local-miner";
    }
  }
  EXPECT_TRUE(found) << as_json.out;
  RunResult md = Cli({"rules", "coverage", "--builtin", "--markdown"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_TRUE(Contains(md.out, "| Execution (TA0002) | T1059.004 Unix Shell |")) << md.out;
  EXPECT_FALSE(Contains(md.out, "local-miner"));
}

TEST_F(DetectionTest, BadArgumentsAreUsageErrors) {
  ASSERT_EQ(Scan().exit_code, 0);
  struct Case {
    std::vector<std::string> args;
    int code;
    const char* expect;
  };
  const Case cases[] = {
      {{"alerts", "list", "--severity", "urgent"}, 2, "--severity: expected low, medium, high or critical"},
      {{"alerts", "list", "--since", "yesterday-ish"}, 2, "--since"},
      {{"alerts", "show", "abc"}, 2, "expected a positive integer"},
      {{"alerts", "show", "999"}, 2, "no alert with id 999"},
      {{"rules", "show", "nope"}, 2, "unknown rule id"},
      {{"rules", "test", "nope"}, 2, "unknown rule id"},
      {{"rules", "test", "/no/such/rule.yaml"}, 2, "/no/such/rule.yaml"},
      {{"rules", "validate", "/no/such/rule.yaml"}, 2, "/no/such/rule.yaml"},
      {{"rules", "frobnicate"}, 2, ""},
  };
  for (const auto& c : cases) {
    RunResult r = Cli(c.args);
    EXPECT_EQ(r.exit_code, c.code) << c.args.back() << ": " << r.err;
    EXPECT_TRUE(Contains(r.err, c.expect)) << r.err;
  }
  RunResult no_db = sb_.Cli({"alerts", "list", "--database", sb_.File("missing.db")}, Env());
  EXPECT_EQ(no_db.exit_code, 1);
  EXPECT_FALSE(testing::FileExists(sb_.File("missing.db")));
}

TEST_F(DetectionTest, AgentSupervisesProcmondAndStopsCleanly) {
  Child agent(
      {AgentBin()},
      sb_.ProcmondEnv(Env({"SENTINELD_COLLECTION__INTERVAL_SECS=1", "SENTINELD_DETECTION__INTERVAL_SECS=1",
                           "SENTINELD_COLLECTION__REALTIME_EVENTS=false"})),
      sb_.File("agent.out"), sb_.File("agent.err"));
  // procmond, spawned by the agent, writes scans; the agent runs rules over them.
  EXPECT_TRUE(WaitFor([&] { return TryQueryInt(db_, "SELECT count(*) FROM scan_metadata").value_or(0) >= 2; },
                      std::chrono::seconds(30)))
      << testing::ReadFile(sb_.File("agent.err"));
  EXPECT_TRUE(WaitFor(
      [&] {
        return TryQueryInt(db_, "SELECT count(*) FROM detection_rules WHERE last_run_ms IS NOT NULL")
                   .value_or(0) > 0;
      },
      std::chrono::seconds(30)));
  const std::string err = testing::ReadFile(sb_.File("agent.err"));
  EXPECT_TRUE(Contains(err, "procmond started")) << err;
  agent.Signal(SIGTERM);
  auto code = agent.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  const std::string final_err = testing::ReadFile(sb_.File("agent.err"));
  EXPECT_TRUE(Contains(final_err, "procmond stopped")) << final_err;
  EXPECT_TRUE(Contains(final_err, "exit code 0")) << final_err;
}

}  // namespace
}  // namespace sentinel::itest
