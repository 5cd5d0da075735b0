// Live tests of the rules that read only real-time exec events
// (proc-service-account-shell-exec, proc-download-then-exec-chain): procmond
// runs as a daemon with its real-time source (eBPF, else netlink), the test
// starts real short-lived processes, waits until their exec events are
// stored, stops procmond and runs the rule over the store. Needs root.
#include <pwd.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "sentinel/storage/sqlite.h"
#include "sentinel/testing/temp_dir.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

constexpr uid_t kNobody = 65534;

// procmond with real-time events into `db`, stopped (SIGTERM, flush) on Stop().
class RealtimeProcmond {
 public:
  RealtimeProcmond(const std::string& dir, const std::string& db)
      : daemon_(dir, db,
                {"SENTINELD_COLLECTION__INTERVAL_SECS=3600", "SENTINELD_COLLECTION__REALTIME_SOURCE=auto"},
                "procmond-rt.err") {}

  // True once events flow; false when procmond ended or chose no source.
  bool WaitStarted() {
    return daemon_.running() &&
           WaitUntil([&] { return Log().find("real-time event source started") != std::string::npos; }, 30s);
  }
  void Stop() { daemon_.Stop(); }
  std::string Log() const { return daemon_.Log(); }

 private:
  ProcmondDaemon daemon_;
};

class RuleEventsLiveTest : public RuleLiveTest {
 protected:
  void SetUp() override {
    if (!IsRoot())
      GTEST_SKIP() << "needs root: procmond's real-time sources load BPF or subscribe to netlink";
    db_ = work().File("events-rt.db");
    procmond_ = std::make_unique<RealtimeProcmond>(work().path(), db_);
    ASSERT_TRUE(procmond_->WaitStarted()) << procmond_->Log();
  }

  // Waits until `sql` (one integer) is > 0 in the store.
  bool WaitForRow(const std::string& sql) {
    return WaitUntil(
        [&] {
          auto rdb = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
          if (!rdb.ok()) return false;
          auto n = (*rdb)->QueryInt(sql);
          return n.ok() && n->value_or(0) > 0;
        },
        20s);
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

// proc-service-account-shell-exec
TEST_F(RuleEventsLiveTest, ProcServiceAccountShellExec_Positive) {
  auto sh = TestProcess::Start("/bin/sh", {"sh", "-c", "exit 0"}, {.uid = kNobody});
  ASSERT_NE(sh, nullptr);
  const pid_t pid = sh->pid();
  sh.reset();
  ASSERT_TRUE(WaitForExec(pid)) << procmond_->Log();
  auto r = StopAndRun("proc-service-account-shell-exec");
  auto row = ExpectOneRow(r, pid);
  EXPECT_EQ(row.value("user_id", -1), static_cast<int64_t>(kNobody)) << row.dump();
  EXPECT_EQ(row.value("source", ""), "event");
}

TEST_F(RuleEventsLiveTest, ProcServiceAccountShellExec_Negative) {
  auto root_sh = TestProcess::Start("/bin/sh", {"sh", "-c", "exit 0"});
  ASSERT_NE(root_sh, nullptr);
  auto nobody_tool = TestProcess::Start("/bin/true", {"true"}, {.uid = kNobody});
  ASSERT_NE(nobody_tool, nullptr);
  const std::vector<pid_t> pids{root_sh->pid(), nobody_tool->pid()};
  root_sh.reset();
  nobody_tool.reset();
  for (pid_t p : pids) ASSERT_TRUE(WaitForExec(p)) << procmond_->Log();
  ExpectNoRows(StopAndRun("proc-service-account-shell-exec"), pids);
}

// proc-download-then-exec-chain: "wget ...; /tmp/.../payload" as two
// commands of one shell (the trailing exit keeps dash from exec'ing the
// payload in place of itself).
TEST_F(RuleEventsLiveTest, ProcDownloadThenExecChain_Positive) {
  const std::string wget = work().File("chain/wget");
  const std::string payload = work().File("chain/payload");
  CopyExecutable("/bin/true", wget);
  CopyExecutable("/bin/true", payload);
  auto sh = TestProcess::Start(
      "/bin/sh",
      {"sh", "-c", "'" + wget + "' -q -O '" + payload + "' http://127.0.0.1:9/x; '" + payload + "'; exit 0"});
  ASSERT_NE(sh, nullptr);
  ASSERT_TRUE(WaitForRow("SELECT COUNT(*) FROM process_events WHERE event_type = 'exec' AND exe_path = '" +
                         payload + "'"))
      << procmond_->Log();
  auto pid = PidOfExe(payload);
  ASSERT_TRUE(pid.has_value());
  auto r = StopAndRun("proc-download-then-exec-chain");
  auto row = ExpectOneRow(r, static_cast<pid_t>(*pid));
  EXPECT_EQ(row.value("ppid", -1), static_cast<int64_t>(sh->pid())) << row.dump();
  EXPECT_NE(row.value("download_command_line", ""), "") << row.dump();
}

TEST_F(RuleEventsLiveTest, ProcDownloadThenExecChain_Negative) {
  // A download followed by a packaged program, and a /tmp program with no
  // download before it in the same shell.
  const std::string wget = work().File("chain/wget");
  const std::string local = work().File("chain/tool");
  CopyExecutable("/bin/true", wget);
  CopyExecutable("/bin/true", local);
  auto a = TestProcess::Start("/bin/sh",
                              {"sh", "-c", "'" + wget + "' -q http://127.0.0.1:9/x; /bin/true; exit 0"});
  ASSERT_NE(a, nullptr);
  auto b = TestProcess::Start("/bin/sh", {"sh", "-c", "'" + local + "'; exit 0"});
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(WaitForRow("SELECT COUNT(*) FROM process_events WHERE event_type = 'exec' AND exe_path = '" +
                         local + "'"))
      << procmond_->Log();
  ASSERT_TRUE(WaitForRow("SELECT COUNT(*) FROM process_events WHERE event_type = 'exec' AND ppid = " +
                         std::to_string(a->pid()) + " AND name = 'true' AND exe_path NOT LIKE '/tmp/%'"))
      << procmond_->Log();
  auto local_pid = PidOfExe(local);
  ASSERT_TRUE(local_pid.has_value());
  auto r = StopAndRun("proc-download-then-exec-chain");
  ExpectNoRows(r, {static_cast<pid_t>(*local_pid)});
  for (const auto& row : r.rows) {
    EXPECT_NE(row.value("ppid", -1), static_cast<int64_t>(a->pid()))
        << "a download then /bin/true: " << row.dump();
  }
}

}  // namespace
}  // namespace sentinel::rules_test
