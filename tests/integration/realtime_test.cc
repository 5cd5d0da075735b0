// Real-time process events through the real procmond (docs/realtime.md):
// processes that live for milliseconds — some from a binary deleted right
// after exec, argv with spaces, quotes, newlines and unicode — must each be
// found in process_events, with each source. Needs root (loading BPF,
// subscribing to the proc connector): label privileged.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include "sentinel/base/features.h"
#include "tests/integration/harness.h"

extern char** environ;

namespace sentinel::itest {
namespace {

struct Row {
  std::string type;
  std::optional<std::string> exe_path, command_line, exe_hash;
  std::optional<int64_t> exit_code, ppid, uid;
};

// Every process_events row of `pid`.
std::vector<Row> RowsOf(const std::string& db, pid_t pid) {
  std::vector<Row> rows;
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(h);
    return rows;
  }
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(h,
                         "SELECT event_type, exe_path, command_line, exe_hash, exit_code, ppid, user_id"
                         " FROM process_events WHERE pid = ? ORDER BY id",
                         -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, pid);
    auto text = [&](int i) -> std::optional<std::string> {
      if (sqlite3_column_type(st, i) == SQLITE_NULL) return std::nullopt;
      return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i)));
    };
    auto integer = [&](int i) -> std::optional<int64_t> {
      if (sqlite3_column_type(st, i) == SQLITE_NULL) return std::nullopt;
      return sqlite3_column_int64(st, i);
    };
    while (sqlite3_step(st) == SQLITE_ROW) {
      rows.push_back({*text(0), text(1), text(2), text(3), integer(4), integer(5), integer(6)});
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return rows;
}

// Spawns argv (posix_spawn: returns once the child has exec'd) and reaps it.
pid_t SpawnAndReap(const std::string& path, const std::vector<std::string>& argv, int* status,
                   const std::string& unlink_after_exec = "") {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  if (!unlink_after_exec.empty()) ::unlink(unlink_after_exec.c_str());
  ::waitpid(pid, status, 0);
  return pid;
}

struct Expected {
  pid_t pid;
  std::vector<std::string> argv;
  std::optional<int> exit_code;
  std::string what;
};

class RealtimeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "privileged test: loading BPF programs and subscribing to the proc connector need root";
    }
  }

  // Starts procmond with realtime_source = GetParam(), switched to `nobody`
  // so that events are proved to flow after the privilege drop.
  void StartProcmond() {
    ::chmod(sb_.path().c_str(), 0755);
    db_ = sb_.File("data/events.db");
    err_ = sb_.File("procmond.err");
    std::vector<std::string> env{
        "SENTINELD_DATABASE__PATH=" + db_, "SENTINELD_COLLECTION__INTERVAL_SECS=3600",
        "SENTINELD_COLLECTION__REALTIME_SOURCE=" + GetParam(), "SENTINELD_TELEMETRY__LOG_FORMAT=text",
        "SENTINELD_IPC__SOCKET_DIR=" + sb_.File("ipc")};
    if (::getpwnam("nobody") != nullptr) env.push_back("SENTINELD_PRIVILEGES__USER=nobody");
    procmond_ =
        std::make_unique<Child>(std::vector<std::string>{ProcmondBin()}, sb_.ProcmondEnv(env), "", err_);
    const bool started = WaitFor(
        [&] {
          return Contains(testing::ReadFile(err_), "real-time event source started") || !procmond_->Running();
        },
        std::chrono::seconds(30));
    const std::string log = testing::ReadFile(err_);
    ASSERT_TRUE(started && procmond_->Running()) << log;
    ASSERT_TRUE(Contains(log, "privileges dropped")) << log;
  }

  void StopProcmond() {
    procmond_->Signal(SIGTERM);
    auto code = procmond_->Wait(std::chrono::seconds(60));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << testing::ReadFile(err_);
  }

  Sandbox sb_;
  std::string db_, err_;
  std::unique_ptr<Child> procmond_;
};

