// GET /metrics as a pure function of a snapshot: the exact exposition text,
// and promtool's verdict on a full one.
#include "sentinelagent/metrics_text.h"

#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

#include "sentinel/testing/subprocess.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::agent {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

MetricsInput Minimal() {
  MetricsInput in;
  in.version = "1.2.3";
  in.uptime_ms = 5500;
  in.stuck_cycle_bound_ms = 70'000;
  in.stats.cycles = 2;
  in.stats.cycles_failed = 1;
  in.stats.rule_runs_ok = {{"r1", 3}};
  in.stats.cycle_duration = {{1.0}, {2, 0}, 0.5, 2};
  return in;
}

TEST(MetricsTextTest, MinimalSnapshotRendersExactly) {
  const std::string expected =
      "# HELP sentinel_build_info Version of the running agent.\n"
      "# TYPE sentinel_build_info gauge\n"
      "sentinel_build_info{version=\"1.2.3\"} 1\n"
      "# HELP sentinel_agent_uptime_seconds Seconds since the agent started.\n"
      "# TYPE sentinel_agent_uptime_seconds gauge\n"
      "sentinel_agent_uptime_seconds 5.5\n"
      "# HELP sentinel_collector_up 1 when procmond answers on its control socket.\n"
      "# TYPE sentinel_collector_up gauge\n"
      "sentinel_collector_up 0\n"
      "# HELP sentinel_audit_entries_dropped_total Audit entries the agent dropped because its ledger "
      "backlog "
      "was full (each gap is also recorded in the ledger as audit_entries_dropped).\n"
      "# TYPE sentinel_audit_entries_dropped_total counter\n"
      "sentinel_audit_entries_dropped_total 0\n"
      "# HELP sentinel_detection_cycles_total Detection cycles run, by outcome.\n"
      "# TYPE sentinel_detection_cycles_total counter\n"
      "sentinel_detection_cycles_total{outcome=\"ok\"} 2\n"
      "sentinel_detection_cycles_total{outcome=\"failed\"} 1\n"
      "# HELP sentinel_detection_cycle_duration_seconds Duration of detection cycles.\n"
      "# TYPE sentinel_detection_cycle_duration_seconds histogram\n"
      "sentinel_detection_cycle_duration_seconds_bucket{le=\"1\"} 2\n"
      "sentinel_detection_cycle_duration_seconds_bucket{le=\"+Inf\"} 2\n"
      "sentinel_detection_cycle_duration_seconds_sum 0.5\n"
      "sentinel_detection_cycle_duration_seconds_count 2\n"
      "# HELP sentinel_rule_runs_total Rule runs, by rule and outcome.\n"
      "# TYPE sentinel_rule_runs_total counter\n"
      "sentinel_rule_runs_total{rule=\"r1\",outcome=\"ok\"} 3\n"
      "# HELP sentinel_rule_duration_seconds Duration of single rule runs.\n"
      "# TYPE sentinel_rule_duration_seconds histogram\n"
      "sentinel_rule_duration_seconds_sum 0\n"
      "sentinel_rule_duration_seconds_count 0\n"
      "# HELP sentinel_detection_cycle_running_seconds How long the running detection cycle has run (0: none "
      "runs).\n"
      "# TYPE sentinel_detection_cycle_running_seconds gauge\n"
      "sentinel_detection_cycle_running_seconds 0\n"
      "# HELP sentinel_detection_cycle_stuck_bound_seconds A detection cycle running longer than this makes "
      "health unhealthy.\n"
      "# TYPE sentinel_detection_cycle_stuck_bound_seconds gauge\n"
      "sentinel_detection_cycle_stuck_bound_seconds 70\n"
      "# HELP sentinel_realtime_detection_connected 1 while the real-time detector is subscribed to "
      "procmond's event notices.\n"
      "# TYPE sentinel_realtime_detection_connected gauge\n"
      "sentinel_realtime_detection_connected 0\n"
      "# HELP sentinel_realtime_detection_batches_total Batches of exec events evaluated by the on: exec "
      "rules.\n"
      "# TYPE sentinel_realtime_detection_batches_total counter\n"
      "sentinel_realtime_detection_batches_total 0\n"
      "# HELP sentinel_realtime_detection_exec_events_total Exec events evaluated in real-time batches.\n"
      "# TYPE sentinel_realtime_detection_exec_events_total counter\n"
      "sentinel_realtime_detection_exec_events_total 0\n"
      "# HELP sentinel_realtime_detection_rule_failures_total On: exec rule runs that failed on a batch.\n"
      "# TYPE sentinel_realtime_detection_rule_failures_total counter\n"
      "sentinel_realtime_detection_rule_failures_total 0\n"
      "# HELP sentinel_realtime_detection_batches_skipped_total Batches a failing on: exec rule gave up "
      "on.\n"
      "# TYPE sentinel_realtime_detection_batches_skipped_total counter\n"
      "sentinel_realtime_detection_batches_skipped_total 0\n"
      "# HELP sentinel_realtime_detection_cursor_event_id Lowest process_events id every enabled on: exec "
      "rule has evaluated.\n"
      "# TYPE sentinel_realtime_detection_cursor_event_id gauge\n"
      "sentinel_realtime_detection_cursor_event_id 0\n"
      "# HELP sentinel_realtime_detection_lag_events process_events ids stored but not yet evaluated by "
      "every on: exec rule.\n"
      "# TYPE sentinel_realtime_detection_lag_events gauge\n"
      "sentinel_realtime_detection_lag_events 0\n"
      "# HELP sentinel_store_write_failures_total Failed write attempts to the event store, by what was "
      "written.\n"
      "# TYPE sentinel_store_write_failures_total counter\n"
      "sentinel_store_write_failures_total{path=\"alert_records\"} 0\n"
      "sentinel_store_write_failures_total{path=\"delivery_records\"} 0\n"
      "# HELP sentinel_store_writes_failing 1 while the most recent write of this kind failed (health is "
      "unhealthy).\n"
      "# TYPE sentinel_store_writes_failing gauge\n"
      "sentinel_store_writes_failing{path=\"alert_records\"} 0\n"
      "sentinel_store_writes_failing{path=\"delivery_records\"} 0\n"
      "# HELP sentinel_alerts_unrecorded_total Alerts the event store could not record, delivered from "
      "memory "
      "to the sinks.\n"
      "# TYPE sentinel_alerts_unrecorded_total counter\n"
      "sentinel_alerts_unrecorded_total 0\n"
      "# HELP sentinel_alerts_unrecorded_suppressed_total Unrecorded alerts suppressed as repeats of one "
      "within the dedup window.\n"
      "# TYPE sentinel_alerts_unrecorded_suppressed_total counter\n"
      "sentinel_alerts_unrecorded_suppressed_total 0\n"
      "# HELP sentinel_alerts_created_total Alerts created since the agent started, by severity.\n"
      "# TYPE sentinel_alerts_created_total counter\n"
      "sentinel_alerts_created_total{severity=\"low\"} 0\n"
      "sentinel_alerts_created_total{severity=\"medium\"} 0\n"
      "sentinel_alerts_created_total{severity=\"high\"} 0\n"
      "sentinel_alerts_created_total{severity=\"critical\"} 0\n"
      "# HELP sentinel_database_up 1 when the event store opens read-only with a current schema.\n"
      "# TYPE sentinel_database_up gauge\n"
      "sentinel_database_up 0\n"
      "# HELP sentinel_metrics_invalid_total Samples dropped because of a bad metric or label name.\n"
      "# TYPE sentinel_metrics_invalid_total counter\n"
      "sentinel_metrics_invalid_total 0\n";
  EXPECT_EQ(RenderMetrics(Minimal()), expected);
}

