#include "sentinel/webui/alert_page.h"

#include <gtest/gtest.h>

#include <string>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::webui {
namespace {

// Ten rows; odd ids are rule "r-odd" on host "h1", even ids "r-even" on "h2".
class AlertPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = storage::Database::Open(dir_.File("a.db"), storage::OpenMode::kReadWrite);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Exec("CREATE TABLE a(id INTEGER PRIMARY KEY, host_id TEXT, rule_id TEXT, status TEXT, "
                          "t INTEGER, title TEXT)")
                    .ok());
    for (int i = 1; i <= 10; ++i) {
      const std::string odd = i % 2 ? "1" : "0";
      ASSERT_TRUE(db_->Exec("INSERT INTO a VALUES (" + std::to_string(i) + ", CASE WHEN " + odd +
                            " THEN 'h1' ELSE 'h2' END, CASE WHEN " + odd +
                            " THEN 'r-odd' ELSE 'r-even' END, " + "'open', " + std::to_string(i * 1000) +
                            ", 'title 50% of " + std::to_string(i) + "')")
                      .ok());
    }
  }

  // The ids of one page, filtered by every parameter `q` sets.
  nlohmann::ordered_json Page(const AlertQuery& q) {
    std::string where = "1";
    if (q.host) where += " AND host_id = :host";
    if (q.rule) where += " AND rule_id = :rule";
    if (q.status) where += " AND status = :status";
    if (q.since_ms) where += " AND t >= :since";
    if (q.until_ms) where += " AND t <= :until";
    if (q.text) where += " AND title LIKE :q ESCAPE '\\'";
    auto st =
        db_->Prepare("SELECT id FROM a WHERE " + where + " ORDER BY id DESC LIMIT :limit OFFSET :offset");
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_TRUE(BindAlertQuery(*st, q).ok());
    auto page = ReadAlertPage(
        *st, q, [](const storage::Statement& row) { return nlohmann::ordered_json(row.ColumnInt(0)); });
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? *page : nlohmann::ordered_json();
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Database> db_;
};

TEST_F(AlertPageTest, APageSaysWhetherAnotherFollows) {
  AlertQuery q;
  q.limit = 4;
  nlohmann::ordered_json first = Page(q);
  EXPECT_EQ(first["alerts"], nlohmann::ordered_json({10, 9, 8, 7}));
  EXPECT_EQ(first["limit"], 4);
  EXPECT_EQ(first["offset"], 0);
  EXPECT_EQ(first["more"], true);
  q.offset = 8;
  nlohmann::ordered_json last = Page(q);
  EXPECT_EQ(last["alerts"], nlohmann::ordered_json({2, 1}));
  EXPECT_EQ(last["more"], false);
  q.offset = 6;  // exactly the last four: no next page
  EXPECT_EQ(Page(q)["more"], false);
}

TEST_F(AlertPageTest, EveryFilterIsBoundByName) {
  AlertQuery q;
  q.host = "h1";
  q.rule = "r-odd";
  q.status = "open";
  q.since_ms = 3000;
  q.until_ms = 9000;
  EXPECT_EQ(Page(q)["alerts"], nlohmann::ordered_json({9, 7, 5, 3}));
  q.text = "50% of 7";  // % is the text, not a wildcard
  EXPECT_EQ(Page(q)["alerts"], nlohmann::ordered_json({7}));
  q.text = "5_% of";
  EXPECT_EQ(Page(q)["alerts"], nlohmann::ordered_json::array());
}

TEST(StoreReadFailureTest, ATimeoutAsksForNarrowerFiltersAnythingElseNamesTheStore) {
  HttpResponse late = StoreReadFailure(DeadlineExceededError("interrupted"), "event store");
  EXPECT_EQ(late.code, 503);
  EXPECT_NE(late.body.find("narrow the filters"), std::string::npos) << late.body;
  EXPECT_TRUE(StoreReadTimedOut(DeadlineExceededError("interrupted")));
  HttpResponse gone = StoreReadFailure(UnavailableError("no such file"), "console store");
  EXPECT_EQ(gone.code, 503);
  EXPECT_NE(gone.body.find("console store unavailable: no such file"), std::string::npos) << gone.body;
  EXPECT_FALSE(StoreReadTimedOut(UnavailableError("no such file")));
}

}  // namespace
}  // namespace sentinel::webui