TEST_P(RealtimeTest, EveryShortLivedProcessIsRecordedWithItsExactArgv) {
  StartProcmond();
  if (IsSkipped() || HasFatalFailure()) return;
  const bool ebpf = GetParam() == "ebpf";

  // A copy of /bin/true under a name with a space, deleted right after exec.
  const std::string bin_dir = sb_.File("bin dir");
  std::filesystem::create_directories(bin_dir);
  const std::string copy = bin_dir + "/my true";
  std::vector<Expected> expected;
  int status = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string tok = "tok-" + std::to_string(i);
    std::vector<std::string> argv{"true",
                                  tok + " with spaces",
                                  "\"double\" 'single' \\back",
                                  "line1\nline2\ttab",
                                  "\xc3\xbcnic\xc3\xb8"
                                  "de \xe2\x9c\x93 \xf0\x9f\x90\xa7",
                                  ""};
    pid_t pid = SpawnAndReap("/bin/true", argv, &status);
    ASSERT_GT(pid, 0);
    expected.push_back({pid, argv, 0, "/bin/true " + tok});

    std::filesystem::copy_file("/bin/true", copy, std::filesystem::copy_options::overwrite_existing);
    ::chmod(copy.c_str(), 0755);
    std::vector<std::string> dargv{copy, "deleted-" + tok};
    pid = SpawnAndReap(copy, dargv, &status, copy);
    ASSERT_GT(pid, 0);
    expected.push_back({pid, dargv, 0, "deleted copy " + tok});

    std::vector<std::string> sargv{"sh", "-c", "exit 3", "sh-" + tok};
    pid = SpawnAndReap("/bin/sh", sargv, &status);
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    expected.push_back({pid, sargv, 3, "sh exit 3 " + tok});
  }

  // Every exec (and its exit) reaches the store.
  auto all_there = [&] {
    for (const auto& e : expected) {
      bool exec = false, exit = false;
      for (const Row& r : RowsOf(db_, e.pid)) {
        exec = exec || r.type == "exec";
        exit = exit || r.type == "exit";
      }
      if (!exec || !exit) return false;
    }
    return true;
  };
  EXPECT_TRUE(WaitFor(all_there, std::chrono::seconds(30)));

  int exact = 0, missing_argv = 0;
  for (const auto& e : expected) {
    const std::vector<Row> rows = RowsOf(db_, e.pid);
    const Row* exec = nullptr;
    const Row* exit = nullptr;
    for (const Row& r : rows) {
      if (r.type == "exec" && exec == nullptr) exec = &r;
      if (r.type == "exit") exit = &r;
    }
    ASSERT_NE(exec, nullptr) << "no exec event for " << e.what << " (pid " << e.pid << ")";
    ASSERT_NE(exit, nullptr) << "no exit event for " << e.what << " (pid " << e.pid << ")";
    EXPECT_EQ(exit->exit_code, e.exit_code) << e.what;
    if (!exec->command_line) {
      // Only the netlink source may miss argv: /proc was already gone.
      EXPECT_FALSE(ebpf) << "eBPF lost the argv of " << e.what;
      // Its real uid is still known: inherited at fork, unchanged by exec.
      EXPECT_EQ(exec->uid, 0) << "the uid of " << e.what << ", gone before /proc was read";
      ++missing_argv;
      continue;
    }
    EXPECT_EQ(nlohmann::json::parse(*exec->command_line).get<std::vector<std::string>>(), e.argv) << e.what;
    ++exact;
    EXPECT_EQ(exec->ppid, ::getpid()) << e.what;
    EXPECT_EQ(exec->uid, 0) << e.what;
    if (ebpf && e.what.rfind("deleted", 0) == 0) {
      // The path it was run by; " (deleted)" when it still ran after the unlink.
      EXPECT_TRUE(exec->exe_path == copy || exec->exe_path == copy + " (deleted)")
          << e.what << ": " << exec->exe_path.value_or("NULL");
    }
  }
  std::printf("[ %s ] %d of %zu execs with exact argv, %d without argv\n", GetParam().c_str(), exact,
              expected.size(), missing_argv);
  StopProcmond();
}

// A child that drops to another user and then execs is recorded with the
// user it ran as, even when it was reaped before its /proc could be read
// (the netlink source then knows it from the connector's uid event).
TEST_P(RealtimeTest, AnExecAfterASetuidIsRecordedWithTheNewUid) {
  StartProcmond();
  if (IsSkipped() || HasFatalFailure()) return;
  std::vector<pid_t> pids;
  for (int i = 0; i < 30; ++i) {
    const std::string tag = "setuid-" + std::to_string(i);
    char* args[] = {const_cast<char*>("true"), const_cast<char*>(tag.c_str()), nullptr};
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(2);
      ::execv("/bin/true", args);
      _exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child could not drop or exec";
    pids.push_back(pid);
  }
  auto execs_there = [&] {
    for (pid_t pid : pids) {
      bool exec = false;
      for (const Row& r : RowsOf(db_, pid)) exec = exec || r.type == "exec";
      if (!exec) return false;
    }
    return true;
  };
  EXPECT_TRUE(WaitFor(execs_there, std::chrono::seconds(30)));
  int without_argv = 0;
  for (pid_t pid : pids) {
    for (const Row& r : RowsOf(db_, pid)) {
      if (r.type != "exec") continue;
      EXPECT_EQ(r.uid, 65534) << "pid " << pid << (r.command_line ? "" : " (gone before /proc was read)");
      if (!r.command_line) ++without_argv;
    }
  }
  std::printf("[ %s ] %zu execs after a setuid, %d of them gone before /proc was read\n", GetParam().c_str(),
              pids.size(), without_argv);
  StopProcmond();
}

