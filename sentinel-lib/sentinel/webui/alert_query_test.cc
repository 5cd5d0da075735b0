#include "sentinel/webui/alert_query.h"

#include <gtest/gtest.h>

namespace sentinel::webui {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

TEST(AlertQueryTest, DefaultsWhenNothingIsGiven) {
  for (std::string raw : {"", "severity=&rule=&status=&since=&until=&q=&limit=&offset="}) {
    ParsedAlertQuery p = ParseAlertQuery(raw, false, kNow);
    ASSERT_FALSE(p.error) << p.error->message;
    EXPECT_FALSE(p.query.min_severity);
    EXPECT_FALSE(p.query.rule);
    EXPECT_FALSE(p.query.text);
    EXPECT_EQ(p.query.limit, kDefaultAlertLimit);
    EXPECT_EQ(p.query.offset, 0);
  }
}

TEST(AlertQueryTest, EveryFilterIsRead) {
  ParsedAlertQuery p = ParseAlertQuery(
      "severity=high&rule=proc-exec-from-tmp&status=open&since=2h&until=1h&q=%3Cscript%3E&limit=500&offset="
      "100",
      false, kNow);
  ASSERT_FALSE(p.error) << p.error->message;
  EXPECT_EQ(p.query.min_severity, models::Severity::kHigh);
  EXPECT_EQ(p.query.rule, "proc-exec-from-tmp");
  EXPECT_EQ(p.query.status, "open");
  EXPECT_EQ(p.query.since_ms, kNow - 7'200'000);
  EXPECT_EQ(p.query.until_ms, kNow - 3'600'000);
  EXPECT_EQ(p.query.text, "<script>");
  EXPECT_EQ(p.query.limit, 500);
  EXPECT_EQ(p.query.offset, 100);
  EXPECT_EQ(SeveritiesFrom(models::Severity::kHigh), (std::vector<std::string>{"high", "critical"}));
}

TEST(AlertQueryTest, ABadValueIsNamed) {
  const std::pair<std::string, std::string> cases[] = {
      {"severity=urgent", "severity"},
      {"rule=Bad%20Rule", "rule"},
      {"status=gone", "status"},
      {"since=someday", "since"},
      {"until=x", "until"},
      {"since=1h&until=2h", "until"},
      {"limit=0", "limit"},
      {"limit=501", "limit"},
      {"limit=ten", "limit"},
      {"offset=-1", "offset"},
      {"offset=100001", "offset"},
      {"host=a", "host"},
      {"q=" + std::string(kMaxSearchBytes + 1, 'x'), "q"},
  };
  for (const auto& [raw, name] : cases) {
    ParsedAlertQuery p = ParseAlertQuery(raw, false, kNow);
    ASSERT_TRUE(p.error) << raw;
    EXPECT_EQ(p.error->parameter, name) << raw << ": " << p.error->message;
    EXPECT_EQ(p.error->message.rfind(name + ": ", 0), 0u) << p.error->message;
  }
  // The console takes a host, checked as a host id.
  EXPECT_FALSE(ParseAlertQuery("host=web-01", true, kNow).error);
  EXPECT_EQ(ParseAlertQuery("host=web.01", true, kNow).error->parameter, "host");
}

TEST(AlertQueryTest, SearchTextMatchesLiterally) {
  EXPECT_EQ(ContainsPattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
  EXPECT_EQ(ContainsPattern(""), "%%");
}

TEST(AlertQueryTest, AlertPaths) {
  auto a = MatchAlertPath("/api/alerts/12");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->id_text, "12");
  EXPECT_EQ(a->rest, "");
  auto t = MatchAlertPath("/api/alerts/12/tree");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->id_text, "12");
  EXPECT_EQ(t->rest, "/tree");
  EXPECT_FALSE(MatchAlertPath("/api/alerts/"));
  EXPECT_FALSE(MatchAlertPath("/api/alerts"));
  EXPECT_FALSE(MatchAlertPath("/api/hosts/1"));
}

}  // namespace
}  // namespace sentinel::webui
