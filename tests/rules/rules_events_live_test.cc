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
#include "tests/rules/rules_events_fixture.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

constexpr uid_t kNobody = 65534;

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
  EXPECT_EQ(IntOf(row, "ppid"), static_cast<int64_t>(sh->pid())) << row.dump();
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
    EXPECT_NE(IntOf(row, "ppid"), static_cast<int64_t>(a->pid()))
        << "a download then /bin/true: " << row.dump();
  }
}

// proc-memfd-executable on exec events (issue 17, case 1): runc starts
// from its installed binary and re-executes a sealed memfd copy of it; the
// exec of a memfd named like runc's copy from any other image is reported.
// procmond, the test and its processes share a mount namespace where the
// runtime binary is installed (/usr/local/sbin/runc on a tmpfs).
class RuncReexecEventsTest : public RuleEventsLiveTest {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root: a mount namespace and procmond's real-time sources";
    ns_ = std::make_unique<PrivateMountNamespace>();
    ASSERT_EQ(ns_->error(), "");
    runc_ = InstallRuntimeBinary(work(), &foreign_);
    ASSERT_NE(runc_, "");
    RuleEventsLiveTest::SetUp();
  }
  void TearDown() override {
    if (procmond_) procmond_->Stop();
  }
  bool WaitForMemfdExec(pid_t pid) {
    return WaitForRow("SELECT COUNT(*) FROM process_events WHERE event_type = 'exec' AND pid = " +
                      std::to_string(pid) + " AND exe_path GLOB '/memfd:runc_cloned:*'");
  }

  std::unique_ptr<PrivateMountNamespace> ns_;  // left last, after procmond stopped
  std::string runc_, foreign_;
};

TEST_F(RuncReexecEventsTest, ProcMemfdExecutable_RuncReexecEventsJudgedByTheirImage) {
  auto real = StartMemfdReexec(runc_, "runc_cloned:/proc/self/exe", /*sealed=*/true);
  auto impostor = StartMemfdReexec(foreign_, "runc_cloned:/proc/self/exe", /*sealed=*/true);
  ASSERT_TRUE(real && impostor);
  ASSERT_TRUE(WaitForMemfdExec(real->pid()) && WaitForMemfdExec(impostor->pid())) << procmond_->Log();
  auto r = StopAndRun("proc-memfd-executable");
  ExpectNoRows(r, {real->pid()});
  EXPECT_EQ(ExpectOneRow(r, impostor->pid()).value("source", ""), "event");
}

}  // namespace
}  // namespace sentinel::rules_test
