// Real-time detection end to end with the real binaries (SPEC §12, issue 16):
// procmond captures execs (eBPF, else netlink), the agent's real-time
// detector evaluates the `on: exec` rules over each committed batch.
// - An exec storm during which the agent is SIGKILLed and restarted: every
//   matching exec is alerted exactly once (dedup off, so a repeated
//   evaluation would show as a second alert).
// - README's first step (a copy of sleep run from /tmp) with make run's
//   configuration (config/local.yaml), scan and exec paths both on: one alert.
// Needs root (BPF / proc connector, the agent's privilege drop).
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/base/features.h"
#include "tests/integration/harness.h"

extern char** environ;

namespace sentinel::itest {
namespace {

using namespace std::chrono_literals;

// Runs `path` with `argv` and reaps it; returns its pid (-1 on failure).
pid_t SpawnAndReap(const std::string& path, const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, path.c_str(), nullptr, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return pid;
}

bool CopyExecutable(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(to).parent_path(), ec);
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  return !ec && ::chmod(to.c_str(), 0755) == 0;
}

class RealtimeDetectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP()
          << "privileged test: procmond's real-time sources load BPF or subscribe to the proc connector";
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

  // procmond as its own daemon (the agent runs with --no-collector).
  void StartProcmond() {
    procmond_ = std::make_unique<Child>(
        std::vector<std::string>{ProcmondBin()},
        Env({"SENTINELD_COLLECTION__INTERVAL_SECS=3600", "SENTINELD_COLLECTION__REALTIME_SOURCE=auto"}), "",
        sb_.File("procmond.err"));
    ASSERT_TRUE(WaitFor([&] { return Contains(Log("procmond.err"), "real-time event source started"); }, 30s))
        << Log("procmond.err");
  }

  // The agent, --no-collector, dedup off: every evaluation that matches is an alert.
  std::unique_ptr<Child> StartAgent(const std::string& name) {
    auto agent = std::make_unique<Child>(
        std::vector<std::string>{AgentBin(), "--no-collector"},
        Env({"SENTINELD_ALERTING__DEDUP_WINDOW_SECS=0", "SENTINELD_DETECTION__INTERVAL_SECS=3600"}),
        sb_.File(name + ".out"), sb_.File(name + ".err"));
    EXPECT_TRUE(WaitFor([&] { return Contains(Log(name + ".err"), "real-time detector subscribed"); }, 30s))
        << Log(name + ".err");
    return agent;
  }

  std::string Log(const std::string& name) const { return testing::ReadFile(sb_.File(name)); }
  int64_t Int(const std::string& sql) const { return TryQueryInt(db_, sql).value_or(-1); }

  Sandbox sb_;
  std::string db_;
  std::unique_ptr<Child> procmond_;
};

TEST_F(RealtimeDetectionTest, AgentKilledInAnExecStormAlertsEveryMatchingExecExactlyOnce) {
  // Every exec of a storm is captured by the eBPF source; netlink reads /proc after the exec and
  // misses processes that are already gone.
  if (!Built(Feature::kEbpf)) GTEST_SKIP() << "needs procmond's eBPF source (SENTINEL_EBPF=OFF here)";
  StartProcmond();
  if (HasFatalFailure()) return;
  // Under the sandbox in /tmp: proc-exec-from-tmp matches it.
  const std::string evil = sb_.File("storm/evil");
  ASSERT_TRUE(CopyExecutable("/bin/true", evil));
  ASSERT_EQ(evil.rfind("/tmp/", 0), 0u) << evil;
  auto agent = StartAgent("agent1");
  const std::string mine =
      "FROM alerts WHERE rule_id = 'proc-exec-from-tmp' AND json_extract(raw_data, '$.exe_path') = '" + evil +
      "'";

  constexpr int kExecs = 1200;  // every third one matches
  std::vector<pid_t> matching;
  std::atomic<int> done{0};
  std::thread storm([&] {
    for (int i = 0; i < kExecs; ++i, ++done) {
      if (i % 3 == 0) {
        const pid_t pid = SpawnAndReap(evil, {"evil", std::to_string(i)});
        if (pid > 0) matching.push_back(pid);
      } else {
        SpawnAndReap("/bin/true", {"true", std::to_string(i)});
      }
    }
  });
  // SIGKILL in the middle: some alerts are in, the storm goes on.
  const bool some = WaitFor([&] { return Int("SELECT count(*) " + mine) >= 20; }, 60s);
  const int at_kill = done.load();
  agent->Signal(SIGKILL);
  ASSERT_TRUE(agent->Wait(20s).has_value());
  storm.join();
  ASSERT_TRUE(some) << Log("agent1.err");
  EXPECT_LT(at_kill, kExecs) << "the storm ended before the kill; the test proves less than it says";

  // Every matching exec was captured.
  for (pid_t pid : matching) {
    ASSERT_TRUE(WaitFor(
        [&] {
          return Int("SELECT count(*) FROM process_events WHERE event_type = 'exec' AND pid = " +
                     std::to_string(pid)) > 0;
        },
        30s))
        << "exec of pid " << pid << " not stored: " << Log("procmond.err");
  }
  agent = StartAgent("agent2");
  const int64_t last_id = Int("SELECT max(id) FROM process_events");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Int("SELECT min(last_event_id) FROM detection_cursors WHERE rule_id = 'proc-exec-from-tmp'") >=
               last_id;
      },
      60s))
      << Log("agent2.err");
  EXPECT_EQ(Int("SELECT count(*) " + mine), static_cast<int64_t>(matching.size()));
  EXPECT_EQ(Int("SELECT count(DISTINCT json_extract(raw_data, '$.pid')) " + mine),
            static_cast<int64_t>(matching.size()));
  for (pid_t pid : matching) {
    EXPECT_EQ(
        Int("SELECT count(*) " + mine + " AND json_extract(raw_data, '$.pid') = " + std::to_string(pid)), 1)
        << "pid " << pid;
  }
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(30s), std::optional<int>(0));
}

