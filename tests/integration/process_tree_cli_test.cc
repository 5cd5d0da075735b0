// The story of an alert (SPEC §16, issue 20) with the real binaries: procmond
// captures a three-level chain of short-lived processes in real time -- a
// shell runs a script that "downloads" a program into /tmp (cp from a local
// file), makes it executable and runs it -- the agent's built-in rule
// proc-exec-from-tmp raises an alert, and once every process of the chain
// has exited and both daemons are stopped, the real sentinelcli tells the
// story from the store alone:
// - `alerts show ID --tree`: every level from init down to the program, each
//   with its argv, its exit code and the alert on it; `--json`: the same
//   chain as one JSON document;
// - `process PID --at T` for the shell, long exited: its descendants (the
//   script, the copy, the chmod, the program), with their argv and exit codes.
// Needs root (BPF / proc connector, the agent's privilege drop).
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

extern char** environ;

namespace sentinel::itest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

bool CopyExecutable(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(to).parent_path(), ec);
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  return !ec && ::chmod(to.c_str(), 0755) == 0;
}

// Runs argv (argv[0] a path) to completion; its pid and exit status.
std::pair<pid_t, int> RunToEnd(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0].c_str(), nullptr, nullptr, args.data(), environ) != 0) return {-1, -1};
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// The nodes from the root down to the target (each ancestor has one child).
std::vector<json> PathToTarget(const json& tree) {
  std::vector<json> path;
  const json* n = &tree["root"];
  while (true) {
    path.push_back(*n);
    if ((*n)["is_target"] == true || (*n)["children"].empty()) break;
    n = &(*n)["children"][0];
  }
  return path;
}

const json* ChildWithArgv(const json& node, const std::vector<std::string>& argv) {
  for (const json& c : node["children"]) {
    if (c["command_line"] == json(argv)) return &c;
  }
  return nullptr;
}

class ProcessTreeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "privileged test: procmond's real-time sources load BPF or subscribe to the proc "
                      "connector, and the agent drops root";
    }
    ::chmod(sb_.path().c_str(), 0755);
    ASSERT_TRUE(MakeServiceDir(sb_.File("data")));
    ASSERT_TRUE(MakeServiceDir(sb_.File("rules.d")));
    db_ = sb_.File("data/events.db");
  }

  std::vector<std::string> Env(std::vector<std::string> extra = {}) const {
    extra.push_back("SENTINELD_DATABASE__PATH=" + db_);
    extra.push_back("SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("data/audit.db"));
    extra.push_back("SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]");
    extra.push_back("SENTINELD_IPC__SOCKET_DIR=" + sb_.File("ipc"));
    extra.push_back("SENTINELD_TELEMETRY__LOG_FORMAT=text");
    extra.push_back("SENTINELD_TELEMETRY__HTTP_LISTEN=");
    return sb_.ProcmondEnv(extra);
  }

  std::string Log(const std::string& name) const { return testing::ReadFile(sb_.File(name)); }
  int64_t Int(const std::string& sql) const { return TryQueryInt(db_, sql).value_or(-1); }

  Sandbox sb_;
  std::string db_;
};

