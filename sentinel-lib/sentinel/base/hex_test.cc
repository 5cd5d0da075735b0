#include "sentinel/base/hex.h"

#include <array>

#include <gtest/gtest.h>

namespace sentinel {
namespace {

TEST(HexTest, RoundTrip) {
  std::vector<uint8_t> b{0x00, 0xab, 0xff};
  EXPECT_EQ(ToHex(b), "00abff");
  EXPECT_EQ(ToHex(std::string_view("\x00\xab\xff", 3)), "00abff");
  EXPECT_EQ(*FromHex("00ABff"), b);
  EXPECT_EQ(*FromHex(""), std::vector<uint8_t>{});
  EXPECT_FALSE(FromHex("0g"));
  EXPECT_FALSE(FromHex("abc"));
  std::string out = "x=";
  AppendHex(out, "\x01\x7f");
  EXPECT_EQ(out, "x=017f");
}

TEST(HexTest, StrictLowercaseDecodingRefusesAnyOtherSpelling) {
  std::array<uint8_t, 2> out{};
  EXPECT_TRUE(FromLowerHex("0aff", out));
  EXPECT_EQ(out, (std::array<uint8_t, 2>{0x0a, 0xff}));
  EXPECT_FALSE(FromLowerHex("0AFF", out)) << "uppercase is another spelling";
  EXPECT_FALSE(FromLowerHex("0aff00", out)) << "too long";
  EXPECT_FALSE(FromLowerHex("0af", out)) << "too short";
  EXPECT_FALSE(FromLowerHex("0a f", out));
}

TEST(HexTest, EscapePieces) {
  std::string out;
  AppendHexByteEscape(out, 0x1b);
  AppendHexByteEscape(out, 0x9b);
  EXPECT_EQ(out, "\\x1b\\x9b");
  out.clear();
  AppendHexDigits(out, 0x202e, 4);
  AppendHexDigits(out, 0xe0041, 8);
  EXPECT_EQ(out, "202e000e0041");
}

}  // namespace
}  // namespace sentinel
