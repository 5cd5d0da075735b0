#include "sentinel/alertstore/retention.h"

#include <gtest/gtest.h>

#include <string>

#include "sentinel/alertstore/test_util.h"

namespace sentinel::alerting {
namespace {

using internal::TempEventStore;

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kNow = 1000 * kDay;

// Three alerts 400 days old (one delivered, one dead-lettered, one still
// queued) and one a day old, each with a delivery attempt.
void InsertAlerts(TempEventStore& t) {
  const std::string old = std::to_string(kNow - 400 * kDay);
  ASSERT_TRUE(t.db()
                  .Exec("INSERT INTO alerts(alert_time,rule_id,title,severity) VALUES(" + old +
                        ",'r','delivered','low'),(" + old + ",'r','dead-lettered','low'),(" + old +
                        ",'r','queued','low'),(" + std::to_string(kNow - kDay) + ",'r','new','low')")
                  .ok());
  ASSERT_TRUE(t.db()
                  .Exec("INSERT INTO alert_deliveries(alert_id,sink_name,attempt,attempted_at_ms,status)"
                        " SELECT id, 'soar', 1, alert_time, 'success' FROM alerts")
                  .ok());
  ASSERT_TRUE(t.db()
                  .Exec("INSERT INTO dead_letter_queue(alert_id,sink_name,failed_at,attempts,payload)"
                        " VALUES(2,'soar',0,3,'{}')")
                  .ok());
  ASSERT_TRUE(
      t.db()
          .Exec("INSERT INTO delivery_queue(alert_id,sink_name,attempts,next_attempt_ms,enqueued_at_ms)"
                " VALUES(3,'soar',1,0,0)")
          .ok());
}

TEST(AlertRetentionTest, DeletesOldAlertsWithTheirAttemptsKeepingUndelivered) {
  TempEventStore t;
  InsertAlerts(t);
  auto r = ApplyAlertRetention(t.db(), kNow, 365);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alerts WHERE title = 'delivered'"), 0);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alerts"), 3);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alert_deliveries"), 3);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alert_deliveries WHERE alert_id = 1"), 0);
}

TEST(AlertRetentionTest, InSmallChunksGivesTheSameResult) {
  TempEventStore t;
  InsertAlerts(t);
  ASSERT_TRUE(t.db()
                  .Exec("INSERT INTO alerts(alert_time,rule_id,title,severity) SELECT " +
                        std::to_string(kNow - 400 * kDay) + ", 'r', 'more', 'low' FROM alerts")
                  .ok());
  auto r = ApplyAlertRetention(t.db(), kNow, 365, /*chunk_rows=*/1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 5);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alerts"), 3);
}

TEST(AlertRetentionTest, RefusesANonPositiveWindowOrChunk) {
  TempEventStore t;
  EXPECT_EQ(ApplyAlertRetention(t.db(), kNow, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyAlertRetention(t.db(), kNow, 365, 0).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sentinel::alerting
