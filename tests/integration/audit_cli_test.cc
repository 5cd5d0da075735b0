// The audit ledger through the real binaries (SPEC §8, §9): procmond,
// sentinelagent and sentinelcli record their security-relevant steps in one
// chain; `sentinelcli audit verify` accepts it and finds the first tampered
// entry of a modified copy (exit 3).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/ipc/control_socket.h"
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
  // Alerts go to a webhook with nothing behind it, one attempt: straight to the DLQ.
  testing::WriteFile(
      sb_.File("agent.yaml"),
      "detection: {builtin_rules: false}\n"
      "alerting:\n  retry: {max_attempts: 1, initial_backoff_ms: 10, max_backoff_ms: 10}\n"
      "  sinks:\n    - {name: dead, type: webhook, url: \"http://127.0.0.1:9/x\", timeout_ms: 500}\n");
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

TEST_F(AuditCliTest, SignedLedgerFromAGeneratedKey) {
  const std::string key = sb_.File("audit.key");
  RunResult gen = sb_.Cli({"audit", "keygen", key}, Env());
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_TRUE(Contains(gen.out, "public key: ")) << gen.out;
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  RunResult again = sb_.Cli({"audit", "keygen", key}, Env());
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_TRUE(Contains(again.err, "already exists")) << again.err;

  std::vector<std::string> env = Env();
  env.push_back("SENTINELD_DATABASE__AUDIT_SIGNING_KEY=" + key);
  ASSERT_EQ(sb_.Procmond({"--once"}, env).exit_code, 0);
  ASSERT_EQ(sb_.Agent({"--once", "--no-collector"}, env).exit_code, 0);
  EXPECT_EQ(QueryInt(sb_.File("audit.db"), "SELECT count(*) FROM audit_ledger WHERE signature IS NULL"), 0);
  EXPECT_EQ(
      QueryInt(sb_.File("audit.db"), "SELECT count(*) FROM system_metadata WHERE key = 'audit_public_key'"),
      1);
  RunResult ok = sb_.Cli({"audit", "verify"}, Env());
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;

  // A forged signature is found.
  ExecSql(sb_.File("audit.db"),
          "UPDATE audit_ledger SET signature = substr(signature, 1, 10) || "
          "CASE substr(signature, 11, 1) WHEN '0' THEN '1' ELSE '0' END || substr(signature, 12) WHERE "
          "sequence = 3");
  RunResult bad = sb_.Cli({"audit", "verify"}, Env());
  EXPECT_EQ(bad.exit_code, 3) << bad.out << bad.err;
  EXPECT_TRUE(Contains(bad.out + bad.err, "first bad sequence 3")) << bad.out << bad.err;

  // A private key others can read is refused before anything is written: a configuration error.
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  std::vector<std::string> env2 = {"SENTINELD_DATABASE__PATH=" + sb_.File("events2.db"),
                                   "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit2.db"),
                                   "SENTINELD_DATABASE__AUDIT_SIGNING_KEY=" + key};
  RunResult refused = sb_.Procmond({"--once"}, env2);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_TRUE(Contains(refused.err, "database.audit_signing_key")) << refused.err;
  EXPECT_TRUE(Contains(refused.err, key)) << refused.err;
  RunResult agent = sb_.Agent({"--once", "--no-collector"}, env2);
  EXPECT_EQ(agent.exit_code, 2) << agent.err;
  EXPECT_FALSE(testing::FileExists(sb_.File("audit2.db")));
  EXPECT_FALSE(testing::FileExists(sb_.File("events2.db")));
}

