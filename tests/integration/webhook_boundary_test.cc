// The output boundary with the real binaries (issue 14, docs/security.md), for the webhook
// feature (SENTINEL_SINK_WEBHOOK): a webhook URL with user:password, a path token and ?token=
// pointing at a closed loopback port: after the alert is dead-lettered, none of the secrets
// appears in any byte of the event store, the audit ledger (and their WAL files), the agent's log
// or `alerts dlq list`.
#include <sys/stat.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/testing/net.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

std::string ReadIfExists(const std::string& path) {
  return testing::FileExists(path) ? testing::ReadFile(path) : std::string();
}

class WebhookBoundaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = sb_.File("events.db");
    rules_dir_ = sb_.File("rules.d");
    ::mkdir(rules_dir_.c_str(), 0750);
  }
  std::vector<std::string> Env(std::vector<std::string> extra = {}) const {
    return DetectionEnv(sb_, db_, rules_dir_, std::move(extra));
  }
  RunResult Cli(const std::vector<std::string>& args) const { return sb_.Cli(args, Env()); }

  Sandbox sb_;
  std::string db_;
  std::string rules_dir_;
};

TEST_F(WebhookBoundaryTest, WebhookUrlSecretsReachNoErrorRecord) {
  const int closed = testing::FreePort(SOCK_STREAM);
  const std::string url = "http://alice:PASSWORDSECRET@127.0.0.1:" + std::to_string(closed) +
                          "/services/T0/B0/PATHSECRET?token=QUERYSECRET";
  testing::WriteFile(sb_.File("config.yaml"),
                     "database: {path: " + db_ + ", audit_path: " + sb_.File("audit.db") +
                         "}\n"
                         "detection: {interval_secs: 1, builtin_rules: false, rules_dirs: [" +
                         rules_dir_ +
                         "]}\n"
                         "telemetry: {log_format: text, http_listen: \"\"}\n"
                         "alerting:\n"
                         "  retry: {max_attempts: 2, initial_backoff_ms: 20, max_backoff_ms: 50}\n"
                         "  sinks:\n"
                         "    - {name: hook, type: webhook, url: \"" +
                         url + "\", timeout_ms: 2000}\n");
  const std::vector<std::string> agent_args = {"--config", sb_.File("config.yaml"), "--no-collector",
                                               "--once"};
  ASSERT_EQ(sb_.Agent(agent_args).exit_code, 0);  // creates the stores
  ExecSql(db_,
          "INSERT INTO alerts(alert_time, rule_id, title, description, severity, affected_processes, "
          "process_count, rule_version, raw_data, dedup_key) VALUES (strftime('%s','now') * 1000, 'r', 't', "
          "'d', 'high', '[{\"pid\":1,\"name\":\"p\",\"exe_path\":\"/bin/p\"}]', 1, 1, '{}', 'k1')");
  RunResult agent = sb_.Agent(agent_args);
  ASSERT_EQ(agent.exit_code, 0) << agent.err;
  ASSERT_EQ(QueryInt(db_, "SELECT count(*) FROM dead_letter_queue"), 1) << agent.err;
  ASSERT_EQ(QueryInt(db_, "SELECT count(*) FROM alert_deliveries WHERE status = 'failure'"), 2);
  // The records still say where: scheme, host and port.
  const std::string shown = "http://127.0.0.1:" + std::to_string(closed) + "/\xE2\x80\xA6";
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM alert_deliveries WHERE instr(error, '" + shown + "') > 0"),
            2);

  RunResult dlq = sb_.Cli({"--config", sb_.File("config.yaml"), "alerts", "dlq", "list", "--json"});
  ASSERT_EQ(dlq.exit_code, 0) << dlq.err;
  EXPECT_TRUE(Contains(dlq.out, shown)) << dlq.out;

  const std::vector<std::pair<std::string, std::string>> places = {
      {"events.db", ReadIfExists(db_)},
      {"events.db-wal", ReadIfExists(db_ + "-wal")},
      {"audit.db", ReadIfExists(sb_.File("audit.db"))},
      {"audit.db-wal", ReadIfExists(sb_.File("audit.db") + "-wal")},
      {"agent stderr", agent.err},
      {"agent stdout", agent.out},
      {"alerts dlq list", dlq.out}};
  for (const auto& [where, bytes] : places) {
    for (const std::string secret : {"PASSWORDSECRET", "PATHSECRET", "QUERYSECRET", "alice:"}) {
      EXPECT_EQ(bytes.find(secret), std::string::npos) << secret << " found in " << where;
    }
  }
}

}  // namespace
}  // namespace sentinel::itest