// README: `cp /bin/sleep /tmp/demo && /tmp/demo 600 &` under `make run`
// (config/local.yaml: the agent supervises procmond, scans every 10 s, the
// built-in rules on both paths). Once the exec batch and a scan cycle that
// saw the process have both been evaluated, there is exactly one alert.
TEST_F(RealtimeDetectionTest, ReadmeDemoStepRaisesExactlyOneAlertWithBothPathsOn) {
  const std::string config = std::string(SENTINEL_SOURCE_DIR) + "/config/local.yaml";
  Child agent({AgentBin(), "--config", config}, Env(), sb_.File("agent.out"), sb_.File("agent.err"));
  ASSERT_TRUE(WaitFor([&] { return Contains(Log("agent.err"), "real-time detector subscribed"); }, 60s))
      << Log("agent.err");
  ASSERT_TRUE(
      WaitFor([&] { return Int("SELECT count(*) FROM scan_metadata WHERE status = 'completed'") > 0; }, 60s));
  const std::string demo = sb_.File("demo");
  ASSERT_EQ(demo.rfind("/tmp/", 0), 0u) << demo;
  ASSERT_TRUE(CopyExecutable("/bin/sleep", demo));
  pid_t pid = -1;
  std::vector<char*> args{const_cast<char*>("demo"), const_cast<char*>("600"), nullptr};
  ASSERT_EQ(posix_spawn(&pid, demo.c_str(), nullptr, nullptr, args.data(), environ), 0);
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{pid};
  const std::string p = std::to_string(pid);
  // The exec path: the event is stored and the rule's cursor passed it.
  ASSERT_TRUE(WaitFor(
      [&] {
        const int64_t id = Int("SELECT max(id) FROM process_events WHERE event_type = 'exec' AND pid = " + p);
        return id > 0 &&
               Int("SELECT last_event_id FROM detection_cursors WHERE rule_id = 'proc-exec-from-tmp'") >= id;
      },
      60s))
      << Log("agent.err");
  // The scan path: a scan holding the process, and a detection cycle after it.
  int64_t scanned_at = -1;
  ASSERT_TRUE(WaitFor(
      [&] {
        scanned_at =
            Int("SELECT max(m.completed_at_ms) FROM scan_metadata m JOIN process_snapshots s ON s.scan_id = "
                "m.scan_id "
                "WHERE m.status = 'completed' AND s.pid = " +
                p);
        return scanned_at > 0 &&
               Int("SELECT last_run_ms FROM detection_rules WHERE id = 'proc-exec-from-tmp'") > scanned_at;
      },
      90s))
      << Log("agent.err");
  const std::string of_demo =
      "FROM alerts WHERE rule_id = 'proc-exec-from-tmp' AND json_extract(raw_data, '$.pid') = " + p;
  EXPECT_EQ(Int("SELECT count(*) " + of_demo), 1);
  // Both paths found the same process: the event's start_time is the scan's.
  EXPECT_EQ(Int("SELECT start_time FROM process_events WHERE event_type = 'exec' AND pid = " + p),
            Int("SELECT start_time FROM process_snapshots WHERE pid = " + p + " LIMIT 1"));
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(60s), std::optional<int>(0));
  int lines = 0;
  for (const auto& line : SplitLines(Log("agent.out"))) {
    if (Contains(line, "proc-exec-from-tmp") && Contains(line, "pid " + p + " ")) ++lines;
  }
  EXPECT_EQ(lines, 1) << Log("agent.out");
}

}  // namespace
}  // namespace sentinel::itest