TEST_F(ProcessTreeCliTest, AnAlertsStoryIsToldFromTheStoreAfterEveryProcessExited) {
  // The daemons: procmond (real-time capture, one scan at start) and the
  // agent evaluating the built-in exec rules.
  Child procmond(
      {ProcmondBin()},
      Env({"SENTINELD_COLLECTION__INTERVAL_SECS=3600", "SENTINELD_COLLECTION__REALTIME_SOURCE=auto"}), "",
      sb_.File("procmond.err"));
  ASSERT_TRUE(WaitFor([&] { return Contains(Log("procmond.err"), "real-time event source started"); }, 30s))
      << Log("procmond.err");
  Child agent({AgentBin(), "--no-collector"}, Env({"SENTINELD_DETECTION__INTERVAL_SECS=3600"}),
              sb_.File("agent.out"), sb_.File("agent.err"));
  ASSERT_TRUE(WaitFor([&] { return Contains(Log("agent.err"), "real-time detector subscribed"); }, 30s))
      << Log("agent.err");

  // A scan that saw this test and its ancestors (the shell's parents).
  ASSERT_TRUE(
      WaitFor([&] { return Int("SELECT count(*) FROM scan_metadata WHERE status = 'completed'") > 0; }, 60s))
      << Log("procmond.err");

  // The chain: sh -c -> sh stage.sh -> {cp, chmod, the program from /tmp}.
  const std::string source = sb_.File("mirror/payload.bin");  // what the "download" fetches
  ASSERT_TRUE(CopyExecutable("/bin/false", source));
  const std::string program = sb_.File("drop/x");
  ASSERT_TRUE(std::filesystem::create_directories(sb_.File("drop")));
  ASSERT_EQ(program.rfind("/tmp/", 0), 0u) << program;  // proc-exec-from-tmp's directory
  const std::string script = sb_.File("stage.sh");
  {
    std::ofstream f(script);
    f << "cp " << source << " " << program << "\n"
      << "chmod 755 " << program << "\n"
      << program << " --beacon 'two words'\n"
      << "exit 0\n";
  }
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  const std::string shell_cmd = "/bin/sh " + script + "; exit 7";
  const auto [shell_pid, shell_status] = RunToEnd({"/bin/sh", "-c", shell_cmd});
  ASSERT_GT(shell_pid, 0);
  ASSERT_EQ(shell_status, 7);
  ASSERT_TRUE(std::filesystem::exists(program));
  const std::string spid = std::to_string(shell_pid);

  // Stored and judged: the shell's exit event, and the alert on the program.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Int("SELECT count(*) FROM process_events WHERE event_type = 'exit' AND pid = " + spid) > 0;
      },
      30s))
      << Log("procmond.err");
  const std::string of_program =
      "FROM alerts WHERE rule_id = 'proc-exec-from-tmp' AND json_extract(raw_data, '$.exe_path') = '" +
      program + "'";
  ASSERT_TRUE(WaitFor([&] { return Int("SELECT count(*) " + of_program) > 0; }, 30s)) << Log("agent.err");
  const int64_t alert_id = Int("SELECT id " + of_program);
  const int64_t program_pid = Int("SELECT json_extract(raw_data, '$.pid') " + of_program);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Int("SELECT count(*) FROM process_events WHERE event_type = 'exit' AND pid = " +
                   std::to_string(program_pid)) > 0;
      },
      30s));
  // From here on the store alone: no daemon, every process of the chain gone.
  procmond.Signal(SIGTERM);
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(60s), std::optional<int>(0));
  EXPECT_EQ(procmond.Wait(60s), std::optional<int>(0));
  ASSERT_FALSE(Alive(program_pid));
  ASSERT_FALSE(Alive(shell_pid));

  // Text: one line per level, indented deeper at each, argv escaped and
  // quoted, exit codes, the alert and the target marked.
  RunResult text = sb_.Cli({"--database", db_, "alerts", "show", std::to_string(alert_id), "--tree"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const std::vector<std::string> lines = SplitLines(text.out);
  auto line_of = [&](const std::string& needle, const std::string& without) -> std::string {
    for (const auto& l : lines) {
      if (Contains(l, needle) && !Contains(l, without)) return l;
    }
    return {};
  };
  const std::string l_shell = line_of("  /bin/sh -c '" + shell_cmd + "'", "\n");
  const std::string l_script = line_of("  /bin/sh " + script, " -c ");
  const std::string l_program = line_of("  " + program + " --beacon 'two words'", "\n");
  ASSERT_FALSE(l_shell.empty()) << text.out;
  ASSERT_FALSE(l_script.empty()) << text.out;
  ASSERT_FALSE(l_program.empty()) << text.out;
  EXPECT_TRUE(Contains(l_shell, "pid " + spid + " ") && Contains(l_shell, "exit 7")) << l_shell;
  EXPECT_TRUE(Contains(l_script, "exit 0")) << l_script;
  EXPECT_TRUE(Contains(l_program, "pid " + std::to_string(program_pid) + " ")) << l_program;
  EXPECT_TRUE(Contains(l_program, "exit 1")) << l_program;
  EXPECT_TRUE(Contains(l_program, "▶ ")) << l_program;
  EXPECT_TRUE(Contains(l_program, "[ALERT #" + std::to_string(alert_id) + " medium proc-exec-from-tmp]"))
      << l_program;
  auto indent = [](const std::string& l) { return l.find_first_not_of(" │├└─"); };
  EXPECT_LT(indent(l_shell), indent(l_script)) << text.out;
  EXPECT_LT(indent(l_script), indent(l_program)) << text.out;
  EXPECT_EQ(text.out.find('\x1b'), std::string::npos) << "not a terminal: no colour";

  // JSON: one document, the same chain.
  RunResult j = sb_.Cli({"--database", db_, "--json", "alerts", "show", std::to_string(alert_id), "--tree"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const json tree = json::parse(j.out);
  EXPECT_EQ(tree["target"]["pid"], program_pid);
  EXPECT_EQ(tree["alert"]["id"], alert_id);
  const std::vector<json> path = PathToTarget(tree);
  ASSERT_GE(path.size(), 4u) << j.out;
  const json& target = path[path.size() - 1];
  const json& by_script = path[path.size() - 2];
  const json& by_shell = path[path.size() - 3];
  EXPECT_EQ(target["command_line"], json({program, "--beacon", "two words"}));
  EXPECT_EQ(target["exit_code"], 1);
  EXPECT_EQ(target["is_target"], true);
  EXPECT_EQ(target["alerts"][0]["id"], alert_id);
  EXPECT_EQ(by_script["command_line"], json({"/bin/sh", script}));
  EXPECT_EQ(by_script["exit_code"], 0);
  EXPECT_EQ(by_shell["command_line"], json({"/bin/sh", "-c", shell_cmd}));
  EXPECT_EQ(by_shell["pid"], shell_pid);
  EXPECT_EQ(by_shell["exit_code"], 7);
  EXPECT_EQ(target["ppid"], by_script["pid"]);
  EXPECT_EQ(by_script["ppid"], shell_pid);
  EXPECT_EQ(by_shell["ppid"], ::getpid()) << "the shell's parent is this test";
  EXPECT_EQ(path[0]["pid"], 1) << "from init";

  // `process PID --at T`: the shell, long exited, with its descendants.
  const int64_t exited =
      Int("SELECT event_time_ms FROM process_events WHERE event_type = 'exit' AND pid = " + spid);
  RunResult p = sb_.Cli({"--database", db_, "--json", "process", spid, "--at", std::to_string(exited + 1)});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const json ptree = json::parse(p.out);
  const std::vector<json> ppath = PathToTarget(ptree);
  const json& shell = ppath.back();
  EXPECT_EQ(shell["pid"], shell_pid);
  EXPECT_EQ(shell["is_target"], true);
  const json* script_node = ChildWithArgv(shell, {"/bin/sh", script});
  ASSERT_NE(script_node, nullptr) << p.out;
  const json* cp = ChildWithArgv(*script_node, {"cp", source, program});
  const json* chmod = ChildWithArgv(*script_node, {"chmod", "755", program});
  const json* x = ChildWithArgv(*script_node, {program, "--beacon", "two words"});
  ASSERT_NE(cp, nullptr) << p.out;
  ASSERT_NE(chmod, nullptr) << p.out;
  ASSERT_NE(x, nullptr) << p.out;
  EXPECT_EQ((*cp)["exit_code"], 0);
  EXPECT_EQ((*x)["exit_code"], 1);
  EXPECT_EQ((*x)["alerts"][0]["id"], alert_id);
  RunResult ptext = sb_.Cli({"--database", db_, "process", spid, "--at", std::to_string(exited + 1)});
  ASSERT_EQ(ptext.exit_code, 0) << ptext.err;
  EXPECT_TRUE(Contains(ptext.out, "cp " + source + " " + program)) << ptext.out;

  // No process with that pid had started by then: as `alerts show` for an unknown id.
  RunResult before = sb_.Cli({"--database", db_, "process", spid, "--at", "2000-01-01"});
  EXPECT_EQ(before.exit_code, 2) << before.out << before.err;
  EXPECT_TRUE(Contains(before.err, "no process with pid " + spid)) << before.err;
}

}  // namespace
}  // namespace sentinel::itest
