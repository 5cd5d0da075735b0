// Issue 17, the scan's blind spots that need no root (see rules_fixture.h):
//  case 1: a memfd named like runc's re-exec copy ("runc_cloned:") is a
//          fileless payload like any other unless it really is one;
//  case 4: an unprivileged user namespace (unshare -Urm) mounting a payload
//          over /usr/bin/sleep, or a tmpfs over /usr/local/sbin.
// The runc-style re-exec that must stay quiet, and the hidden process
// (case 7), need root: rules_blindspots_scan_privileged_test.cc.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

constexpr uid_t kNobody = 65534;
constexpr const char* kRuncClone = "runc_cloned:/proc/self/exe";

// ---------------------------------------------------------------------------
// Case 1: the name of runc's memfd copy is not trusted.

TEST_F(RuleLiveTest, ProcMemfdExecutable_RuncNamedMemfdOfAForeignImageIsReported) {
  const std::string bin = work().File("runc");
  CopyExecutable(ProbeBin(), bin);
  // Unsealed, and sealed as runc seals it: neither is an installed runtime's image.
  auto unsealed = StartMemfdReexec(bin, kRuncClone, /*sealed=*/false);
  auto sealed = StartMemfdReexec(bin, kRuncClone, /*sealed=*/true);
  ASSERT_TRUE(unsealed && sealed);
  const std::string db = Scan();
  auto memfd = Run("proc-memfd-executable", db);
  for (pid_t pid : {unsealed->pid(), sealed->pid()}) {
    auto row = ExpectOneRow(memfd, pid);
    EXPECT_EQ(row.value("exe_path", "").rfind("/memfd:runc_cloned:", 0), 0u) << row.dump();
  }
  // Covered by the memfd rule, so the deleted-image rule leaves them out:
  // one finding each, none falling between the two.
  ExpectNoRows(Run("proc-deleted-executable", db), {unsealed->pid(), sealed->pid()});
}

// ---------------------------------------------------------------------------
// Case 4: the image checked against the host's file at the same path.

// Whether this kernel lets an unprivileged user create a user namespace.
bool UserNamespacesAllowed() {
  auto read_int = [](const char* path, int fallback) {
    std::ifstream f(path);
    int v = fallback;
    f >> v;
    return v;
  };
  return read_int("/proc/sys/user/max_user_namespaces", 0) > 0 &&
         read_int("/proc/sys/kernel/unprivileged_userns_clone", 1) == 1 &&
         read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", 0) == 0;
}

#define SKIP_UNLESS_USERNS()                                                                   \
  do {                                                                                         \
    if (SystemBinary("unshare").empty()) GTEST_SKIP() << "no unshare(1) on this host";         \
    if (!UserNamespacesAllowed()) GTEST_SKIP() << "unprivileged user namespaces are disabled"; \
  } while (0)

// `script` run by sh in a new user and mount namespace (unshare -Urm), as
// nobody when the tests run as root: what any local user can do. $1 is
// `arg`. Waits until the process runs `comm`.
std::unique_ptr<TestProcess> StartInUserNamespace(const std::string& script, const std::string& arg,
                                                  const std::string& comm) {
  SpawnOptions opts;
  if (::geteuid() == 0) opts.uid = kNobody;
  auto p =
      TestProcess::Start(SystemBinary("unshare"), {"unshare", "-Urm", "sh", "-c", script, "sh", arg}, opts);
  if (p && !WaitUntil([&] { return Comm(p->pid()) == comm; })) {
    ADD_FAILURE() << "the namespace set-up did not reach " << comm << " (comm " << Comm(p->pid()) << ")";
  }
  return p;
}

// The probe as the payload, where nobody can read it.
std::string Payload(const ScratchDir& work) {
  ::chmod(work.path().c_str(), 0755);
  const std::string payload = work.File("payload");
  CopyExecutable(ProbeBin(), payload);
  return payload;
}

TEST_F(RuleLiveTest, ProcExeHashMismatch_UserNamespaceMountOverSystemBinary) {
  SKIP_UNLESS_USERNS();
  const std::string sleep = SystemBinary("sleep");
  const std::string payload = Payload(work());
  // The only process running sleep on this host: nothing to compare it
  // with inside its namespace.
  auto bound =
      StartInUserNamespace("mount --bind \"$1\" " + sleep + " && exec " + sleep + " 1000", payload, "sleep");
  auto tmpfs = StartInUserNamespace(
      "mount -t tmpfs none /usr/local/sbin && cp \"$1\" /usr/local/sbin/cron && exec /usr/local/sbin/cron",
      payload, "cron");
  ASSERT_TRUE(bound && tmpfs);
  const std::string db = Scan();
  auto r = Run("proc-exe-hash-mismatch", db);
  auto row = ExpectOneRow(r, bound->pid());
  EXPECT_EQ(row.value("exe_path", ""), sleep);
  EXPECT_NE(row.value("host_mismatch", "").find("the host's file at this path is"), std::string::npos)
      << row.dump();
  row = ExpectOneRow(r, tmpfs->pid());
  EXPECT_EQ(row.value("exe_path", ""), "/usr/local/sbin/cron");
  EXPECT_EQ(row.value("host_mismatch", ""), "no file at this path on the host") << row.dump();
  // A daemon's name at a trusted-looking path is not trusted either.
  row = ExpectOneRow(Run("proc-system-daemon-masquerade", db), tmpfs->pid());
  EXPECT_EQ(row.value("exe_path", ""), "/usr/local/sbin/cron");
}

TEST_F(RuleLiveTest, ProcExeHashMismatch_UserNamespaceRunningTheHostsFileIsQuiet) {
  SKIP_UNLESS_USERNS();
  const std::string sleep = SystemBinary("sleep");
  // Namespaces and mounts of their own, but the image at the path is the
  // host's file (bind-mounted onto itself, and under a tmpfs elsewhere).
  auto same = StartInUserNamespace("mount --bind \"$1\" \"$1\" && exec \"$1\" 1000", sleep, "sleep");
  auto elsewhere =
      StartInUserNamespace("mount -t tmpfs none /usr/local/sbin && exec \"$1\" 1000", sleep, "sleep");
  auto host = TestProcess::Start(sleep, {"sleep", "1000"});
  ASSERT_TRUE(same && elsewhere && host);
  const std::string db = Scan();
  ExpectNoRows(Run("proc-exe-hash-mismatch", db), {same->pid(), elsewhere->pid(), host->pid()});
  ExpectNoRows(Run("proc-system-daemon-masquerade", db), {same->pid(), elsewhere->pid(), host->pid()});
}

}  // namespace
}  // namespace sentinel::rules_test
