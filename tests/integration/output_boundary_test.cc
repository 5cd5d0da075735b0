// The output boundary with the real binaries (issue 14, docs/security.md):
// attacker-controlled text reaches no reader raw, and sink URLs (which carry
// tokens) reach no error record (2., the webhook feature's:
// webhook_boundary_test.cc).
//
// 1. A real process whose executable has a hostile name (ESC, C1 CSI both
//    encoded and as a raw byte, NEL forging an "ALERT CRITICAL" line, bidi
//    override and isolate, a line separator) runs from a deleted file, so the
//    built-in proc-deleted-executable rule raises an alert naming it. The
//    agent's stdout sink line, its log, and `sentinelcli alerts list` (table,
//    csv, json), `alerts show` (key: value, json) and `alerts show --tree`
//    (text, json) are checked byte-wise:
//    none of those code points appears raw; their escapes do.
// 2. A webhook URL with user:password, a path token and ?token= pointing at a
//    closed loopback port: after the alert is dead-lettered, none of the
//    secrets appears in any byte of the event store, the audit ledger (and
//    their WAL files), the agent's log or `alerts dlq list`.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/testing/net.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The executable's file name. comm (the process name) keeps its first 15
// bytes, which cuts a UTF-8 sequence: invalid UTF-8 comes for free.
const std::string kHostileFile =
    "a\x1b[2J\xc2\x9b"
    "31m\xc2\x85"
    "ALERT CRITICAL fake\xe2\x80\xae\xe2\x81\xa6\xe2\x80\xa8\x9b"
    "z";

const std::vector<std::string> kRawDangers = {"\x1b",         "\xc2\x9b",     "\xc2\x85", "\xe2\x80\xae",
                                              "\xe2\x81\xa6", "\xe2\x80\xa8", "\x9b"};

// The store keeps text as valid UTF-8: the raw 0x9b byte becomes U+FFFD.
const std::string kStoredInvalid = "\xEF\xBF\xBD";
std::string Stored(std::string s) {
  for (size_t at = s.find('\x9b'); at != std::string::npos; at = s.find('\x9b', at)) {
    const bool continuation = at > 0 && static_cast<unsigned char>(s[at - 1]) == 0xc2;
    if (continuation) {
      ++at;
      continue;
    }
    s.replace(at, 1, kStoredInvalid);
  }
  return s;
}

void ExpectNoRawDanger(const std::string& what, const std::string& out) {
  for (const std::string& raw : kRawDangers) {
    EXPECT_EQ(out.find(raw), std::string::npos)
        << what << ": raw " << ::testing::PrintToString(raw) << " in " << ::testing::PrintToString(out);
  }
}

class OutputBoundaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = sb_.File("events.db");
    rules_dir_ = sb_.File("rules.d");
    ::mkdir(rules_dir_.c_str(), 0750);
  }
  std::vector<std::string> Env(std::vector<std::string> extra = {}) const {
    return DetectionEnv(sb_, db_, rules_dir_, std::move(extra));
  }
  RunResult Cli(const std::vector<std::string>& args) const { return sb_.Cli(args, Env()); }

  Sandbox sb_;
  std::string db_;
  std::string rules_dir_;
};

