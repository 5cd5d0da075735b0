#include "sentinel/fleet/subjects.h"

#include <gtest/gtest.h>

namespace sentinel::fleet {
namespace {

TEST(SubjectsTest, AlertSubjectAndMsgIdCarryTheHostId) {
  EXPECT_EQ(AlertSubject("web-1"), "sentineld.alerts.web-1");
  EXPECT_EQ(AlertMsgId("web-1", 42), "web-1:42");
  EXPECT_EQ(QuerySubject("web_2"), "sentineld.query.web_2");
}

TEST(SubjectsTest, HostIdIsOneSubjectToken) {
  EXPECT_TRUE(IsValidHostId("0123abcdEF_-"));
  EXPECT_FALSE(IsValidHostId(""));
  EXPECT_FALSE(IsValidHostId("a.b"));
  EXPECT_FALSE(IsValidHostId("a*"));
  EXPECT_FALSE(IsValidHostId("a>"));
  EXPECT_FALSE(IsValidHostId("a b"));
  EXPECT_FALSE(IsValidHostId(std::string(65, 'a')));
  EXPECT_TRUE(IsValidHostId(std::string(64, 'a')));
}

}  // namespace
}  // namespace sentinel::fleet
