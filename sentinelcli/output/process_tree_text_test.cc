#include "sentinelcli/output/process_tree_text.h"

#include <gtest/gtest.h>

#include <sstream>

#include "sentinelcli/output/internal/value_format.h"

namespace sentinel::cli {
namespace {

using nlohmann::ordered_json;

ordered_json Node(int64_t pid, int64_t start, ordered_json argv) {
  return {{"pid", pid},
          {"ppid", nullptr},
          {"start_time", start},
          {"name", "n"},
          {"exe_path", nullptr},
          {"command_line", std::move(argv)},
          {"user_id", 1000},
          {"user_name", "alice"},
          {"first_seen", start},
          {"last_seen", start},
          {"exited_at", nullptr},
          {"exit_code", nullptr},
          {"sources", {"event"}},
          {"execs", ordered_json::array()},
          {"alerts", ordered_json::array()},
          {"is_target", false},
          {"children", ordered_json::array()},
          {"children_omitted", 0}};
}

// init -> sh (two execs, exit 0) -> {curl (exit 0), target /tmp/x (exit 3, an alert)}, 2 more omitted.
ordered_json Tree() {
  ordered_json x = Node(702, 10'300, {"/tmp/d/x", "--beacon", "two words", ""});
  x["is_target"] = true;
  x["exit_code"] = 3;
  x["alerts"] = {{{"id", 12},
                  {"rule_id", "proc-exec-from-tmp"},
                  {"severity", "high"},
                  {"title", "t"},
                  {"alert_time", 10'350}}};
  ordered_json curl = Node(701, 10'010, {"curl", "-o", "/tmp/d/x"});
  curl["exit_code"] = 0;
  ordered_json sh = Node(700, 10'000, {"sh", "./stage.sh"});
  sh["exit_code"] = 0;
  sh["execs"] = {{{"time", 10'000}, {"exe_path", "/bin/sh"}, {"command_line", {"sh", "-c", "./stage.sh"}}},
                 {{"time", 10'005}, {"exe_path", "/bin/sh"}, {"command_line", {"sh", "./stage.sh"}}}};
  sh["children"] = {curl, x};
  sh["children_omitted"] = 2;
  ordered_json init = Node(1, 1'000, nullptr);
  init["name"] = "systemd";
  init["user_name"] = nullptr;
  init["user_id"] = 0;
  init["children"] = {sh};
  return {{"target", {{"pid", 702}, {"start_time", 10'300}}},
          {"at", nullptr},
          {"root", init},
          {"truncated", true}};
}

std::string Render(const ordered_json& tree, TerminalInfo term = {}) {
  std::ostringstream out;
  Status s = WriteProcessTreeText(out, tree, term);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out.str();
}

TEST(ProcessTreeTextTest, OneIndentedLinePerProcessWithExecsExitCodesAlertsAndTheTargetMarked) {
  EXPECT_EQ(Render(Tree()),
            "1970-01-01T00:00:01.000Z  pid 1  uid 0  [systemd]\n"
            "└─ 1970-01-01T00:00:10.000Z  pid 700  alice  exit 0  sh ./stage.sh\n"
            "   │  · exec 1970-01-01T00:00:10.000Z  sh -c ./stage.sh\n"
            "   │  · exec 1970-01-01T00:00:10.005Z  sh ./stage.sh\n"
            "   ├─ 1970-01-01T00:00:10.010Z  pid 701  alice  exit 0  curl -o /tmp/d/x\n"
            "   ├─ ▶ 1970-01-01T00:00:10.300Z  pid 702  alice  exit 3  /tmp/d/x --beacon 'two words' ''"
            "  [ALERT #12 high proc-exec-from-tmp]\n"
            "   └─ … 2 more children not shown\n"
            "(limits reached: some of the tree is not shown; the JSON form counts what was left out)\n");
}

TEST(ProcessTreeTextTest, HostileTextIsEscapedAndNothingRawReachesTheTerminal) {
  ordered_json tree = Tree();
  ordered_json& target = tree["root"]["children"][0]["children"][1];
  target["command_line"] = {"/tmp/\x1b[2Jx", "a\nALERT forged",
                            "\xe2\x80\xae"
                            "fdp.exe",
                            "bad\xff"};
  target["user_name"] = "ev\x1b]0;t\x07il";
  target["alerts"][0]["rule_id"] = "r\x1b[31m";
  const std::string out = Render(tree);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find("\nALERT forged"), std::string::npos) << out;
  EXPECT_EQ(out.find("\xe2\x80\xae"), std::string::npos) << out;
  EXPECT_NE(out.find("/tmp/\\x1b[2Jx 'a\\nALERT forged' \\u202efdp.exe bad\\xff"), std::string::npos) << out;
  EXPECT_NE(out.find("ev\\x1b]0;t\\x07il"), std::string::npos) << out;
  EXPECT_NE(out.find("r\\x1b[31m]"), std::string::npos) << out;
}

TEST(ProcessTreeTextTest, ColourOnlyWhenAllowedAndBySeverity) {
  EXPECT_EQ(Render(Tree()).find('\x1b'), std::string::npos);
  TerminalInfo colour;
  colour.color = true;
  const std::string out = Render(Tree(), colour);
  EXPECT_NE(out.find("\x1b[31m[ALERT #12 high proc-exec-from-tmp]\x1b[0m"), std::string::npos) << out;
  EXPECT_NE(out.find("\x1b[1m▶ "), std::string::npos) << out;
  ordered_json critical = Tree();
  critical["root"]["children"][0]["children"][1]["alerts"][0]["severity"] = "critical";
  EXPECT_NE(Render(critical, colour).find("\x1b[1;31m[ALERT #12 critical"), std::string::npos);
}

TEST(ProcessTreeTextTest, LongArgumentsAreCutToTheTerminalWidthNeverTheRest) {
  ordered_json tree = Tree();
  tree["root"]["children"][0]["children"][1]["command_line"] = {"/tmp/d/x", std::string(300, 'A')};
  TerminalInfo narrow;
  narrow.width = 120;
  const std::string out = Render(tree, narrow);
  std::istringstream lines(out);
  std::string line;
  bool seen_target = false;
  while (std::getline(lines, line)) {
    EXPECT_LE(internal::DisplayWidth(line), 120u) << line;
    if (line.find("pid 702") == std::string::npos) continue;
    seen_target = true;
    EXPECT_NE(line.find("AAA…  [ALERT #12 high proc-exec-from-tmp]"), std::string::npos) << line;
  }
  EXPECT_TRUE(seen_target) << out;
  EXPECT_NE(Render(tree).find(std::string(300, 'A')), std::string::npos) << "no width: nothing is cut";
}

TEST(ProcessTreeTextTest, RefusesADocumentWithoutARoot) {
  std::ostringstream out;
  EXPECT_EQ(WriteProcessTreeText(out, ordered_json{{"target", 1}}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace sentinel::cli
