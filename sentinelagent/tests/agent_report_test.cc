// The agent's health component and stats as pure functions of a snapshot.
#include "sentinelagent/agent_report.h"

#include <gtest/gtest.h>

namespace sentinel::agent {
namespace {

TEST(AgentReportTest, StuckBoundIsTheLargerOfTimeoutPlusGraceAndTwoIntervals) {
  config::DetectionConfig d;
  d.rule_timeout_secs = 30;
  d.interval_secs = 10;
  EXPECT_EQ(StuckCycleBoundMs(d), 40'000);
  d.interval_secs = 60;
  EXPECT_EQ(StuckCycleBoundMs(d), 120'000);
}

TEST(AgentReportTest, AgentIsOkUntilACycleRunsPastItsBoundOrRecordWritesFail) {
  AgentStatsSnapshot s;
  s.cycles = 3;
  s.last_cycle_ms = 100'000;
  SelfReportInput in{.pid = 77,
                     .uptime_ms = 65'000,
                     .now_ms = 112'000,
                     .cycle_running_ms = 40'000,
                     .stuck_cycle_bound_ms = 40'000,
                     .stats = &s};
  health::ComponentHealth ok = AgentComponent(in);
  EXPECT_EQ(ok.status, "ok");
  EXPECT_EQ(ok.detail, "pid 77, up 65 s, 3 detection cycles, last 12 s ago");

  in.cycle_running_ms = 40'001;
  s.delivery.store_writes = {0, 2, true, "disk I/O error"};
  health::ComponentHealth bad = AgentComponent(in);
  EXPECT_EQ(bad.status, "unhealthy");
  EXPECT_EQ(
      bad.detail,
      "detection cycle stuck: running for 40 s, over the bound of 40 s (max(detection.rule_timeout_secs + "
      "10 s, 2 x detection.interval_secs)); delivery record writes failing (2 failed attempts): disk I/O "
      "error (pid 77, up 65 s, 3 detection cycles, last 12 s ago)");
}

TEST(AgentReportTest, EnabledSinksNotYetReportedAreUnknown) {
  alerting::DeliveryMetrics d;
  alerting::SinkMetrics open;
  open.name = "hook";
  open.circuit = alerting::CircuitState::kOpen;
  d.sinks.push_back(open);
  std::vector<config::SinkConfig> sinks(3);
  sinks[0].name = "hook";
  sinks[1].name = "mail";
  sinks[2].name = "off";
  sinks[2].enabled = false;
  auto c = SinkComponents(d, sinks);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].name, "sink:hook");
  EXPECT_EQ(c[0].status, "unhealthy");
  EXPECT_EQ(c[1].name, "sink:mail");
  EXPECT_EQ(c[1].status, "unknown");
}

TEST(AgentReportTest, StatsSumRuleRunsAcrossRules) {
  AgentStatsSnapshot s;
  s.rule_runs_ok = {{"a", 2}, {"b", 3}};
  s.rule_runs_failed = {{"a", 1}};
  s.collector_pid = 42;
  nlohmann::json j = StatsJson({.uptime_ms = 9, .reload_requests = 2, .stats = &s});
  EXPECT_EQ(j["rule_runs"], 5);
  EXPECT_EQ(j["rule_runs_failed"], 1);
  EXPECT_EQ(j["collector_pid"], 42);
  EXPECT_EQ(j["reload_requests"], 2);
  EXPECT_EQ(j["uptime_ms"], 9);
}

// The summary line's counters (telemetry/summary.h turns them into increases).
TEST(AgentReportTest, SummaryTotalsAddUpBothDetectionPathsAndEverySink) {
  AgentStatsSnapshot s;
  s.cycles = 4;
  s.cycles_failed = 1;
  s.rule_runs_ok = {{"a", 10}, {"b", 7}};
  s.rule_runs_failed = {{"b", 2}};
  s.alerts_created = {{"high", 3}, {"low", 1}};
  s.realtime.batches = 6;
  s.realtime.rule_failures = 1;
  alerting::SinkMetrics console;
  console.delivered = 4;
  console.unrecorded_delivered = 1;
  alerting::SinkMetrics hook;
  hook.delivered = 2;
  hook.failed = 3;
  hook.unrecorded_failed = 1;
  s.delivery.sinks = {console, hook};
  const telemetry::PeriodicSummary::Totals expected = {
      {"scans", 12},       {"events", 900}, {"cycles", 4},     {"rule_runs", 19},
      {"exec_batches", 6}, {"alerts", 4},   {"deliveries", 7}, {"errors", 1 + 2 + 1 + 4}};
  EXPECT_EQ(SummaryTotals(s, 12, 900), expected);
}

}  // namespace
}  // namespace sentinel::agent
