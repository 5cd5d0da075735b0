// What the analyst sees from a running agent (SPEC §16, issue 20): stdout
// carries alerts and nothing else, and at the default log level stderr has
// the start, the stop, problems and the periodic summary -- no line per rule
// or per cycle. The real agent supervises the real procmond; the only rule is
// one the test controls, so the host's own processes raise nothing. The
// alert line is coloured by severity on a terminal only, and keeps escaping
// the process's name.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using namespace std::chrono_literals;

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

std::vector<std::string> LinesWith(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& line : SplitLines(text)) {
    if (Contains(line, needle)) out.push_back(line);
  }
  return out;
}

// The value of `key=N` in a text log line; -1 when absent.
int64_t Field(const std::string& line, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(line, m, std::regex(" " + key + "=(\\d+)"))) return -1;
  return std::stoll(m[1]);
}

class QuietAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = sb_.File("events.db");
    rules_dir_ = sb_.File("rules.d");
    ::mkdir(rules_dir_.c_str(), 0755);  // readable by the agent's user
    // The one rule: a process running from the sandbox, which only the
    // test's probe does.
    testing::WriteFile(rules_dir_ + "/quiet-probe.yaml",
                       "id: quiet-probe\nname: Quiet probe\ndescription: a process from the test's sandbox\n"
                       "severity: high\ndedup_keys: [pid]\nquery: |\n"
                       "  SELECT pid, name, exe_path FROM processes WHERE instr(exe_path, '" +
                           sb_.path() + "/') = 1\n");
  }

  std::vector<std::string> Env(std::vector<std::string> extra = {}) const {
    std::vector<std::string> env{
        "SENTINELD_DETECTION__BUILTIN_RULES=false", "SENTINELD_COLLECTION__INTERVAL_SECS=1",
        "SENTINELD_DETECTION__INTERVAL_SECS=1",     "SENTINELD_TELEMETRY__SUMMARY_INTERVAL_SECS=2",
        "SENTINELD_TELEMETRY__HTTP_LISTEN=",        "SENTINELD_IPC__SOCKET_DIR=" + sb_.File("run")};
    env.insert(env.end(), extra.begin(), extra.end());
    return sb_.ProcmondEnv(DetectionEnv(sb_, db_, rules_dir_, env));
  }

  // A copy of /bin/sleep in the sandbox under a name with an escape
  // sequence in it, started: the rule's match, and hostile text for the alert line.
  std::unique_ptr<Child> StartProbe() {
    const std::string path = probe_path();
    std::filesystem::copy_file("/bin/sleep", path);
    ::chmod(path.c_str(), 0755);
    auto child = std::make_unique<Child>(std::vector<std::string>{path, "600"}, std::vector<std::string>{});
    EXPECT_TRUE(WaitFor(
        [&] {
          std::error_code ec;
          return std::filesystem::read_symlink("/proc/" + std::to_string(child->pid()) + "/exe", ec)
                     .string() == path;
        },
        10s));
    return child;
  }
  std::string probe_path() const { return sb_.File("q\x1b[31mevil"); }
  std::string Out() const { return testing::ReadFile(sb_.File("agent.out")); }
  std::string Err() const { return testing::ReadFile(sb_.File("agent.err")); }
  std::vector<std::string> Summaries() const { return LinesWith(Err(), "INFO  sentinelagent: summary "); }

  Sandbox sb_;
  std::string db_;
  std::string rules_dir_;
};

