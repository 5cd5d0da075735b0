#include "sentinel/audit/trail.h"

#include <gtest/gtest.h>

#include <sqlite3.h>

#include "sentinel/audit/verify.h"
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

TEST(AuditTrailTest, DisabledTrailRecordsNothing) {
  auto trail = AuditTrail::Disabled("sentinelcli", "test");
  EXPECT_FALSE(trail->enabled());
  trail->Record("query_executed", {{"sql", "SELECT 1"}});
  EXPECT_EQ(trail->recorded(), 0);
}

}  // namespace
}  // namespace sentinel::audit