// Everything a busy agent reports: sinks, procmond's stats (with fields
// nobody mapped by hand, one under a hostile key) and the store.
MetricsInput Full() {
  MetricsInput in = Minimal();
  in.stats.supervised = true;
  in.stats.collector_restarts = 4;
  in.stats.rule_runs_failed = {{"r2", 1}};
  in.stats.alerts_created = {{"high", 7}};
  in.stats.record_writes = {10, 2, true, "disk full"};
  alerting::SinkMetrics sink;
  sink.name = "hook";
  sink.delivered = 5;
  sink.failed = 1;
  sink.dead_lettered = 1;
  sink.pending = 3;
  sink.circuit = alerting::CircuitState::kOpen;
  in.stats.delivery.sinks.push_back(sink);
  in.procmond_stats = nlohmann::json{
      {"scans_completed", 12},
      {"scan_duration_ms_total", 2500},
      {"last_scan_at_ms", 1700000000123},
      {"queue_wait_ms", 250},
      {"Evil Key\n{x=\"1\"}", 9},
      {"scan_source", "ebpf"},
      {"realtime", {{"received_exec", 3}, {"lost_queue", 1}, {"source", "netlink"}, {"backlog", 2}}}};
  StoreStats store;
  store.scans_stored = 12;
  store.last_scan = LastScanStats{1700000000500, 40, 321, 300, 21};
  store.alerts_by_severity = {{"high", 7}};
  store.delivery_attempts = {{"hook", "delivered", 5}};
  store.dlq_size = 1;
  in.store = store;
  return in;
}

