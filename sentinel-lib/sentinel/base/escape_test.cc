#include "sentinel/base/escape.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sentinel {
namespace {

// The hostile names of issue 14: an ESC sequence, C1 CSI (raw byte and
// encoded), NEL forging a second line, bidi override/isolate, line
// separator, and invalid UTF-8.
const std::string kEscClear = "a\x1b[2Jb";
const std::string kC1CsiEncoded =
    "a\xc2\x9b"
    "31mb";
const std::string kC1CsiRaw =
    "a\x9b"
    "31mb";
const std::string kNelForgery =
    "x\xc2\x85"
    "ALERT CRITICAL fake";
const std::string kRlo =
    "evil\xe2\x80\xae"
    "gpj.exe";
const std::string kLineSep =
    "a\xe2\x80\xa8"
    "b";
const std::string kIsolate =
    "a\xe2\x81\xa6"
    "b";

TEST(EscapeTextTest, EscapesEveryDangerousCodePoint) {
  EXPECT_EQ(EscapeText(kEscClear), "a\\x1b[2Jb");
  EXPECT_EQ(EscapeText(kC1CsiEncoded), "a\\u009b31mb");
  EXPECT_EQ(EscapeText(kC1CsiRaw), "a\\x9b31mb");
  EXPECT_EQ(EscapeText(kNelForgery), "x\\u0085ALERT CRITICAL fake");
  EXPECT_EQ(EscapeText(kRlo), "evil\\u202egpj.exe");
  EXPECT_EQ(EscapeText(kLineSep), "a\\u2028b");
  EXPECT_EQ(EscapeText("a\xe2\x80\xa9"
                       "b"),
            "a\\u2029b");
  EXPECT_EQ(EscapeText(kIsolate), "a\\u2066b");
  EXPECT_EQ(EscapeText("\xd8\x9c\xe2\x80\x8e\xe2\x80\x8f\xe2\x81\xa9"), "\\u061c\\u200e\\u200f\\u2069");
  EXPECT_EQ(EscapeText("\n\r\t\x7f"), "\\n\\r\\t\\x7f");
  EXPECT_EQ(EscapeText("\xf3\xa0\x80\x81"), "\\U000e0001");  // tag character
  EXPECT_EQ(EscapeText("bad\xff\xc0\xafz"), "bad\\xff\\xc0\\xafz");
}

TEST(EscapeTextTest, LeavesOrdinaryTextAlone) {
  const std::string text = "sshd: root@pts/0 caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \\x1b \xf0\x9f\x98\x80";
  EXPECT_EQ(EscapeText(text), text);
}

TEST(EscapeTextTest, OutputHasNoControlOrBidiBytes) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  all += kC1CsiEncoded + kNelForgery + kRlo + kLineSep + kIsolate;
  const std::string out = EscapeText(all);
  for (size_t i = 0; i < out.size();) {
    char32_t cp = 0;
    size_t n = DecodeUtf8(out, i, &cp);
    ASSERT_NE(n, 0u) << "invalid UTF-8 at " << i;
    EXPECT_FALSE(IsUnsafeCodePoint(cp)) << "U+" << std::hex << static_cast<uint32_t>(cp);
    i += n;
  }
}

TEST(JsonStringTest, EscapesUnsafeCodePointsAndStaysValid) {
  std::string out;
  AppendJsonString(out, kNelForgery + kRlo + kEscClear + "\"\\" + "bad\xff");
  EXPECT_EQ(out, "\"x\\u0085ALERT CRITICAL fakeevil\\u202egpj.exea\\u001b[2Jb\\\"\\\\bad\xEF\xBF\xBD\"");
  EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(),
            kNelForgery + kRlo + kEscClear + "\"\\bad\xEF\xBF\xBD");
}

TEST(HardenJsonTextTest, EscapesRawCodePointsInsideStringsOnly) {
  nlohmann::ordered_json j;
  j["name"] = kNelForgery;
  j["exe"] = kRlo + " \"quoted\" \\";
  j["n"] = -5;
  j["nested"] = {{"k\xe2\x80\xa8", kIsolate + "\x7f"}};
  const std::string dumped = j.dump();
  const std::string hardened = HardenJsonText(dumped);
  EXPECT_EQ(hardened,
            "{\"name\":\"x\\u0085ALERT CRITICAL fake\",\"exe\":\"evil\\u202egpj.exe \\\"quoted\\\" \\\\\","
            "\"n\":-5,\"nested\":{\"k\\u2028\":\"a\\u2066b\\u007f\"}}");
  EXPECT_EQ(nlohmann::ordered_json::parse(hardened), j);  // the same value
  EXPECT_EQ(HardenJsonText("{\"a\":\"ok \xc3\xa9\"}"), "{\"a\":\"ok \xc3\xa9\"}");
  EXPECT_EQ(HardenJsonText("[\"x\xff\"]"), "[\"x\\ufffd\"]");
}

TEST(CsvFormulaTest, OwaspLeadingCharacters) {
  for (std::string_view cell : {"=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"}) {
    EXPECT_TRUE(CsvCellNeedsNeutralising(cell)) << cell;
    EXPECT_EQ(NeutraliseCsvFormula(cell), "'" + std::string(cell));
  }
  for (std::string_view cell : {"", "bash", " =x", "'=x", "1-2"}) {
    EXPECT_FALSE(CsvCellNeedsNeutralising(cell)) << cell;
    EXPECT_EQ(NeutraliseCsvFormula(cell), cell);
  }
}

TEST(RedactUrlTest, KeepsOnlySchemeHostAndPort) {
  EXPECT_EQ(RedactUrl("https://user:pa55@hooks.example.com:8443/path?token=SECRET#f"),
            "https://hooks.example.com:8443/\xE2\x80\xA6");
  EXPECT_EQ(RedactUrl("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/\xE2\x80\xA6");
  EXPECT_EQ(RedactUrl("https://discord.com/api/webhooks/123/TOKEN"), "https://discord.com/\xE2\x80\xA6");
  EXPECT_EQ(RedactUrl("smtp://alice:hunter2@mail.example.org:587"),
            "smtp://mail.example.org:587/\xE2\x80\xA6");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:9/"), "http://127.0.0.1:9/");
  EXPECT_EQ(RedactUrl("http://[::1]:80"), "http://[::1]:80");
  EXPECT_EQ(RedactUrl("not a url SECRET"), "<url>");
  EXPECT_EQ(RedactUrl("https://user:SECRET@"), "<url>");
}

TEST(RedactUrlTest, ScrubRemovesEveryPieceFromLibraryMessages) {
  const std::string url = "http://user:PASSWORD@127.0.0.1:9/hook/TOKENPATH?token=QUERYSECRET";
  const std::string msg = "POST " + url + ": Failed to connect (URL " + url +
                          ", user user:PASSWORD, path /hook/TOKENPATH, query token=QUERYSECRET)";
  const std::string out = ScrubUrl(msg, url);
  for (std::string_view secret : {"PASSWORD", "TOKENPATH", "QUERYSECRET"}) {
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " in " << out;
  }
  EXPECT_NE(out.find("http://127.0.0.1:9/"), std::string::npos) << out;
}

TEST(Utf8PrefixTest, NeverCutsASequence) {
  EXPECT_EQ(Utf8Prefix("ab\xe2\x80\xa6", 4), "ab");
  EXPECT_EQ(Utf8Prefix("ab\xe2\x80\xa6", 5), "ab\xe2\x80\xa6");
  EXPECT_EQ(Utf8Prefix("abc", 2), "ab");
  EXPECT_EQ(Utf8Prefix("abc", 0), "");
}

}  // namespace
}  // namespace sentinel
