#include "sentinel/alertstore/delivery_store.h"

#include <gtest/gtest.h>

#include "sentinel/alertstore/retention.h"
#include "sentinel/alertstore/test_util.h"
#include "sentinel/models/severity.h"
#include "sentinel/storage/migrations.h"

namespace sentinel::alerting {
namespace {

using internal::TempEventStore;

std::unique_ptr<DeliveryStore> OpenStore(const TempEventStore& t) {
  auto s = DeliveryStore::Open(t.path(), 5000);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(DeliveryStoreTest, EnqueuesEachAlertOncePerMatchingSink) {
  TempEventStore t;
  t.InsertAlerts(3, "low");
  t.InsertAlerts(2, "critical");
  auto store = OpenStore(t);
  std::vector<SinkRoute> routes = {{"all", std::nullopt}, {"urgent", models::Severity::kHigh}};
  auto first = store->EnqueueNewAlerts(routes, 1000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ((*first)["all"], 5);
  EXPECT_EQ((*first)["urgent"], 2);
  // The cursor moved: nothing twice.
  auto again = store->EnqueueNewAlerts(routes, 2000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(t.Count("SELECT count(*) FROM delivery_queue"), 7);
  t.InsertAlerts(1, "medium");
  auto more = store->EnqueueNewAlerts(routes, 3000);
  ASSERT_TRUE(more.ok());
  EXPECT_EQ((*more)["all"], 1);
  EXPECT_EQ((*more)["urgent"], 0);
}

TEST(DeliveryStoreTest, ExistingAlertsAreNotRedeliveredAfterUpgrade) {
  // Migration 3 starts the cursor at the newest alert of the time: history is not re-sent.
  TempEventStore t;
  EXPECT_EQ(t.Count("SELECT value FROM system_metadata WHERE key = 'delivery_enqueued_through_alert_id'"), 0);
  EXPECT_EQ(t.Count("SELECT max(version) FROM schema_migrations"),
            storage::LatestSchemaVersion(storage::DatabaseKind::kEvents));
}

TEST(DeliveryStoreTest, AttemptLifecycleAndDeadLetters) {
  TempEventStore t;
  t.InsertAlerts(3);
  auto store = OpenStore(t);
  ASSERT_TRUE(store->EnqueueNewAlerts({{"s", std::nullopt}}, 1000).ok());
  auto pending = store->Pending("s", 10);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 3u);
  std::vector<QueueEntry> batch = *pending;
  ASSERT_TRUE(store->BeginAttempts(batch, 2000).ok());
  EXPECT_EQ(t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'in_flight'"), 3);
  for (const auto& e : batch) {
    EXPECT_EQ(e.attempts, 1);
    EXPECT_GT(e.delivery_id, 0);
  }
  std::vector<AttemptOutcome> outcomes(3);
  outcomes[0] = {.status = AttemptStatus::kSuccess, .duration_ms = 5, .http_status = 200};
  outcomes[1] = {.status = AttemptStatus::kFailure,
                 .error = "HTTP 500",
                 .duration_ms = 7,
                 .http_status = 500,
                 .next_attempt_ms = 9000};
  outcomes[2] = {
      .status = AttemptStatus::kFailure, .error = "HTTP 400", .http_status = 400, .payload = "{\"id\":3}"};
  ASSERT_TRUE(store->FinishAttempts(batch, outcomes, 3000).ok());
  EXPECT_EQ(t.Count("SELECT count(*) FROM delivery_queue"), 1);
  EXPECT_EQ(t.Count("SELECT next_attempt_ms FROM delivery_queue"), 9000);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'success' AND http_status = 200"),
            1);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'failure'"), 2);
  EXPECT_EQ(
      t.Count("SELECT attempts FROM dead_letter_queue WHERE alert_id = " + std::to_string(batch[2].alert_id)),
      1);
  auto dlq = store->DeadLetterCount();
  ASSERT_TRUE(dlq.ok());
  EXPECT_EQ(*dlq, 1);

  // A retried dead letter that succeeds leaves the DLQ.
  auto retried = RetryDeadLetters(t.db(), {}, "", 4000);
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_EQ(retried->queued, 1);
  auto letters = ListDeadLetters(t.db(), "");
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_TRUE((*letters)[0].queued);
  EXPECT_EQ((*letters)[0].last_error, "HTTP 400");
  auto again = store->Pending("s", 10);
  ASSERT_TRUE(again.ok());
  std::vector<QueueEntry> second;
  for (const auto& e : *again) {
    if (e.alert_id == batch[2].alert_id) second.push_back(e);
  }
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempts, 0);  // a fresh budget
  ASSERT_TRUE(store->BeginAttempts(second, 5000).ok());
  ASSERT_TRUE(store->FinishAttempts(second, {AttemptOutcome{.status = AttemptStatus::kSuccess}}, 5000).ok());
  EXPECT_EQ(t.Count("SELECT count(*) FROM dead_letter_queue"), 0);
  EXPECT_FALSE(RetryDeadLetters(t.db(), {424242}, "", 6000).ok());
}

TEST(DeliveryStoreTest, NotAttemptedLeavesNoTrace) {
  TempEventStore t;
  t.InsertAlerts(1);
  auto store = OpenStore(t);
  ASSERT_TRUE(store->EnqueueNewAlerts({{"s", std::nullopt}}, 1000).ok());
  auto batch = *store->Pending("s", 10);
  ASSERT_TRUE(store->BeginAttempts(batch, 2000).ok());
  ASSERT_TRUE(
      store->FinishAttempts(batch, {AttemptOutcome{.status = AttemptStatus::kNotAttempted}}, 2000).ok());
  EXPECT_EQ(t.Count("SELECT count(*) FROM alert_deliveries"), 0);
  EXPECT_EQ(t.Count("SELECT attempts FROM delivery_queue"), 0);
}

TEST(DeliveryStoreTest, RecoverMarksInterruptedAttemptsAndOrphans) {
  TempEventStore t;
  t.InsertAlerts(2);
  auto store = OpenStore(t);
  ASSERT_TRUE(store->EnqueueNewAlerts({{"kept", std::nullopt}, {"gone", std::nullopt}}, 1000).ok());
  auto batch = *store->Pending("kept", 10);
  ASSERT_TRUE(store->BeginAttempts(batch, 2000).ok());  // ... and the agent dies here
  auto report = store->Recover({"kept"}, 3000);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->unknown, 2);
  EXPECT_EQ(report->orphaned, 2);
  EXPECT_EQ(report->pending["kept"], 2);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'unknown'"), 2);
  EXPECT_EQ(t.Count("SELECT count(*) FROM dead_letter_queue WHERE sink_name = 'gone' AND "
                    "last_error = 'sink no longer configured'"),
            2);
}

TEST(DeliveryStoreTest, RetentionKeepsAlertsWaitingForDelivery) {
  TempEventStore t;
  t.InsertAlerts(1);
  auto store = OpenStore(t);
  ASSERT_TRUE(store->EnqueueNewAlerts({{"s", std::nullopt}}, 1000).ok());
  ASSERT_TRUE(t.db().Exec("UPDATE alerts SET alert_time = 0").ok());
  auto r = ApplyAlertRetention(t.db(), 1'800'000'000'000, 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(t.Count("SELECT count(*) FROM alerts"), 1);
}

}  // namespace
}  // namespace sentinel::alerting