TEST(MetricsTextTest, ProcmondFieldsBecomeSafeNamesInBaseUnits) {
  const std::string text = RenderMetrics(Full());
  EXPECT_TRUE(Contains(text, "\nsentinel_collector_up 1\n")) << text;
  EXPECT_TRUE(Contains(text, "\nsentinel_collector_restarts_total 4\n")) << text;
  EXPECT_TRUE(Contains(text, "\nsentinel_scans_total 12\n")) << text;
  EXPECT_TRUE(Contains(text, "\nsentinel_scan_duration_seconds_total 2.5\n")) << text;
  // Unmapped fields: milliseconds in seconds, timestamps as Unix seconds.
  EXPECT_TRUE(Contains(text,
                       "# TYPE sentinel_procmond_last_scan_timestamp_seconds gauge\n"
                       "sentinel_procmond_last_scan_timestamp_seconds 1700000000.123\n"))
      << text;
  EXPECT_TRUE(Contains(text, "\nsentinel_procmond_queue_wait_seconds 0.25\n")) << text;
  // A hostile key cannot shape the name or add labels.
  EXPECT_TRUE(Contains(text, "\nsentinel_procmond_evil_key__x__1__ 9\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_scan_source_info{source=\"ebpf\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_realtime_events_received_total{type=\"exec\"} 3\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_realtime_events_lost_total{reason=\"queue\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_realtime_source_info{source=\"netlink\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, "\nsentinel_procmond_realtime_backlog 2\n")) << text;
  EXPECT_FALSE(Contains(text, "procmond_scans_completed")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_sink_circuit_state{sink=\"hook\",state=\"open\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_store_writes_failing{path=\"alert_records\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_alerts_created_total{severity=\"high\"} 7\n")) << text;
  EXPECT_TRUE(Contains(text, "\nsentinel_last_scan_timestamp_seconds 1700000000.5\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_alerts_stored{severity=\"low\"} 0\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_alerts_stored{severity=\"high\"} 7\n")) << text;
  EXPECT_TRUE(Contains(text, "sentinel_delivery_attempts_stored{sink=\"hook\",status=\"delivered\"} 5\n"))
      << text;
  EXPECT_TRUE(Contains(text, "\nsentinel_metrics_invalid_total 0\n")) << text;
}

TEST(MetricsTextTest, FullSnapshotPassesPromtool) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool is not installed";
  MetricsInput in = Full();
  telemetry::Histogram h(telemetry::DurationBuckets());
  h.Observe(0.002);
  h.Observe(3);
  in.stats.rule_duration = h.Snapshot();
  in.stats.cycle_duration = h.Snapshot();
  testing::TempDir dir;
  testing::WriteFile(dir.File("metrics.txt"), RenderMetrics(in));
  auto r = testing::Run({"/bin/sh", "-c", "promtool check metrics < " + dir.File("metrics.txt")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace sentinel::agent