TEST_F(OutputBoundaryTest, HostileProcessNameReachesNoReaderRaw) {
  const std::string dir = sb_.File("bin");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const std::string copy = dir + "/" + kHostileFile;
  std::filesystem::copy_file("/bin/sleep", copy);
  ::chmod(copy.c_str(), 0755);
  Child child({copy, "600"}, {});
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::error_code ec;
        return std::filesystem::read_symlink("/proc/" + std::to_string(child.pid()) + "/exe", ec).string() ==
               copy;
      },
      10s));
  ::unlink(copy.c_str());  // running from a deleted file: proc-deleted-executable fires

  RunResult scan = sb_.Procmond({"--once"}, Env());
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  RunResult agent = sb_.Agent({"--once", "--no-collector"}, Env());
  ASSERT_EQ(agent.exit_code, 0) << agent.err;

  // The stdout sink's text line: exactly one line for the alert, escaped.
  const std::string pid = std::to_string(child.pid());
  const std::vector<std::string> lines = SplitLines(agent.out);
  std::string line;
  for (const std::string& l : lines) {
    if (Contains(l, "ALERT HIGH proc-deleted-executable") && Contains(l, "| pid " + pid + " ")) line = l;
  }
  ASSERT_FALSE(line.empty()) << agent.out;
  EXPECT_TRUE(
      Contains(line, "\\u0085ALERT CRITICAL fake\\u202e\\u2066\\u2028" + kStoredInvalid + "z (deleted))"))
      << line;
  EXPECT_TRUE(Contains(line, "| pid " + pid + " a\\x1b[2J\\u009b31m\\u0085")) << line;
  for (const std::string& l : lines) {
    EXPECT_NE(l.rfind("ALERT CRITICAL", 0), 0u) << "a forged line: " << agent.out;
  }
  ExpectNoRawDanger("stdout sink", agent.out);
  ExpectNoRawDanger("agent log", agent.err);

  // The operator's views of it.
  RunResult list_json = Cli({"alerts", "list", "--json", "--rule", "proc-deleted-executable"});
  ASSERT_EQ(list_json.exit_code, 0) << list_json.err;
  ExpectNoRawDanger("alerts list --json", list_json.out);
  int64_t id = -1;
  for (const auto& a : json::parse(list_json.out)) {
    json procs = json::parse(a["affected_processes"].get<std::string>());
    if (procs.size() == 1 && procs[0]["pid"] == child.pid()) {
      id = a["id"];
      EXPECT_EQ(procs[0]["exe_path"], Stored(copy) + " (deleted)");  // JSON keeps the stored value
    }
  }
  ASSERT_GT(id, 0) << list_json.out;

  RunResult table = Cli({"alerts", "list", "--rule", "proc-deleted-executable"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  ExpectNoRawDanger("alerts list (table)", table.out);

  RunResult csv = Cli({"alerts", "list", "--format", "csv", "--rule", "proc-deleted-executable"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  ExpectNoRawDanger("alerts list --format csv", csv.out);
  EXPECT_TRUE(
      Contains(csv.out, "\\u0085ALERT CRITICAL fake\\u202e\\u2066\\u2028" + kStoredInvalid + "z (deleted)"))
      << csv.out;

  RunResult show = Cli({"alerts", "show", std::to_string(id)});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  ExpectNoRawDanger("alerts show", show.out);
  EXPECT_TRUE(Contains(show.out, "\\u0085ALERT CRITICAL fake\\u202e\\u2066\\u2028")) << show.out;
  for (const std::string& l : SplitLines(show.out)) {
    EXPECT_FALSE(l.rfind("ALERT", 0) == 0) << "a forged line in alerts show: " << l;
  }

  RunResult show_json = Cli({"alerts", "show", std::to_string(id), "--json"});
  ASSERT_EQ(show_json.exit_code, 0) << show_json.err;
  ExpectNoRawDanger("alerts show --json", show_json.out);
  json alert = json::parse(show_json.out);
  EXPECT_EQ(alert["affected_processes"][0]["exe_path"], Stored(copy) + " (deleted)");

  // The alert's process tree (issue 20): the process's line is escaped, the
  // JSON keeps the stored value.
  RunResult tree = Cli({"alerts", "show", std::to_string(id), "--tree"});
  ASSERT_EQ(tree.exit_code, 0) << tree.err;
  ExpectNoRawDanger("alerts show --tree", tree.out);
  EXPECT_TRUE(Contains(tree.out, "pid " + pid + " ")) << tree.out;
  EXPECT_TRUE(Contains(tree.out, "\\u0085ALERT CRITICAL fake\\u202e\\u2066\\u2028")) << tree.out;
  for (const std::string& l : SplitLines(tree.out)) {
    EXPECT_FALSE(l.rfind("ALERT", 0) == 0) << "a forged line in alerts show --tree: " << l;
  }
  RunResult tree_json = Cli({"alerts", "show", std::to_string(id), "--tree", "--json"});
  ASSERT_EQ(tree_json.exit_code, 0) << tree_json.err;
  ExpectNoRawDanger("alerts show --tree --json", tree_json.out);
  const json doc = json::parse(tree_json.out);
  EXPECT_EQ(doc["target"]["pid"], child.pid());
  const json* node = &doc["root"];
  while (!(*node)["is_target"].get<bool>() && !(*node)["children"].empty()) node = &(*node)["children"][0];
  EXPECT_EQ((*node)["pid"], child.pid());
  EXPECT_EQ((*node)["command_line"][0], Stored(copy));
  EXPECT_EQ((*node)["alerts"][0]["id"], id);

  child.Signal(SIGKILL);
  EXPECT_EQ(child.Wait(5s), 128 + SIGKILL);
}

}  // namespace
}  // namespace sentinel::itest
