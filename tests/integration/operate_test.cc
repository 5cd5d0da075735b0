// Operating the daemons (issue 7) with the real binaries: the agent brings a
// killed procmond back, leaves nothing behind on SIGTERM, leaves no orphan
// even when it is SIGKILLed, refuses to run twice on one data directory, and
// applies retention on schedule without stopping collection.
#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "sentinel/storage/store.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

// The procmond children of `parent` (alive ones).
std::vector<pid_t> ProcmondChildren(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& [pid, comm] : LiveChildren(parent))
    if (comm == "procmond") out.push_back(pid);
  return out;
}

// procmond's parent: the agent, or — when the agent started as root — the
// root launcher that is the agent's child (docs/decisions.md #18); -1 until it runs.
pid_t CollectorParent(pid_t agent) {
  if (::geteuid() != 0) return agent;
  pid_t found = -1;
  for (const auto& [pid, comm] : LiveChildren(agent))
    if (comm == "sentinel-launch") found = pid;
  return found;
}

class OperateTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = sb_.File("events.db"); }
  std::vector<std::string> Env(std::vector<std::string> extra = {}) const {
    extra = DetectionEnv(sb_, db_, sb_.File("rules.d"), std::move(extra));
    extra.push_back("SENTINELD_TELEMETRY__HTTP_LISTEN=");
    extra.push_back("SENTINELD_IPC__SOCKET_DIR=" + sb_.File("run"));
    extra.push_back("SENTINELD_COLLECTION__INTERVAL_SECS=1");
    extra.push_back("SENTINELD_DETECTION__INTERVAL_SECS=2");
    return extra;
  }
  std::unique_ptr<Child> StartAgent(std::vector<std::string> args = {}, std::vector<std::string> env = {}) {
    std::vector<std::string> argv{AgentBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    ++agents_;
    return std::make_unique<Child>(argv, sb_.ProcmondEnv(Env(std::move(env))),
                                   sb_.File("agent" + std::to_string(agents_) + ".out"),
                                   sb_.File("agent" + std::to_string(agents_) + ".err"));
  }
  std::string AgentErr(int n = 1) const {
    return testing::ReadFile(sb_.File("agent" + std::to_string(n) + ".err"));
  }
  int64_t Scans() const { return TryQueryInt(db_, "SELECT count(*) FROM scan_metadata").value_or(0); }
  pid_t WaitForProcmond(pid_t agent, pid_t not_this = -1) {
    pid_t found = -1;
    WaitFor(
        [&] {
          const pid_t parent = CollectorParent(agent);
          if (parent <= 0) return false;
          for (pid_t p : ProcmondChildren(parent)) {
            if (p != not_this) {
              found = p;
              return true;
            }
          }
          return false;
        },
        std::chrono::seconds(30));
    return found;
  }

  Sandbox sb_;
  std::string db_;
  int agents_ = 0;
};

