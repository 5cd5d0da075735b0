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
  EXPECT_NE(text.find("INFO  c: name\\x0a"), std::string::npos);
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