TEST_F(QuietAgentTest, StdoutHasOnlyAlertsAndTheLogHasNoLinePerRuleOrCycle) {
  Child agent({AgentBin()}, Env(), sb_.File("agent.out"), sb_.File("agent.err"), /*new_group=*/true);
  ASSERT_GT(agent.pid(), 0);

  // Several scans and detection cycles with nothing to find: wait for two
  // summaries after rules ran (the period is 2 s, scans and cycles every 1 s).
  ASSERT_TRUE(WaitFor(
      [&] {
        if (!agent.Running()) return true;
        std::vector<std::string> s = Summaries();
        return s.size() >= 2 && std::any_of(s.begin(), s.end(),
                                            [](const std::string& l) { return Field(l, "rule_runs") > 0; });
      },
      120s))
      << Err();
  ASSERT_TRUE(agent.Running()) << Err();
  const int64_t scans =
      TryQueryInt(db_, "SELECT count(*) FROM scan_metadata WHERE status = 'completed'").value_or(0);
  const int64_t runs =
      TryQueryInt(db_, "SELECT count(*) FROM detection_rules WHERE last_run_ms > 0").value_or(0);
  ASSERT_GE(scans, 2) << Err();
  ASSERT_EQ(runs, 1) << "the probe rule has run\n" << Err();

  const std::string quiet_out = Out();
  const std::string log = Err();
  EXPECT_EQ(quiet_out, "") << "stdout before any alert";
  EXPECT_TRUE(Contains(log, "INFO  sentinelagent: sentinelagent starting")) << log;
  EXPECT_TRUE(Contains(log, "INFO  procmond: procmond starting")) << log;
  // Nothing per rule run; per cycle and per scan at most the first (it says they work).
  EXPECT_FALSE(Contains(log, "rule run")) << log;
  EXPECT_LE(CountOf(log, "detection cycle"), 1u) << log;
  EXPECT_LE(CountOf(log, "scan written"), 1u) << log;
  EXPECT_FALSE(Contains(log, " DEBUG ")) << log;
  // The summary counts what happened: scans, processes, rule runs, no alert, no error.
  bool counted = false;
  for (const auto& line : Summaries()) {
    for (const char* key : {"period_s", "scans", "processes", "events", "cycles", "rule_runs", "exec_batches",
                            "alerts", "deliveries", "errors"}) {
      EXPECT_GE(Field(line, key), 0) << key << " missing: " << line;
    }
    EXPECT_EQ(Field(line, "alerts"), 0) << line;
    EXPECT_EQ(Field(line, "errors"), 0) << line;
    counted =
        counted || (Field(line, "scans") > 0 && Field(line, "processes") > 1 && Field(line, "rule_runs") > 0);
  }
  EXPECT_TRUE(counted) << "no summary counted scans, processes and rule runs:\n" << log;

  // A process the rule matches: exactly one alert line, however many cycles see it.
  auto probe = StartProbe();
  const std::string pid = std::to_string(probe->pid());
  ASSERT_TRUE(WaitFor([&] { return !agent.Running() || Contains(Out(), "ALERT HIGH quiet-probe"); }, 60s))
      << Out() << Err();
  const size_t summaries = Summaries().size();
  ASSERT_TRUE(WaitFor([&] { return !agent.Running() || Summaries().size() >= summaries + 2; }, 60s)) << Err();
  const std::string out = Out();
  ASSERT_EQ(SplitLines(out).size(), 1u) << out;
  EXPECT_TRUE(Contains(out, "ALERT HIGH quiet-probe #1: Quiet probe | pid " + pid + " q\\x1b[31mevil ("))
      << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "an escape code reached a file: " << out;
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM alerts"), 1);
  // The alert shows in the next summary.
  bool alert_counted = false;
  for (const auto& line : Summaries()) alert_counted = alert_counted || Field(line, "alerts") == 1;
  EXPECT_TRUE(alert_counted) << Err();

  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(60s), 0) << Err();
  EXPECT_TRUE(Contains(Err(), "INFO  sentinelagent: sentinelagent stopping")) << Err();
  EXPECT_EQ(SplitLines(Out()).size(), 1u) << Out();
}

// The ALERT line on a terminal (stdout a pseudo-terminal) is coloured by
// severity; NO_COLOR, TERM=dumb and a pipe get no escape code at all.
TEST_F(QuietAgentTest, AlertLineIsColouredOnATerminalOnly) {
  auto probe = StartProbe();
  const std::string pid = std::to_string(probe->pid());
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  // Every run raises the alert again (no dedup window).
  auto once_on_pty = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> env{"SENTINELD_ALERTING__DEDUP_WINDOW_SECS=0"};
    env.insert(env.end(), extra.begin(), extra.end());
    return RunOnPty({AgentBin(), "--once", "--no-collector"}, Env(env));
  };
  const std::string alert = "ALERT HIGH quiet-probe #";
  const std::string escaped_name = "pid " + pid + " q\\x1b[31mevil (";

  RunResult colour = once_on_pty({"TERM=xterm-256color"});
  ASSERT_EQ(colour.exit_code, 0) << colour.out;
  std::vector<std::string> lines = LinesWith(colour.out, alert);
  ASSERT_EQ(lines.size(), 1u) << colour.out;
  std::string line = lines[0];
  if (!line.empty() && line.back() == '\r') line.pop_back();
  // Red for high, from the first byte, reset at the end; the name's own ESC stays escaped.
  EXPECT_EQ(line.rfind("\x1b[31m", 0), 0u) << line;
  EXPECT_TRUE(line.ends_with("\x1b[0m")) << line;
  EXPECT_TRUE(Contains(line, escaped_name)) << line;
  EXPECT_EQ(CountOf(colour.out, "\x1b"), 2u) << "only the colour and its reset:\n" << colour.out;

  struct Case {
    const char* what;
    std::vector<std::string> env;
  };
  for (const Case& c :
       {Case{"NO_COLOR=1", {"TERM=xterm-256color", "NO_COLOR=1"}}, Case{"TERM=dumb", {"TERM=dumb"}}}) {
    RunResult r = once_on_pty(c.env);
    ASSERT_EQ(r.exit_code, 0) << c.what << ": " << r.out;
    EXPECT_EQ(LinesWith(r.out, alert).size(), 1u) << c.what << ": " << r.out;
    EXPECT_TRUE(Contains(r.out, escaped_name)) << c.what << ": " << r.out;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << c.what << " still colours:\n" << r.out;
  }

  RunResult pipe =
      sb_.Agent({"--once", "--no-collector"},
                DetectionEnv(sb_, db_, rules_dir_,
                             {"SENTINELD_DETECTION__BUILTIN_RULES=false",
                              "SENTINELD_ALERTING__DEDUP_WINDOW_SECS=0", "TERM=xterm-256color"}));
  ASSERT_EQ(pipe.exit_code, 0) << pipe.err;
  EXPECT_EQ(SplitLines(pipe.out).size(), 1u) << pipe.out;
  EXPECT_TRUE(Contains(pipe.out, alert) && Contains(pipe.out, escaped_name)) << pipe.out;
  EXPECT_EQ(pipe.out.find('\x1b'), std::string::npos) << "colour on a pipe: " << pipe.out;
  EXPECT_EQ(pipe.err.find('\x1b'), std::string::npos) << pipe.err;
}

}  // namespace
}  // namespace sentinel::itest
