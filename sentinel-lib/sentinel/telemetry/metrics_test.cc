#include "sentinel/telemetry/metrics.h"

#include <gtest/gtest.h>

namespace sentinel::telemetry {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(MetricsBuilder, PrefixHelpTypeAndLabels) {
  MetricsBuilder b;
  b.Counter("scans_total", "Completed scans.", 3);
  b.Gauge("sentinel_dlq_size", "Dead letters.", 2);
  b.Counter("deliveries_total", "Delivery attempts.", 5, {{"sink", "console"}, {"outcome", "success"}});
  b.Counter("deliveries_total", "Delivery attempts.", 1, {{"sink", "console"}, {"outcome", "failure"}});
  const std::string t = b.Render();
  EXPECT_TRUE(Has(t,
                  "# HELP sentinel_scans_total Completed scans.\n# TYPE sentinel_scans_total counter\n"
                  "sentinel_scans_total 3\n"))
      << t;
  EXPECT_TRUE(Has(t, "# TYPE sentinel_dlq_size gauge\nsentinel_dlq_size 2\n")) << t;
  // One HELP/TYPE per family, samples grouped.
  EXPECT_TRUE(Has(t,
                  "# TYPE sentinel_deliveries_total counter\n"
                  "sentinel_deliveries_total{sink=\"console\",outcome=\"success\"} 5\n"
                  "sentinel_deliveries_total{sink=\"console\",outcome=\"failure\"} 1\n"))
      << t;
  EXPECT_TRUE(Has(t, "sentinel_metrics_invalid_total 0\n")) << t;
}

TEST(MetricsBuilder, EscapesLabelValuesAndHelp) {
  MetricsBuilder b;
  b.Gauge("circuit_open", "Line one\nback\\slash", 1, {{"sink", "a\"b\\c\nd"}});
  const std::string t = b.Render();
  EXPECT_TRUE(Has(t, "# HELP sentinel_circuit_open Line one\\nback\\\\slash\n")) << t;
  EXPECT_TRUE(Has(t, "sentinel_circuit_open{sink=\"a\\\"b\\\\c\\nd\"} 1\n")) << t;
}

TEST(MetricsBuilder, RefusesBadNamesAndCountersWithoutTotal) {
  MetricsBuilder b;
  b.Counter("scans", "no _total", 1);
  b.Gauge("bad-name", "dash", 1);
  b.Gauge("ok", "bad label", 1, {{"__reserved", "x"}});
  b.Gauge("ok2", "x", 1);
  b.Counter("ok2_total", "x", 1);
  b.Counter("ok2", "type clash", 1);
  const std::string t = b.Render();
  EXPECT_FALSE(Has(t, "sentinel_scans ")) << t;
  EXPECT_FALSE(Has(t, "bad-name")) << t;
  EXPECT_TRUE(Has(t, "sentinel_metrics_invalid_total 4\n")) << t;
}

TEST(MetricsBuilder, HistogramIsCumulative) {
  Histogram h({0.1, 1, 10});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(0.5);
  h.Observe(100);
  MetricsBuilder b;
  b.Histogram("scan_duration_seconds", "Scan duration.", h.Snapshot(), {{"kind", "full"}});
  const std::string t = b.Render();
  EXPECT_TRUE(Has(t, "sentinel_scan_duration_seconds_bucket{kind=\"full\",le=\"0.1\"} 1\n")) << t;
  EXPECT_TRUE(Has(t, "sentinel_scan_duration_seconds_bucket{kind=\"full\",le=\"1\"} 3\n")) << t;
  EXPECT_TRUE(Has(t, "sentinel_scan_duration_seconds_bucket{kind=\"full\",le=\"10\"} 3\n")) << t;
  EXPECT_TRUE(Has(t, "sentinel_scan_duration_seconds_bucket{kind=\"full\",le=\"+Inf\"} 4\n")) << t;
  EXPECT_TRUE(Has(t, "sentinel_scan_duration_seconds_sum{kind=\"full\"} 101.05\n")) << t;
  EXPECT_TRUE(Has(t, "sentinel_scan_duration_seconds_count{kind=\"full\"} 4\n")) << t;
}

TEST(MetricsBuilder, FormatsValues) {
  EXPECT_EQ(MetricsBuilder::FormatValue(3), "3");
  EXPECT_EQ(MetricsBuilder::FormatValue(0.25), "0.25");
  EXPECT_EQ(MetricsBuilder::FormatValue(-2), "-2");
  EXPECT_EQ(MetricsBuilder::FormatValue(1795897870.123), "1795897870.123");
}

}  // namespace
}  // namespace sentinel::telemetry
