#include "sentinel/webui/read_deadline.h"

#include <gtest/gtest.h>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::webui {
namespace {

TEST(ReadDeadlineTest, AReadPastItsBudgetFailsAndTheConnectionStaysUsable) {
  testing::TempDir dir;
  auto db = storage::Database::Open(dir.File("x.db"), storage::OpenMode::kReadWrite);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  const char* endless =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
  {
    ReadDeadline deadline(**db, /*budget_ms=*/50);
    auto r = (*db)->QueryInt(endless);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  }
  // Without a deadline the connection answers again (and is not interrupted).
  auto one = (*db)->QueryInt("SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(*one, 1);
  {
    ReadDeadline deadline(**db, /*budget_ms=*/10000);
    auto bounded = (*db)->QueryInt(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
        "SELECT count(*) FROM n");
    ASSERT_TRUE(bounded.ok()) << bounded.status().ToString();
    EXPECT_EQ(*bounded, 1000);
  }
}

}  // namespace
}  // namespace sentinel::webui
