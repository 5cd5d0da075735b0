// Live tests of the built-in rules that need root (label "privileged"; each
// skips with the reason otherwise): set-user-ID files, other users, mount
// namespaces. The rest are in rules_live_test.cc; see rules_fixture.h.
#include <pty.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

constexpr uid_t kNobody = 65534;

#define SKIP_UNLESS_ROOT(why)                               \
  do {                                                      \
    if (!IsRoot()) GTEST_SKIP() << "needs root: " << (why); \
  } while (0)

std::string Sleep() {
  return SystemBinary("sleep");
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---------------------------------------------------------------------------
// proc-setuid-root-unexpected

// A copy of the probe owned by root in a directory everyone may traverse.
std::string RootOwnedCopy(const ScratchDir& dir, const std::string& name, unsigned mode) {
  ::chmod(dir.path().c_str(), 0755);
  const std::string bin = dir.File("suid/" + name);
  CopyExecutable(ProbeBin(), bin, 0755);
  ::chmod(dir.File("suid").c_str(), 0755);
  EXPECT_EQ(::chown(bin.c_str(), 0, 0), 0) << std::strerror(errno);
  EXPECT_EQ(::chmod(bin.c_str(), mode), 0) << std::strerror(errno);  // after chown, which clears S_ISUID
  return bin;
}

TEST_F(RuleLiveTest, ProcSetuidRootUnexpected_Positive) {
  SKIP_UNLESS_ROOT("a set-user-ID-root file and a switch to the nobody user");
  const std::string bin = RootOwnedCopy(work(), "bash-suid", 04755);
  auto p = TestProcess::Start(bin, {"bash-suid", "-p"}, {.uid = kNobody});
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(WaitUntil([&] { return EffectiveUid(p->pid()).has_value(); }));
  // The exec reports success (close-on-exec pipe) a moment before the kernel
  // commits the new credentials: give it that moment before concluding.
  if (!WaitUntil([&] { return EffectiveUid(p->pid()) == 0u; }, std::chrono::seconds(2))) {
    GTEST_SKIP() << work().path() << " is on a nosuid file system: the setuid bit has no effect here";
  }
  auto row = ExpectOneRow(ScanAndRun("proc-setuid-root-unexpected"), p->pid());
  EXPECT_EQ(row.value("user_id", int64_t{-1}), kNobody);
  EXPECT_EQ(row.value("effective_uid", int64_t{-1}), 0);
}

TEST_F(RuleLiveTest, ProcSetuidRootUnexpected_Negative) {
  SKIP_UNLESS_ROOT("a set-user-ID-root file and a switch to the nobody user");
  const std::string plain = RootOwnedCopy(work(), "plain-tool", 0755);
  const std::string suid = RootOwnedCopy(work(), "suid-tool", 04755);
  auto as_nobody = TestProcess::Start(plain, {"plain-tool"}, {.uid = kNobody});  // no setuid bit
  auto as_root = TestProcess::Start(suid, {"suid-tool"});                        // root running it
  ASSERT_TRUE(as_nobody && as_root);
  ExpectNoRows(ScanAndRun("proc-setuid-root-unexpected"), {as_nobody->pid(), as_root->pid()});
}

// ---------------------------------------------------------------------------
// proc-exe-hash-mismatch
//
// In a private mount namespace (nothing leaks to the host's mount table):
// start `x` (a copy of sleep), bind-mount another binary over `x`, start `x`
// again. Both processes report the same path with different images.

struct SwappedPair {
  std::unique_ptr<TestProcess> holder;  // the namespace's owner; the pair are its children
  pid_t original = -1, swapped = -1;
};

// Runs in the forked holder: never returns.
[[noreturn]] void HoldSwappedPair(const std::string& target, const std::string& replacement,
                                  bool start_original, int report_fd) {
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    _exit(3);
  auto spawn = [&](const char* name) {
    pid_t c = ::fork();
    if (c == 0) {
      char* argv[] = {const_cast<char*>(name), const_cast<char*>("1000"), nullptr};
      ::execv(target.c_str(), argv);
      _exit(127);
    }
    return c;
  };
  pid_t original = -1;
  if (start_original) {
    original = spawn("x");
    // The original must have exec'd the file before it is covered.
    WaitUntil([&] { return EndsWith(ExeLink(original), "/x"); });
  }
  if (::mount(replacement.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(4);
  pid_t swapped = spawn("x");
  WaitUntil([&] { return EndsWith(ExeLink(swapped), "/x"); });
  const std::string report = std::to_string(original) + " " + std::to_string(swapped) + "\n";
  ssize_t ignored = ::write(report_fd, report.data(), report.size());
  (void)ignored;
  while (true) ::pause();
}

SwappedPair StartSwappedPair(const std::string& target, const std::string& replacement, bool start_original) {
  SwappedPair pair;
  int fds[2];
  if (::pipe(fds) != 0) return pair;
  pair.holder = TestProcess::Fork([&] {
    ::close(fds[0]);
    HoldSwappedPair(target, replacement, start_original, fds[1]);
  });
  ::close(fds[1]);
  char buf[64] = {};
  ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  if (n > 0) std::sscanf(buf, "%d %d", &pair.original, &pair.swapped);
  return pair;
}

TEST_F(RuleLiveTest, ProcExeHashMismatch_Positive) {
  SKIP_UNLESS_ROOT("a private mount namespace and a bind mount");
  const std::string target = work().File("bin/x");
  const std::string replacement = work().File("bin/trojan");
  CopyExecutable(Sleep(), target);
  CopyExecutable(ProbeBin(), replacement);
  SwappedPair pair = StartSwappedPair(target, replacement, /*start_original=*/true);
  ASSERT_TRUE(pair.holder && pair.original > 0 && pair.swapped > 0) << "mount namespace set-up failed";
  auto r = ScanAndRun("proc-exe-hash-mismatch");
  auto a = ExpectOneRow(r, pair.original);
  auto b = ExpectOneRow(r, pair.swapped);
  EXPECT_EQ(a.value("exe_path", ""), target);
  EXPECT_EQ(b.value("exe_path", ""), target);
  EXPECT_NE(a.value("exe_hash", ""), b.value("exe_hash", ""));
}

// A container: a mount namespace with a root directory of its own
// (pivot_root into `root`, which shares the host's /usr), running `path`
// there, where it is another file than the host's `path`.
std::unique_ptr<TestProcess> StartInOwnRoot(const std::string& root, const std::string& path) {
  ::mkdir(root.c_str(), 0755);
  ::mkdir((root + "/usr").c_str(), 0755);
  for (const char* dir : {"lib", "lib64", "bin"}) {
    if (::symlink((std::string("usr/") + dir).c_str(), (root + "/" + dir).c_str()) != 0) return nullptr;
  }
  return TestProcess::Fork([&] {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
        ::mount("/usr", (root + "/usr").c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
        ::chdir(root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
        ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
      _exit(3);
    }
    char* argv[] = {const_cast<char*>("x"), const_cast<char*>("1000"), nullptr};
    ::execv(path.c_str(), argv);
    _exit(127);
  });
}

TEST_F(RuleLiveTest, ProcExeHashMismatch_Negative) {
  SKIP_UNLESS_ROOT("a container: a mount namespace and a root of its own");
  // Two copies of one unchanged binary; and the same path holding another
  // binary in a container with its own root (what every container host
  // looks like). A private mount namespace sharing the host's root is not a
  // container: see rules_blindspots_scan_test.cc (issue 17, case 4).
  const std::string same = work().File("bin/same");
  CopyExecutable(Sleep(), same);
  auto one = TestProcess::Start(same, {"same", "1000"});
  auto two = TestProcess::Start(same, {"same", "1000"});
  const std::string target = work().File("bin/x");
  const std::string root = work().File("root");
  CopyExecutable(Sleep(), target);
  CopyExecutable(ProbeBin(), root + target);
  auto host_side = TestProcess::Start(target, {"x", "1000"});
  auto container = StartInOwnRoot(root, target);
  ASSERT_TRUE(one && two && host_side && container);
  // Seen from the host, the container's image has the host's path.
  ASSERT_TRUE(WaitUntil([&] { return ExeLink(container->pid()) == target; }))
      << "container set-up failed: " << ExeLink(container->pid());
  ExpectNoRows(ScanAndRun("proc-exe-hash-mismatch"),
               {one->pid(), two->pid(), host_side->pid(), container->pid()});
}

// ---------------------------------------------------------------------------
// proc-service-account-interactive-shell

struct Pty {
  int master = -1, slave = -1;
  Pty() { ::openpty(&master, &slave, nullptr, nullptr, nullptr); }
  ~Pty() {
    if (slave >= 0) ::close(slave);
    if (master >= 0) ::close(master);
  }
};

TEST_F(RuleLiveTest, ProcServiceAccountInteractiveShell_Positive) {
  SKIP_UNLESS_ROOT("switching to the nobody user");
  Pty pty;
  ASSERT_GE(pty.slave, 0);
  ASSERT_EQ(::fchown(pty.slave, kNobody, kNobody), 0);
  auto p = TestProcess::Start("/bin/sh", {"sh", "-i"},
                              {.stdin_fd = pty.slave,
                               .stdout_fd = pty.slave,
                               .stderr_fd = pty.slave,
                               .uid = kNobody,
                               .controlling_tty = pty.slave});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-service-account-interactive-shell"), p->pid());
  EXPECT_EQ(row.value("user_id", int64_t{-1}), kNobody);
  EXPECT_EQ(row.value("tty", "").rfind("pts/", 0), 0u) << row.dump();
}

TEST_F(RuleLiveTest, ProcServiceAccountInteractiveShell_Negative) {
  SKIP_UNLESS_ROOT("switching to the nobody user");
  Pty pty;
  ASSERT_GE(pty.slave, 0);
  // root at a terminal; nobody running a non-interactive script.
  auto admin = TestProcess::Start(
      "/bin/sh", {"sh", "-i"},
      {.stdin_fd = pty.slave, .stdout_fd = pty.slave, .stderr_fd = pty.slave, .controlling_tty = pty.slave});
  auto script = TestProcess::Start("/bin/sh", {"sh", "-c", "sleep 1000; true"}, {.uid = kNobody});
  ASSERT_TRUE(admin && script);
  ExpectNoRows(ScanAndRun("proc-service-account-interactive-shell"), {admin->pid(), script->pid()});
}

}  // namespace
}  // namespace sentinel::rules_test