TEST_F(AuditCliTest, OnASignedLedgerCliActionsAreSignedByTheAgentOrRefused) {
  // Today: once a key is recorded the CLI's unsigned appends are refused by the ledger, so
  // queries and rule changes ran with no trace in the audit trail.
  const std::string key = sb_.File("audit.key");
  ASSERT_EQ(sb_.Cli({"audit", "keygen", key}, Env()).exit_code, 0);
  std::vector<std::string> signing = Env();
  signing.push_back("SENTINELD_DATABASE__AUDIT_SIGNING_KEY=" + key);
  ASSERT_EQ(sb_.Procmond({"--once"}, signing).exit_code, 0);
  ASSERT_EQ(sb_.Agent({"--once", "--no-collector"}, signing).exit_code, 0);
  const std::string cli_entries = "SELECT count(*) FROM audit_ledger WHERE actor = 'sentinelcli'";

  // No agent to sign: the audited action is refused, nothing is done (the CLI has no key).
  RunResult refused = sb_.Cli({"rules", "disable", "proc-exec-from-tmp"}, Env());
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_TRUE(Contains(refused.err, "is signed")) << refused.err;
  EXPECT_TRUE(Contains(refused.err, "agent.sock")) << refused.err;
  EXPECT_TRUE(Contains(refused.err, "nothing was done")) << refused.err;
  EXPECT_EQ(QueryInt(sb_.File("events.db"),
                     "SELECT count(*) FROM detection_rules WHERE enabled_override IS NOT NULL"),
            0);
  EXPECT_EQ(sb_.Cli({"query", "SELECT 1 AS one"}, Env()).exit_code, 1);
  EXPECT_EQ(QueryInt(sb_.File("audit.db"), cli_entries), 0);

  // With the agent running, it appends the CLI's entries signed, with the caller's uid and pid
  // as the kernel reports them.
  Child agent({AgentBin(), "--no-collector"}, sb_.ProcmondEnv(signing), "", sb_.File("agent.err"));
  ASSERT_TRUE(
      WaitFor([&] { return testing::FileExists(sb_.File("run/agent.sock")); }, std::chrono::seconds(30)))
      << testing::ReadFile(sb_.File("agent.err"));
  RunResult q = sb_.Cli({"query", "SELECT 1 AS one"}, Env());
  EXPECT_EQ(q.exit_code, 0) << q.err;
  RunResult d = sb_.Cli({"rules", "disable", "proc-exec-from-tmp"}, Env());
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(QueryInt(sb_.File("audit.db"),
                     cli_entries + " AND action = 'query_executed' AND signature IS NOT NULL"),
            1);
  EXPECT_EQ(
      QueryInt(sb_.File("audit.db"), cli_entries + " AND action = 'rule_disabled' AND signature IS NOT NULL"),
      1);
  EXPECT_EQ(QueryInt(sb_.File("audit.db"),
                     "SELECT json_extract(event_data, '$.uid') FROM audit_ledger WHERE "
                     "actor = 'sentinelcli' AND action = 'rule_disabled'"),
            static_cast<int64_t>(::geteuid()));
  EXPECT_EQ(QueryInt(sb_.File("audit.db"),
                     "SELECT count(*) FROM audit_ledger WHERE actor = 'sentinelcli' AND "
                     "json_extract(event_data, '$.via') = 'sentinelagent' AND "
                     "json_extract(event_data, '$.pid') > 0"),
            2);
  // A peer may only add the CLI's own actions, and cannot choose the uid recorded.
  const std::string sock = sb_.File("run/agent.sock");
  auto forged = ipc::Call(
      sock, "audit-append",
      {{"entries", json::array({{{"action", "component_start"}, {"data", json::object()}}})}}, 5000);
  ASSERT_TRUE(forged.ok()) << forged.status().message();
  EXPECT_FALSE(forged->value("ok", true)) << forged->dump();
  auto spoofed = ipc::Call(
      sock, "audit-append",
      {{"entries", json::array({{{"action", "query_executed"}, {"data", {{"uid", 12345}, {"sql", "x"}}}}})}},
      5000);
  ASSERT_TRUE(spoofed.ok()) << spoofed.status().message();
  EXPECT_TRUE(spoofed->value("ok", false)) << spoofed->dump();
  EXPECT_EQ(QueryInt(sb_.File("audit.db"),
                     "SELECT json_extract(event_data, '$.uid') FROM audit_ledger WHERE "
                     "actor = 'sentinelcli' AND json_extract(event_data, '$.sql') = 'x'"),
            static_cast<int64_t>(::geteuid()));
  EXPECT_EQ(QueryInt(sb_.File("audit.db"),
                     "SELECT count(*) FROM audit_ledger WHERE action = 'component_start' "
                     "AND actor = 'sentinelcli'"),
            0);

  EXPECT_EQ(QueryInt(sb_.File("audit.db"), "SELECT count(*) FROM audit_ledger WHERE signature IS NULL"), 0);
  RunResult ok = sb_.Cli({"audit", "verify"}, Env());
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  agent.Signal(SIGTERM);
  EXPECT_TRUE(agent.Wait(std::chrono::seconds(30)).has_value());
}

}  // namespace
}  // namespace sentinel::itest
