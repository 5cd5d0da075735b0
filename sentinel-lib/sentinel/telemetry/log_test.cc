#include "sentinel/telemetry/log.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace sentinel::telemetry {
namespace {

TEST(LogTest, JsonLineHasRequiredKeys) {
  std::string line = FormatLogLine(0, LogLevel::kWarn, "procmond", "scan failed",
                                   {{"scan_id", 4}, {"msg", "shadowed"}}, LogFormat::kJson);
  ASSERT_EQ(line.back(), '\n');
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["component"], "procmond");
  EXPECT_EQ(j["msg"], "scan failed");
  EXPECT_EQ(j["scan_id"], 4);
  EXPECT_EQ(j["field_msg"], "shadowed");
}

TEST(LogTest, HostileValuesStayOnOneLine) {
  std::string evil = "name\n{\"level\":\"info\"}\x1b[31m\xff";
  std::string json = FormatLogLine(0, LogLevel::kInfo, "c", evil, {{"name", evil}}, LogFormat::kJson);
  EXPECT_EQ(json.find('\n'), json.size() - 1);
  EXPECT_TRUE(nlohmann::json::accept(json));
  std::string text = FormatLogLine(0, LogLevel::kInfo, "c", evil, {{"name", evil}}, LogFormat::kText);
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("INFO  c: name\\n"), std::string::npos);
}

// Issue 14: C1 (CSI U+009B, NEL U+0085), U+2028/9 and bidi controls reached
// the log raw in both formats; a process name could forge a second line for
// line-splitting readers or reverse the line on screen.
TEST(LogTest, C1SeparatorsAndBidiControlsAreEscapedInBothFormats) {
  const std::string evil =
      "x\xc2\x85"
      "ERROR fake\xc2\x9b"
      "2J\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xae\xe2\x81\xa6\x9b";
  const std::string text =
      FormatLogLine(0, LogLevel::kInfo, "c", evil, {{"name", evil}, {"list", {evil}}}, LogFormat::kText);
  EXPECT_EQ(text,
            "1970-01-01T00:00:00.000Z INFO  c: x\\u0085ERROR fake\\u009b2J\\u2028\\u2029\\u202e\\u2066\\x9b"
            " list=[\"x\\u0085ERROR fake\\u009b2J\\u2028\\u2029\\u202e\\u2066\xef\xbf\xbd\"]"
            " name=x\\u0085ERROR fake\\u009b2J\\u2028\\u2029\\u202e\\u2066\\x9b\n");
  const std::string json = FormatLogLine(0, LogLevel::kInfo, "c", evil, {{"name", evil}}, LogFormat::kJson);
  for (std::string_view raw :
       {"\xc2\x85", "\xc2\x9b", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xae", "\xe2\x81\xa6", "\x9b"}) {
    EXPECT_EQ(json.find(raw), std::string::npos) << json;
  }
  EXPECT_NE(json.find("\"msg\":\"x\\u0085ERROR fake\\u009b2J\\u2028\\u2029\\u202e\\u2066\xef\xbf\xbd\""),
            std::string::npos)
      << json;
  EXPECT_EQ(nlohmann::json::parse(json)["name"],
            "x\xc2\x85"
            "ERROR fake\xc2\x9b"
            "2J\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xae\xe2\x81\xa6\xef\xbf\xbd");
}

TEST(LogTest, LevelFiltering) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  InitLogging("t", LogLevel::kWarn, LogFormat::kJson, fds[1]);
  LogInfo("hidden");
  LogError("shown", {{"k", 1}});
  close(fds[1]);
  char buf[4096];
  ssize_t n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  ASSERT_GT(n, 0);
  std::string out(buf, static_cast<size_t>(n));
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("shown"), std::string::npos);
  InitLogging("t", LogLevel::kInfo, LogFormat::kJson, 2);
  EXPECT_FALSE(ParseLogLevel("loud").ok());
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_FALSE(ParseLogFormat("xml").ok());
}

}  // namespace
}  // namespace sentinel::telemetry