TEST_F(OperateTest, KilledProcmondIsRestartedAndScansContinue) {
  auto agent = StartAgent();
  const pid_t first = WaitForProcmond(agent->pid());
  ASSERT_GT(first, 0) << AgentErr();
  ASSERT_TRUE(WaitFor([&] { return Scans() >= 1; }, std::chrono::seconds(30))) << AgentErr();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  const pid_t second = WaitForProcmond(agent->pid(), first);
  ASSERT_GT(second, 0) << "procmond was not restarted\n" << AgentErr();
  const int64_t before = Scans();
  EXPECT_TRUE(WaitFor([&] { return Scans() >= before + 2; }, std::chrono::seconds(30)))
      << "scans did not continue after the restart\n"
      << AgentErr();
  EXPECT_TRUE(Contains(AgentErr(), "procmond exited; restarting")) << AgentErr();
  agent->Signal(SIGTERM);
  auto code = agent->Wait(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

TEST_F(OperateTest, SigtermLeavesNoProcessBehind) {
  auto agent = StartAgent();
  const pid_t procmond = WaitForProcmond(agent->pid());
  ASSERT_GT(procmond, 0) << AgentErr();
  ASSERT_TRUE(WaitFor([&] { return Scans() >= 1; }, std::chrono::seconds(30))) << AgentErr();
  agent->Signal(SIGTERM);
  auto code = agent->Wait(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(Alive(procmond)) << "procmond " << procmond << " outlived the agent";
  EXPECT_TRUE(Contains(AgentErr(), "procmond stopped")) << AgentErr();
}

// SIGKILL gives the agent no chance to stop its child: the kernel must (the
// parent-death signal, re-armed by procmond after it drops privileges).
TEST_F(OperateTest, SigkilledAgentLeavesNoOrphan) {
  // Become the subreaper of the orphan, to see how it ends (and reap it).
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  // As root (the real case) procmond switches to another user, which clears
  // the parent-death signal in the kernel, and its parent is the launcher.
  auto agent = StartAgent();
  const pid_t procmond = WaitForProcmond(agent->pid());
  ASSERT_GT(procmond, 0) << AgentErr();
  const pid_t launcher = CollectorParent(agent->pid());
  ASSERT_TRUE(WaitFor([&] { return Scans() >= 1; }, std::chrono::seconds(30))) << AgentErr();
  agent->Signal(SIGKILL);
  ASSERT_TRUE(agent->Wait(std::chrono::seconds(10)).has_value());
  int status = 0;
  pid_t reaped = -1;
  const bool gone = WaitFor(
      [&] {
        reaped = ::waitpid(procmond, &status, WNOHANG);
        return reaped == procmond || !Alive(procmond);
      },
      std::chrono::seconds(20));
  // The launcher (as root) is our orphan too: it stops once procmond is gone.
  if (launcher > 0 && launcher != agent->pid()) {
    WaitFor([&] { return ::waitpid(launcher, nullptr, WNOHANG) == launcher || !Alive(launcher); },
            std::chrono::seconds(20));
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  if (!gone) ::kill(procmond, SIGKILL);  // our own orphan: never leave it running
  ASSERT_TRUE(gone) << "procmond " << procmond << " survived the SIGKILLed agent";
  if (reaped == procmond) {
    // It stopped cleanly on the parent-death SIGTERM, flushing its scan.
    EXPECT_TRUE(WIFEXITED(status)) << status;
    if (WIFEXITED(status)) {
      EXPECT_EQ(WEXITSTATUS(status), 0);
    }
  }
}

TEST_F(OperateTest, SecondAgentOnTheSameDataDirectoryIsRefused) {
  auto first = StartAgent({"--no-collector"});
  const std::string lock = sb_.File("sentinelagent.lock");
  ASSERT_TRUE(WaitFor([&] { return testing::ReadFile(lock) == std::to_string(first->pid()) + "\n"; },
                      std::chrono::seconds(20)))
      << AgentErr();
  auto second = sb_.Agent({"--once", "--no-collector"}, Env());
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_TRUE(Contains(second.err, "already running")) << second.err;
  EXPECT_TRUE(Contains(second.err, "pid " + std::to_string(first->pid()))) << second.err;
  EXPECT_TRUE(Contains(second.err, lock)) << second.err;
  first->Signal(SIGTERM);
  ASSERT_TRUE(first->Wait(std::chrono::seconds(20)).has_value());
  // The lock goes with its holder.
  auto third = sb_.Agent({"--once", "--no-collector"}, Env());
  EXPECT_EQ(third.exit_code, 0) << third.err;
}

TEST_F(OperateTest, RetentionRunsOnScheduleWhileCollectionGoesOn) {
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  const int64_t day = 86'400'000;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  // History older than the retention windows, next to fresh rows.
  ExecSql(db_, "INSERT INTO process_events(event_time_ms,event_type,pid,name) VALUES(" +
                   std::to_string(now - 40 * day) + ",'exec',4242,'ancient'),(" + std::to_string(now) +
                   ",'exec',4243,'fresh')");
  ExecSql(db_, "INSERT INTO alerts(alert_time,rule_id,title,severity) VALUES(" +
                   std::to_string(now - 400 * day) + ",'r','ancient alert','low'),(" + std::to_string(now) +
                   ",'r','fresh alert','low')");
  auto agent = StartAgent({}, {"SENTINELD_DATABASE__MAINTENANCE_INTERVAL_SECS=1"});
  EXPECT_TRUE(WaitFor(
      [&] {
        return TryQueryInt(db_, "SELECT count(*) FROM process_events WHERE name='ancient'").value_or(1) ==
                   0 &&
               TryQueryInt(db_, "SELECT count(*) FROM alerts WHERE title='ancient alert'").value_or(1) == 0;
      },
      std::chrono::seconds(30)))
      << AgentErr();
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM process_events WHERE name='fresh'"), 1);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM alerts WHERE title='fresh alert'"), 1);
  const int64_t scans = Scans();
  EXPECT_TRUE(WaitFor([&] { return Scans() >= scans + 2; }, std::chrono::seconds(30))) << AgentErr();
  agent->Signal(SIGTERM);
  ASSERT_TRUE(agent->Wait(std::chrono::seconds(20)).has_value());
  EXPECT_TRUE(Contains(AgentErr(), "store maintenance")) << AgentErr();
  // Deleting history is audited.
  auto list = sb_.Cli({"audit", "list", "--limit", "1000"}, Env());
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(Contains(list.out, "retention_applied")) << list.out;
  auto verify = sb_.Cli({"audit", "verify"}, Env());
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// Opening a store must never drop the POSIX locks of the process's other
// connections to it (closing any descriptor of the file does): a writer in
// another process would then take itself for the last user and delete the
// WAL and shared memory under them — every later connection of this process
// failed with "disk I/O error" once procmond stopped.
TEST_F(OperateTest, OpeningAStoreKeepsTheLocksOfOtherConnections) {
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  auto held = storage::OpenStore(storage::DatabaseKind::kEvents, {db_, storage::OpenMode::kReadOnly, 5000});
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  ASSERT_TRUE((*held)->QueryInt("SELECT count(*) FROM scan_metadata").ok());  // holds its read lock
  {
    auto another =
        storage::OpenStore(storage::DatabaseKind::kEvents, {db_, storage::OpenMode::kReadOnly, 5000});
    ASSERT_TRUE(another.ok()) << another.status().ToString();
  }
  // Another process writes and closes; it must see this process as a user.
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  struct stat st {};
  EXPECT_EQ(::stat((db_ + "-wal").c_str(), &st), 0) << "the WAL was deleted under an open connection";
  EXPECT_EQ(::stat((db_ + "-shm").c_str(), &st), 0)
      << "the shared memory was deleted under an open connection";
  auto count = (*held)->QueryInt("SELECT count(*) FROM scan_metadata");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(count->value_or(0), 2);
  auto fresh = storage::OpenStore(storage::DatabaseKind::kEvents, {db_, storage::OpenMode::kReadOnly, 5000});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  auto again = (*fresh)->QueryInt("SELECT count(*) FROM scan_metadata");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->value_or(0), 2);
}

// A SIGHUP that changed database.path (restart-only) together with the sinks built the new
// dispatcher on the new path while the rest of the agent stayed on the old one, and the log said
// "configuration reloaded" (issue 14, item 8). Now the agent warns naming the restart-only keys,
// keeps the running store for everything and applies the new sinks to it.
TEST(AgentReload, SighupKeepsRestartOnlyKeysAndAppliesTheSinksToTheRunningStore) {
  Sandbox sb;
  const std::string db = sb.File("events.db");
  const std::string other_db = sb.File("other.db");
  const std::string jsonl = sb.File("alerts.jsonl");
  const std::string cfg = sb.File("config.yaml");
  const std::string err = sb.File("agent.err");
  ::mkdir(sb.File("rules.d").c_str(), 0700);
  const std::string common = "detection: {interval_secs: 1, rules_dirs: [" + sb.File("rules.d") +
                             "]}\nipc: {socket_dir: " + sb.File("run") + "}\n";
  testing::WriteFile(cfg, "database: {path: " + db + "}\n" + common +
                              "telemetry: {log_format: text}\n"
                              "alerting: {sinks: [{name: console, type: stdout}]}\n");
  Child agent({AgentBin(), "--no-collector", "--config", cfg}, sb.ProcmondEnv(), sb.File("agent.out"), err);
  ASSERT_GT(agent.pid(), 0);
  ASSERT_TRUE(WaitFor([&] { return !agent.Running() || Contains(testing::ReadFile(err), "detection cycle"); },
                      std::chrono::seconds(60)))
      << testing::ReadFile(err);
  ASSERT_TRUE(agent.Running()) << testing::ReadFile(err);

  testing::WriteFile(cfg, "database: {path: " + other_db + "}\n" + common +
                              "collection: {scan_source: proc}\ntelemetry: {log_format: text}\n" +
                              "alerting: {sinks: [{name: disk, type: file, path: " + jsonl + "}]}\n");
  agent.Signal(SIGHUP);
  const std::string warning =
      "database.path, collection.scan_source changed, takes effect at restart; running value kept";
  ASSERT_TRUE(WaitFor([&] { return Contains(testing::ReadFile(err), warning); }, std::chrono::seconds(30)))
      << "no restart-only warning after SIGHUP:\n"
      << testing::ReadFile(err);

  // An alert stored in the running store reaches the new sink.
  ExecSql(
      db,
      "PRAGMA busy_timeout = 10000; INSERT INTO alerts(alert_time, rule_id, title, description, severity, "
      "affected_processes, process_count, rule_version, raw_data, dedup_key) VALUES (strftime('%s','now') "
      "* 1000, 'reload-rule', 'Alert after the reload', 'made by the test', 'high', "
      "'[{\"pid\":1,\"name\":\"p\",\"exe_path\":\"/bin/p\"}]', 1, 1, '{}', hex(randomblob(16)))");
  EXPECT_TRUE(WaitFor([&] { return Contains(testing::ReadFile(jsonl), "Alert after the reload"); },
                      std::chrono::seconds(30)))
      << "the alert never reached the reloaded file sink:\n"
      << testing::ReadFile(err);
  EXPECT_FALSE(testing::FileExists(other_db)) << "the agent opened the new database.path without a restart";
  ASSERT_TRUE(agent.Running()) << testing::ReadFile(err);

  agent.Signal(SIGTERM);
  auto code = agent.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "the agent did not stop within 30 s of SIGTERM";
  EXPECT_EQ(*code, 0) << testing::ReadFile(err);
}

}  // namespace
}  // namespace sentinel::itest
