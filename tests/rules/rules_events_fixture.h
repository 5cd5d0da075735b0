// procmond as a daemon with its real-time source (eBPF, else netlink) into a
// fresh store, for the live tests of rules that read exec events
// (rules_events_live_test.cc, rules_blindspots_exec_privileged_test.cc).
// Needs root. Test-only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/base/features.h"
#include "sentinel/storage/sqlite.h"
#include "sentinel/testing/temp_dir.h"
#include "tests/rules/rules_fixture.h"

extern char** environ;

namespace sentinel::rules_test {

// procmond with real-time events into `db`, stopped (SIGTERM, flush) on Stop().
class RealtimeProcmond {
 public:
  RealtimeProcmond(const std::string& dir, const std::string& db) : err_(dir + "/procmond-rt.err") {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      if (std::string(*e).rfind("SENTINELD_", 0) != 0) env.emplace_back(*e);
    }
    for (const std::string& s : std::vector<std::string>{
             "HOME=" + dir, "XDG_CONFIG_HOME=" + dir + "/.config", "SENTINELD_DATABASE__PATH=" + db,
             "SENTINELD_DATABASE__AUDIT_PATH=" + dir + "/audit-rt.db",
             "SENTINELD_COLLECTION__INTERVAL_SECS=3600", "SENTINELD_COLLECTION__REALTIME_SOURCE=auto",
             "SENTINELD_IPC__SOCKET_DIR=" + dir + "/ipc", "SENTINELD_TELEMETRY__LOG_FORMAT=text",
             // root is refused as privileges.user; procmond keeps what it needs.
             "SENTINELD_PRIVILEGES__USER=nobody"}) {
      env.push_back(s);
    }
    std::vector<char*> cenv;
    for (auto& s : env) cenv.push_back(s.data());
    cenv.push_back(nullptr);
    std::string bin = ProcmondBin();
    char* argv[] = {bin.data(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv, cenv.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~RealtimeProcmond() { Stop(); }
  RealtimeProcmond(const RealtimeProcmond&) = delete;
  RealtimeProcmond& operator=(const RealtimeProcmond&) = delete;

  // True once events flow; false when procmond ended or chose no source.
  bool WaitStarted() {
    return pid_ > 0 &&
           WaitUntil([&] { return Log().find("real-time event source started") != std::string::npos; }, 30s);
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  std::string Log() const { return testing::ReadFile(err_); }

 private:
  std::string err_;
  pid_t pid_ = -1;
};

class RuleEventsLiveTest : public RuleLiveTest {
 protected:
  void SetUp() override {
    if (!IsRoot())
      GTEST_SKIP() << "needs root: procmond's real-time sources load BPF or subscribe to netlink";
    // The netlink source reads what an exec ran from /proc afterwards, so a short-lived process's
    // details are raced: these rules are tested on what the eBPF source captures at the exec.
    if (!Built(Feature::kEbpf))
      GTEST_SKIP() << "needs procmond's eBPF source, which this build lacks (SENTINEL_EBPF=OFF)";
    db_ = work().File("events-rt.db");
    procmond_ = std::make_unique<RealtimeProcmond>(work().path(), db_);
    ASSERT_TRUE(procmond_->WaitStarted()) << procmond_->Log();
    // The first scan may still be reading /proc when the source starts. A process the test
    // starts then could be found by that scan too, and its scan row (names only, read after the
    // exec) would be the finding instead of the event's: the tests judge what the event path
    // sees, so they start their processes only after that scan is complete.
    ASSERT_TRUE(WaitForRow("SELECT count(*) FROM scan_metadata WHERE status = 'completed'", 60s))
        << procmond_->Log();
  }

  // Waits until `sql` (one integer) is > 0 in the store.
  bool WaitForRow(const std::string& sql, std::chrono::milliseconds timeout = 20s) {
    return WaitUntil(
        [&] {
          auto rdb = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
          if (!rdb.ok()) return false;
          auto n = (*rdb)->QueryInt(sql);
          return n.ok() && n->value_or(0) > 0;
        },
        timeout);
  }
  bool WaitForExec(pid_t pid) {
    return WaitForRow("SELECT COUNT(*) FROM process_events WHERE event_type = 'exec' AND pid = " +
                      std::to_string(pid));
  }
  std::optional<int64_t> PidOfExe(const std::string& exe) {
    auto rdb = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
    if (!rdb.ok()) return std::nullopt;
    auto st = (*rdb)->Prepare("SELECT pid FROM process_events WHERE event_type = 'exec' AND exe_path = ?");
    if (!st.ok() || !st->BindText(1, exe).ok()) return std::nullopt;
    auto row = st->Step();
    if (!row.ok() || !*row) return std::nullopt;
    return st->ColumnInt(0);
  }
  // Stops procmond (flushing its events) and runs the rule.
  detection::RuleResult StopAndRun(const std::string& id) {
    procmond_->Stop();
    return Run(id, db_);
  }

  std::string db_;
  std::unique_ptr<RealtimeProcmond> procmond_;
};

}  // namespace sentinel::rules_test
