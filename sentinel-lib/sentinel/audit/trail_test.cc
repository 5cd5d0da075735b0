#include "sentinel/audit/trail.h"

#include <gtest/gtest.h>

#include <sqlite3.h>

#include "sentinel/audit/verify.h"
#include "sentinel/storage/sqlite.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::audit {
namespace {

TEST(AuditTrailTest, RecordsAChainedEntryPerEvent) {
  testing::TempDir dir;
  auto trail = AuditTrail::Open("procmond", {dir.File("audit.db"), 1000});
  ASSERT_TRUE(trail.ok()) << trail.status().message();
  (*trail)->Record("component_start", {{"pid", 42}});
  (*trail)->Record("config_loaded", {{"hash", "abc"}});
  // A hostile, non-UTF-8 name is still recorded (escaped), not lost.
  (*trail)->Record("rule_rejected", {{"file", std::string("bad\xff.yaml")}});
  EXPECT_EQ((*trail)->recorded(), 3);
  EXPECT_EQ((*trail)->failures(), 0);
  auto v = VerifyLedgerFile(dir.File("audit.db"));
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_TRUE(v->intact()) << v->detail;
  EXPECT_EQ(v->entries_total, 3);
}

TEST(AuditTrailTest, ALockedLedgerLosesNothing) {
  testing::TempDir dir;
  auto trail = AuditTrail::Open("sentinelagent", {dir.File("audit.db"), 50});
  ASSERT_TRUE(trail.ok());
  (*trail)->Record("component_start", {});
  // Another writer holds the write lock longer than the busy timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("audit.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  (*trail)->Record("alert_created", {{"id", 1}});
  EXPECT_EQ((*trail)->failures(), 1);
  EXPECT_EQ((*trail)->recorded(), 1);
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  (*trail)->Record("alert_created", {{"id", 2}});
  EXPECT_EQ((*trail)->recorded(), 3);
  auto v = VerifyLedgerFile(dir.File("audit.db"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->intact()) << v->detail;
  EXPECT_EQ(v->entries_total, 3);
}

TEST(AuditTrailTest, ADroppedBacklogIsCountedAndRecordedInTheLedger) {
  // Today's trail dropped its oldest pending entries silently as far as the ledger goes: after
  // the outage the chain was intact and nothing in it said that entries were missing.
  testing::TempDir dir;
  auto trail = AuditTrail::Open("sentinelagent", {dir.File("audit.db"), 20}, /*max_pending=*/5);
  ASSERT_TRUE(trail.ok()) << trail.status().message();
  (*trail)->Record("component_start", {});
  const int64_t dropped_before = AuditEntriesDroppedTotal();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("audit.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  for (int i = 1; i <= 12; ++i) (*trail)->Record("alert_created", {{"id", i}});
  EXPECT_EQ((*trail)->dropped(), 7);
  EXPECT_EQ((*trail)->dropped_unreported(), 7);
  EXPECT_EQ(AuditEntriesDroppedTotal() - dropped_before, 7);
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);

  (*trail)->Record("alert_created", {{"id", 13}});
  EXPECT_EQ((*trail)->dropped_unreported(), 0);
  EXPECT_EQ((*trail)->dropped(), 7);
  auto v = VerifyLedgerFile(dir.File("audit.db"));
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_TRUE(v->intact()) << v->detail;
  // component_start, the drop record, the 5 kept (ids 8..12) and id 13.
  EXPECT_EQ(v->entries_total, 8);

  auto db = storage::Database::Open(dir.File("audit.db"), storage::OpenMode::kReadOnly);
  ASSERT_TRUE(db.ok());
  auto st = (*db)->Prepare("SELECT action, event_data FROM audit_ledger ORDER BY sequence");
  ASSERT_TRUE(st.ok());
  std::vector<std::pair<std::string, nlohmann::json>> rows;
  while (true) {
    auto row = st->Step();
    ASSERT_TRUE(row.ok());
    if (!*row) break;
    rows.emplace_back(st->ColumnText(0), nlohmann::json::parse(st->ColumnText(1)));
  }
  ASSERT_EQ(rows.size(), 8u);
  EXPECT_EQ(rows[0].first, "component_start");
  EXPECT_EQ(rows[1].first, "audit_entries_dropped");
  EXPECT_EQ(rows[1].second.value("count", 0), 7);
  EXPECT_EQ(rows[1].second.value("max_pending", 0), 5);
  EXPECT_LE(rows[1].second.value("first_dropped_ms", int64_t{0}),
            rows[1].second.value("last_dropped_ms", int64_t{0}));
  for (size_t i = 2; i < 7; ++i) {
    EXPECT_EQ(rows[i].first, "alert_created");
    EXPECT_EQ(rows[i].second.value("id", 0), static_cast<int>(i) + 6) << "the oldest were dropped";
  }
  EXPECT_EQ(rows[7].second.value("id", 0), 13);

  // A later append records no second drop entry.
  (*trail)->Record("alert_created", {{"id", 14}});
  v = VerifyLedgerFile(dir.File("audit.db"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->entries_total, 9);
}

TEST(AuditTrailTest, DisabledTrailRecordsNothing) {
  auto trail = AuditTrail::Disabled("sentinelcli", "test");
  EXPECT_FALSE(trail->enabled());
  trail->Record("query_executed", {{"sql", "SELECT 1"}});
  EXPECT_EQ(trail->recorded(), 0);
}

}  // namespace
}  // namespace sentinel::audit