// A deleted binary that is still running when its event is written is
// recorded as the kernel shows it (" (deleted)"), hashed through /proc/PID/exe.
TEST_P(RealtimeTest, ABinaryDeletedAfterExecIsRecordedAsDeletedAndHashed) {
  StartProcmond();
  if (IsSkipped() || HasFatalFailure()) return;
  const std::string copy = sb_.File("sleeper");
  std::filesystem::copy_file("/bin/sleep", copy);
  ::chmod(copy.c_str(), 0755);
  // Long enough to be running when procmond hashes it on a loaded machine; ended below.
  std::vector<char*> argv{const_cast<char*>(copy.c_str()), const_cast<char*>("60"), nullptr};
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, copy.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  ::unlink(copy.c_str());
  std::optional<Row> exec;
  WaitFor(
      [&] {
        for (const Row& r : RowsOf(db_, pid)) {
          if (r.type == "exec") exec = r;
        }
        return exec.has_value();
      },
      std::chrono::seconds(20));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(exec.has_value()) << testing::ReadFile(err_);
  EXPECT_EQ(exec->exe_path, copy + " (deleted)");
  ASSERT_TRUE(exec->exe_hash.has_value());
  EXPECT_EQ(exec->exe_hash->size(), 64u);
  StopProcmond();
}

// The eBPF source where the build has it (SENTINEL_EBPF; a build without it refuses the setting:
// features_test.cc).
std::vector<std::string> Sources() {
  if (Built(Feature::kEbpf)) return {"ebpf", "netlink"};
  return {"netlink"};
}

INSTANTIATE_TEST_SUITE_P(Sources, RealtimeTest, ::testing::ValuesIn(Sources()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// realtime_source / scan_source: ebpf where it cannot load (procmond not
// root) is a clear error naming the setting, exit 1, and nothing is written.
// In a build with eBPF only (without it the setting is refused as a missing
// feature, exit 2: features_test.cc).
struct EbpfSetting {
  const char* env;      // SENTINELD_COLLECTION__...
  const char* key;      // collection....
  const char* unknown;  // a value that is not one
};

class BadEbpfSettingTest : public ::testing::TestWithParam<EbpfSetting> {};

TEST_P(BadEbpfSettingTest, NamedSourceThatCannotLoadIsAClearError) {
  const EbpfSetting& p = GetParam();
  Sandbox sb;
  std::vector<std::string> argv{ProcmondBin()};
  std::vector<std::string> env{"SENTINELD_DATABASE__PATH=" + sb.File("data/events.db"),
                               std::string(p.env) + "=ebpf", "SENTINELD_IPC__SOCKET_DIR=" + sb.File("ipc")};
  RunResult r;
  if (::geteuid() == 0) {
    // Root can load it: force the failure by running procmond as nobody.
    if (::getpwnam("nobody") == nullptr) GTEST_SKIP() << "needs the nobody user to run procmond unprivileged";
    ::chmod(sb.path().c_str(), 0777);
    // nobody cannot read the sandbox's home: no user config layers.
    env.push_back("HOME=/nonexistent");
    env.push_back("XDG_CONFIG_HOME=/nonexistent");
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"});
    if (::access(argv[0].c_str(), X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
  }
  r = testing::Run(argv, sb.ProcmondEnv(env));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, std::string(p.key) + ": ebpf cannot be used")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(sb.File("data/events.db"))) << "nothing is written before the error";

  // An unknown source is a configuration error: exit 2, naming the key.
  env[1] = std::string(p.env) + "=" + p.unknown;
  r = testing::Run({ProcmondBin()}, sb.ProcmondEnv(env));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.err, p.key)) << r.err;
}

std::vector<EbpfSetting> EbpfSettings() {
  if (!Built(Feature::kEbpf)) return {};
  return {EbpfSetting{"SENTINELD_COLLECTION__REALTIME_SOURCE", "collection.realtime_source", "kprobe"},
          EbpfSetting{"SENTINELD_COLLECTION__SCAN_SOURCE", "collection.scan_source", "kprobe"}};
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BadEbpfSettingTest);
INSTANTIATE_TEST_SUITE_P(Settings, BadEbpfSettingTest, ::testing::ValuesIn(EbpfSettings()),
                         [](const ::testing::TestParamInfo<EbpfSetting>& i) {
                           return std::string(i.param.key).substr(std::string("collection.").size());
                         });

}  // namespace
}  // namespace sentinel::itest
