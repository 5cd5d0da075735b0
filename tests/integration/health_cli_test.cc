// `sentinelcli health` through the real binaries (SPEC §9), in every build: a sink whose circuit
// opened makes it exit 4 naming the sink; with nothing running it names what is missing; it
// lists the build's features (docs/building.md).
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/testing/net.h"
#include "tests/integration/harness.h"
#include "tests/integration/observability_fixture.h"

namespace sentinel::itest {
namespace {

using namespace std::chrono_literals;
using testing::FreePort;

TEST_F(ObservabilityTest, SinkWithOpenCircuitIsUnhealthy) {
  const std::string db = sb_.Database();  // one scan, so rules and alerts have a store
  db_ = db;
  ExecSql(db,
          "INSERT INTO alerts(alert_time, rule_id, title, description, severity, affected_processes, "
          "process_count,"
          " rule_version, raw_data, dedup_key) VALUES (strftime('%s','now') * 1000, 'test-rule', 'Test', 'x',"
          " 'high', '[]', 0, 1, '{}', 'k1'), (strftime('%s','now') * 1000, 'test-rule', 'Test', 'x', 'high',"
          " '[]', 0, 1, '{}', 'k2')");
  const std::string cfg = sb_.File("config.yaml");
  testing::WriteFile(cfg,
                     "alerting:\n"
                     "  retry: {max_attempts: 5, initial_backoff_ms: 20, max_backoff_ms: 50}\n"
                     "  circuit_breaker: {failure_threshold: 2, open_secs: 600}\n"
                     "  sinks:\n"
                     "    - {name: dead, type: syslog, address: \"tcp://127.0.0.1:" +
                         std::to_string(FreePort()) + "\", timeout_ms: 500}\n");
  auto agent = StartAgent({"--config", cfg, "--no-collector"});
  int code = -1;
  nlohmann::json report;
  ASSERT_TRUE(WaitFor(
      [&] {
        report = CliHealthJson(&code);
        return !agent->Running() || ComponentStatus(report, "sink:dead") == "unhealthy";
      },
      90s))
      << report.dump(2) << AgentLog();
  EXPECT_EQ(code, 4);
  EXPECT_EQ(report.value("source", ""), "sentinelagent") << report.dump(2);
  EXPECT_EQ(ComponentStatus(report, "database"), "ok") << report.dump(2);
  for (const auto& c : report["components"]) {
    if (c["name"] == "sink:dead") {
      EXPECT_TRUE(Contains(c.value("detail", ""), "circuit open")) << c.dump();
    }
  }
}

TEST_F(ObservabilityTest, HealthWithNothingRunningNamesWhatIsMissing) {
  int code = -1;
  nlohmann::json report = CliHealthJson(&code);
  EXPECT_EQ(code, 4);
  EXPECT_EQ(ComponentStatus(report, "agent"), "unhealthy") << report.dump(2);
  EXPECT_EQ(ComponentStatus(report, "collector"), "unhealthy") << report.dump(2);
  EXPECT_EQ(ComponentStatus(report, "database"), "unhealthy") << report.dump(2);
  EXPECT_EQ(ComponentStatus(report, "sink:console"), "unknown") << report.dump(2);
  RunResult bad = sb_.Cli({"--format", "csv", "health"}, Env());
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

}  // namespace
}  // namespace sentinel::itest
