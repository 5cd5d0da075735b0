// Signed audit ledgers through the real binaries (SPEC §8; the audit-signing feature,
// SENTINEL_AUDIT_SIGNING): `sentinelcli audit keygen`, procmond and the agent signing every
// entry, `audit verify` finding a forged signature, and CLI actions on a signed ledger.
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

class AuditSigningCliTest : public ::testing::Test {
 protected:
  std::vector<std::string> Env() const {
    return {"SENTINELD_DATABASE__PATH=" + sb_.File("events.db"),
            "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit.db"),
            "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]"};
  }
  Sandbox sb_;
};

TEST_F(AuditSigningCliTest, SignedLedgerFromAGeneratedKey) {
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

TEST_F(AuditSigningCliTest, OnASignedLedgerCliActionsAreSignedByTheAgentOrRefused) {
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
