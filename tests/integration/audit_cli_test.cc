// The audit ledger through the real binaries (SPEC §8, §9): procmond,
// sentinelagent and sentinelcli record their security-relevant steps in one
// chain; `sentinelcli audit verify` accepts it and finds the first tampered
// entry of a modified copy (exit 3). Signed ledgers (the audit-signing
// feature) are audit_signing_cli_test.cc.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/ipc/control_socket.h"
#include "sentinel/testing/net.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;

class AuditCliTest : public ::testing::Test {
 protected:
  std::vector<std::string> Env() const {
    return {"SENTINELD_DATABASE__PATH=" + sb_.File("events.db"),
            "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit.db"),
            "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]"};
  }
  std::vector<std::string> Actions() const {
    RunResult r = sb_.Cli({"audit", "list", "--limit", "0", "--json"}, Env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> out;
    for (const auto& e : json::parse(r.out))
      out.push_back(e["actor"].get<std::string>() + ":" + e["action"].get<std::string>());
    return out;
  }
  Sandbox sb_;
};

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TEST_F(AuditCliTest, ComponentsRecordTheirStepsInOneVerifiableChain) {
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  ASSERT_EQ(sb_.Agent({"--once", "--no-collector"}, Env()).exit_code, 0);
  ASSERT_EQ(sb_.Cli({"query", "SELECT count(*) FROM processes"}, Env()).exit_code, 0);
  EXPECT_EQ(sb_.Cli({"query", "SELECT * FROM sqlite_master"}, Env()).exit_code, 2);

  std::vector<std::string> actions = Actions();
  for (const char* want :
       {"procmond:component_start", "procmond:config_loaded", "procmond:component_stop",
        "sentinelagent:component_start", "sentinelagent:config_loaded", "sentinelagent:rule_loaded",
        "sentinelagent:component_stop", "sentinelcli:query_executed", "sentinelcli:query_rejected"}) {
    EXPECT_TRUE(Has(actions, want)) << want;
  }
  if (::geteuid() == 0) {
    EXPECT_TRUE(Has(actions, "procmond:privileges_dropped"));
  }

  RunResult ok = sb_.Cli({"audit", "verify"}, Env());
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_TRUE(Contains(ok.out, "intact")) << ok.out;
}

TEST_F(AuditCliTest, RejectedRulesAlertsAndDeadLettersAreRecorded) {
  ::mkdir(sb_.File("rules.d").c_str(), 0755);  // readable by the agent's user
  // A rule that always finds one row, and one the sandbox refuses.
  testing::WriteFile(
      sb_.File("rules.d/always.yaml"),
      "id: always\nname: Always\nseverity: critical\nquery: SELECT 1 AS pid, 'x' AS name, '/x' AS "
      "exe_path\n");
  testing::WriteFile(sb_.File("rules.d/evil.yaml"),
                     "id: evil\nname: Evil\nseverity: low\nquery: SELECT * FROM sqlite_master\n");
  // Alerts go to a syslog peer that is not there (a free loopback port), one attempt: straight to
  // the DLQ. (A sink every build has: the webhook sink is a feature.)
  testing::WriteFile(sb_.File("agent.yaml"),
                     "detection: {builtin_rules: false}\n"
                     "alerting:\n  retry: {max_attempts: 1, initial_backoff_ms: 10, max_backoff_ms: 10}\n"
                     "  sinks:\n    - {name: dead, type: syslog, address: \"tcp://127.0.0.1:" +
                         std::to_string(testing::FreePort(SOCK_STREAM)) + "\", timeout_ms: 500}\n");
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  RunResult agent = sb_.Agent({"--once", "--no-collector", "--config", sb_.File("agent.yaml")}, Env());
  ASSERT_EQ(agent.exit_code, 0) << agent.err;
  std::vector<std::string> actions = Actions();
  for (const char* want : {"sentinelagent:rule_rejected", "sentinelagent:rule_loaded",
                           "sentinelagent:alert_created", "sentinelagent:alert_dead_lettered"}) {
    EXPECT_TRUE(Has(actions, want)) << want;
  }
  EXPECT_EQ(
      QueryInt(
          sb_.File("audit.db"),
          "SELECT count(*) FROM audit_ledger WHERE action = 'rule_rejected' AND event_data LIKE '%evil%'"),
      1);
  EXPECT_EQ(sb_.Cli({"audit", "verify"}, Env()).exit_code, 0);
}

TEST_F(AuditCliTest, VerifyFindsTheFirstTamperedEntry) {
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  ASSERT_EQ(sb_.Cli({"query", "SELECT 1 AS one"}, Env()).exit_code, 0);
  ASSERT_EQ(sb_.Cli({"query", "SELECT 2 AS two"}, Env()).exit_code, 0);
  const int64_t n = QueryInt(sb_.File("audit.db"), "SELECT max(sequence) FROM audit_ledger").value_or(0);
  ASSERT_GE(n, 4);
  // Someone edits what a query was.
  ExecSql(sb_.File("audit.db"),
          "UPDATE audit_ledger SET event_data = replace(event_data, 'SELECT 1', 'SELECT 9') "
          "WHERE action = 'query_executed'");
  RunResult bad = sb_.Cli({"audit", "verify"}, Env());
  EXPECT_EQ(bad.exit_code, 3) << bad.out << bad.err;
  const int64_t edited = QueryInt(sb_.File("audit.db"),
                                  "SELECT min(sequence) FROM audit_ledger WHERE event_data LIKE '%SELECT 9%'")
                             .value_or(-1);
  EXPECT_TRUE(Contains(bad.out + bad.err, "first bad sequence " + std::to_string(edited)))
      << bad.out << bad.err;

  // A missing ledger is a runtime failure, not tampering.
  RunResult missing = sb_.Cli({"audit", "verify"}, {"SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("none.db")});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_FALSE(testing::FileExists(sb_.File("none.db")));
}

TEST_F(AuditCliTest, CliNeverCreatesALedger) {
  ASSERT_EQ(sb_.Procmond({"--once", "--database", sb_.File("events.db")},
                         {"SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("procmond-audit.db")})
                .exit_code,
            0);
  ASSERT_EQ(sb_.Cli({"query", "SELECT 1 AS one"}, Env()).exit_code, 0);
  EXPECT_FALSE(testing::FileExists(sb_.File("audit.db")));
}

}  // namespace
}  // namespace sentinel::itest
