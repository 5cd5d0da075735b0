#include "sentinel/base/strings.h"

#include <gtest/gtest.h>

namespace sentinel {
namespace {

TEST(StringsTest, SplitJoinTrim) {
  EXPECT_EQ(Split("a__b", '_'), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(Join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(Trim("  x y \n"), "x y");
  EXPECT_EQ(ToLower("ABC_d"), "abc_d");
}

TEST(StringsTest, ParseIntIsStrict) {
  EXPECT_EQ(ParseInt64("42"), 42);
  EXPECT_EQ(ParseInt64("-7"), -7);
  EXPECT_EQ(ParseInt64("+7"), 7);
  EXPECT_FALSE(ParseInt64("fast"));
  EXPECT_FALSE(ParseInt64("12x"));
  EXPECT_FALSE(ParseInt64(" 12"));
  EXPECT_FALSE(ParseInt64("+"));
  EXPECT_FALSE(ParseInt64("99999999999999999999"));
  EXPECT_EQ(ParseDouble("1.5"), 1.5);
  EXPECT_FALSE(ParseDouble("nan"));
  EXPECT_FALSE(ParseDouble("1.5s"));
}

TEST(StringsTest, Utf8) {
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo"));
  EXPECT_FALSE(IsValidUtf8("\xFF\xFE"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));  // overlong '/'
  EXPECT_EQ(SanitizeUtf8("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(QuoteForMessage("fa\"st\n"), "\"fa\\\"st\\x0a\"");
  EXPECT_EQ(QuoteForMessage("a\xc2\x85"
                            "b\xe2\x80\xae\x9b"),
            "\"a\\u0085b\\u202e\\x9b\"");
}

}  // namespace
}  // namespace sentinel
