// Issue 17, the scan's blind spots that need root (label "privileged"; each
// test skips with the reason otherwise; see rules_fixture.h):
//  case 1: a real runc-style re-exec (a sealed memfd copy of the installed
//          runtime binary) stays quiet, a fake one does not;
//  case 7: a process hidden by a mount over /proc/PID is reported.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "sentinel/base/features.h"
#include "sentinel/storage/sqlite.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

#define SKIP_UNLESS_ROOT(why)                               \
  do {                                                      \
    if (!IsRoot()) GTEST_SKIP() << "needs root: " << (why); \
  } while (0)

// ---------------------------------------------------------------------------
// Case 1: runc's re-exec copy is benign only when it really is one.

constexpr const char* kRuncClone = "runc_cloned:/proc/self/exe";

TEST_F(RuleLiveTest, ProcMemfdExecutable_RealRuncStyleReexecIsQuiet) {
  SKIP_UNLESS_ROOT("a mount namespace holding an installed runtime binary");
  PrivateMountNamespace ns;  // the test, its processes and procmond
  ASSERT_EQ(ns.error(), "");
  std::string foreign;
  const std::string runc = InstallRuntimeBinary(work(), &foreign);
  ASSERT_NE(runc, "");

  // runc as it starts: re-executes a sealed memfd copy of its own binary.
  auto real = StartMemfdReexec(runc, kRuncClone, /*sealed=*/true);
  // The same image unsealed (anyone may still write it), and a sealed copy
  // of another image: named like runc's copy, neither is one.
  auto unsealed = StartMemfdReexec(runc, kRuncClone, /*sealed=*/false);
  auto impostor = StartMemfdReexec(foreign, kRuncClone, /*sealed=*/true);
  ASSERT_TRUE(real && unsealed && impostor);
  const std::string db = Scan();
  auto r = Run("proc-memfd-executable", db);
  ExpectNoRows(r, {real->pid()});
  ExpectOneRow(r, unsealed->pid());
  ExpectOneRow(r, impostor->pid());
  // The real copy is not a deleted image either (it is runc).
  ExpectNoRows(Run("proc-deleted-executable", db), {real->pid(), unsealed->pid(), impostor->pid()});
}

// ---------------------------------------------------------------------------
// Case 7 / proc-hidden-process

// A mount over /proc/PID (or a file in it), undone (lazily) on destruction.
class ProcMount {
 public:
  ProcMount(pid_t pid, const char* source, const char* type, unsigned long flags,
            const std::string& file = "")
      : target_("/proc/" + std::to_string(pid) + (file.empty() ? "" : "/" + file)) {
    ok_ = ::mount(source, target_.c_str(), type, flags, nullptr) == 0;
    if (!ok_) error_ = std::strerror(errno);
  }
  ~ProcMount() {
    if (ok_) ::umount2(target_.c_str(), MNT_DETACH);
  }
  ProcMount(const ProcMount&) = delete;
  ProcMount& operator=(const ProcMount&) = delete;
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  std::string target_;
  bool ok_ = false;
  std::string error_;
};

int64_t LastScanErrors(const std::string& db) {
  auto store = storage::Database::Open(db, storage::OpenMode::kReadOnly);
  if (!store.ok()) return -1;
  auto n = (*store)->QueryInt("SELECT errors FROM scan_metadata ORDER BY scan_id DESC LIMIT 1");
  return n.ok() ? n->value_or(-1) : -1;
}

TEST_F(RuleLiveTest, ProcHiddenProcess_Positive) {
  SKIP_UNLESS_ROOT("mounting over /proc/PID");
  // The rule compares /proc with the kernel's task list, which the eBPF scan sampler reads.
  if (!Built(Feature::kEbpf)) GTEST_SKIP() << "needs procmond's eBPF scan source (SENTINEL_EBPF=OFF here)";
  const std::string sleep = SystemBinary("sleep");
  auto hidden = TestProcess::Start(sleep, {"sleep", "1001"});
  auto emptied = TestProcess::Start(sleep, {"sleep", "1002"});
  auto decoy = TestProcess::Start(sleep, {"sleep", "1003"});
  auto forged = TestProcess::Start(sleep, {"sleep", "1007"});
  ASSERT_TRUE(hidden && emptied && decoy && forged);
  // /proc/HIDDEN shows the decoy (ps lists the decoy twice); /proc/EMPTIED
  // shows nothing at all.
  const std::string decoy_dir = "/proc/" + std::to_string(decoy->pid());
  ProcMount bind(hidden->pid(), decoy_dir.c_str(), nullptr, MS_BIND);
  ProcMount tmpfs(emptied->pid(), "none", "tmpfs", 0);
  // Only its command line forged (a file bound over /proc/PID/cmdline).
  const std::string fake_cmdline = work().File("cmdline");
  std::ofstream(fake_cmdline) << std::string("/usr/sbin/cron\0-f\0", 16);
  ProcMount cmdline(forged->pid(), fake_cmdline.c_str(), nullptr, MS_BIND, "cmdline");
  ASSERT_TRUE(cmdline.ok()) << cmdline.error();
  ASSERT_TRUE(bind.ok()) << bind.error();
  ASSERT_TRUE(tmpfs.ok()) << tmpfs.error();
  const std::string db = Scan();
  auto r = Run("proc-hidden-process", db);
  auto row = ExpectOneRow(r, hidden->pid());
  EXPECT_EQ(row.value("name", ""), "sleep");
  EXPECT_TRUE(row["exe_path"].is_null()) << "nothing is read from the decoy's entry: " << row.dump();
  EXPECT_NE(row.value("hidden_reason", "").find("shows another task"), std::string::npos) << row.dump();
  row = ExpectOneRow(r, emptied->pid());
  EXPECT_NE(row.value("hidden_reason", "").find("missing or empty"), std::string::npos) << row.dump();
  row = ExpectOneRow(r, forged->pid());
  EXPECT_EQ(row.value("hidden_reason", ""),
            "something is mounted over /proc/" + std::to_string(forged->pid()) + "/cmdline");
  ExpectNoRows(r, {decoy->pid()});
  // Each unreadable entry is a scan error (SPEC §4).
  EXPECT_GE(LastScanErrors(db), 3);
}

TEST_F(RuleLiveTest, ProcHiddenProcess_Negative) {
  SKIP_UNLESS_ROOT("the BPF task iterator procmond compares /proc with");
  // A plain process, and a container-like one with a pid namespace and a
  // /proc of its own (mounted in its own mount namespace): the host's
  // /proc/PID of each is its own.
  const std::string sleep = SystemBinary("sleep");
  auto plain = TestProcess::Start(sleep, {"sleep", "1004"});
  auto container =
      TestProcess::Start(SystemBinary("unshare"), {"unshare", "-pmf", "--mount-proc", sleep, "1005"});
  ASSERT_TRUE(plain && container);
  auto inner = WaitForChild(container->pid(), [](const std::string& c) { return c == "sleep"; });
  ASSERT_TRUE(inner.has_value()) << "unshare -pmf --mount-proc did not start sleep";
  const std::string db = Scan();
  ExpectNoRows(Run("proc-hidden-process", db), {plain->pid(), container->pid(), *inner});
}

}  // namespace
}  // namespace sentinel::rules_test
