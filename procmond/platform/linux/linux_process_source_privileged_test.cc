// LinuxProcessSource tests that need root (label "privileged"; each skips
// with the reason otherwise): other users' processes, credential changes.
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "procmond/platform/linux/fake_proc_for_test.h"
#include "procmond/platform/linux/linux_process_source.h"
#include "procmond/platform/linux/linux_process_source_test_util.h"
#include "sentinel/testing/subprocess.h"

namespace sentinel::procmond {
namespace {

using nlohmann::json;

// A process we may not ptrace-read (here: root's, seen as nobody) costs the
// exe readlink and nothing behind the same check; it is explained once.
TEST(LinuxProcessSourceTest, InaccessibleProcessIsExplainedNotRetriedPerField) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to observe a root process as nobody";
  const pid_t target = ::getpid();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(10);
    LinuxProcessSource src;
    std::vector<models::ProcessRecord> procs;
    ScanErrors errors;
    if (!src.Enumerate(&procs, &errors).ok()) _exit(11);
    const models::ProcessRecord* p = Find(procs, target);
    if (!p) _exit(12);
    json pd = json::parse(p->platform_data);
    if (p->exe_path || p->exe_hash) _exit(13);
    if (pd.value("hash_skipped", "") != "permission_denied") _exit(14);
    if (pd["errors"].value("exe", "") != "exe: Permission denied") _exit(15);
    if (pd["errors"].value("access", "").find("not read") == std::string::npos) _exit(16);
    if (pd.contains("cwd") || pd.contains("fds") || pd.contains("ns") || pd.contains("loader_env")) _exit(17);
    if (!pd.contains("cgroup") || !pd.contains("uid")) _exit(18);
    // Every other process is root's or someone else's: none may have cost a
    // failed cwd/ns/fd read. (environ is exempt: this child's own environ is
    // root-owned 0400 since setuid made it non-dumpable.)
    for (const auto& [reason, n] : errors.by_reason) {
      if (reason.rfind("cwd", 0) == 0 || reason.rfind("ns/", 0) == 0 || reason.rfind("fd/", 0) == 0)
        _exit(19);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed check " << WEXITSTATUS(status);
}

// A real process: its euid (setresuid) shows at the next scan, both ways —
// root dropping to nobody, and nobody regaining root through its saved uid
// (the exploit direction), which leaves it non-dumpable throughout.
TEST(LinuxProcessSourceTest, RealCredentialChangeIsSeenThroughTheOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change credentials";
  int go[2], done[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(done), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    if (::read(go[0], &c, 1) != 1) _exit(1);
    if (::setresgid(65534, 65534, 0) != 0 || ::setresuid(65534, 65534, 0) != 0) _exit(2);
    if (::write(done[1], "1", 1) != 1) _exit(3);
    if (::read(go[0], &c, 1) != 1) _exit(1);
    if (::setresuid(0, 0, 0) != 0) _exit(4);
    if (::write(done[1], "2", 1) != 1) _exit(3);
    for (;;) ::pause();
  }
  auto step = [&] {
    char c;
    ASSERT_EQ(::write(go[1], "x", 1), 1);
    ASSERT_EQ(::read(done[0], &c, 1), 1);
  };
  LinuxProcessSource src({.refresh_every_scans = 0});  // only the owner can tell
  auto s1 = Scan(src);
  EXPECT_EQ(Get(s1, pid).user_id, 0);

  step();  // now nobody
  auto s2 = Scan(src);
  EXPECT_EQ(Get(s2, pid).user_id, 65534);
  EXPECT_EQ(Get(s2, pid).effective_uid, 65534);
  EXPECT_EQ(Get(s2, pid).user_name, "nobody");
  EXPECT_EQ(Pd(Get(s2, pid))["gid"], json({{"real", 65534}, {"effective", 65534}}));
  EXPECT_GE(src.last_read_counters().owner_changes, 1);

  step();  // setresuid(0, 0, 0): root again
  auto s3 = Scan(src);
  EXPECT_EQ(Get(s3, pid).user_id, 0);
  EXPECT_EQ(Get(s3, pid).effective_uid, 0);
  EXPECT_EQ(Pd(Get(s3, pid))["uid"], json({{"real", 0}, {"effective", 0}}));
  EXPECT_EQ(Pd(Get(s3, pid))["gid"]["effective"], 65534);

  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  for (int fd : {go[0], go[1], done[0], done[1]}) ::close(fd);
}

// useradd/userdel, tried again while another test holds the password file's
// lock (they exit non-zero at once then). The last failure's text, or empty.
std::string Account(const std::vector<std::string>& argv) {
  std::string err;
  for (int i = 0; i < 50; ++i) {
    testing::RunResult r = testing::Run(argv);
    if (r.exit_code == 0) return "";
    err = argv[0] + " exit " + std::to_string(r.exit_code) + ": " + r.err;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return err;
}

// A uid freed by userdel and given to a new account by useradd: the scans go
// on naming the running process after the account that has the uid now, not
// the one procmond saw first (the cache follows /etc/passwd).
TEST(LinuxProcessSourceTest, AReusedUidIsNamedAfterItsNewAccount) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to add and remove accounts";
  uid_t uid = 0;
  for (uid_t u = 64000; u > 60000; --u) {
    if (::getpwuid(u) == nullptr) {
      uid = u;
      break;
    }
  }
  ASSERT_NE(uid, 0u) << "no free uid between 60001 and 64000";
  const std::string first = "snd-reuse-" + std::to_string(::getpid()) + "a";
  const std::string second = "snd-reuse-" + std::to_string(::getpid()) + "b";
  const std::vector<std::string> add{"/usr/sbin/useradd", "--no-create-home",  "--no-user-group",
                                     "--shell",           "/usr/sbin/nologin", "--uid",
                                     std::to_string(uid)};
  auto add_user = [&](const std::string& name) {
    std::vector<std::string> argv = add;
    argv.push_back(name);
    return Account(argv);
  };
  ASSERT_EQ(add_user(first), "");
  struct Cleanup {
    pid_t pid = -1;
    std::vector<std::string> users;
    ~Cleanup() {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
      for (const auto& u : users) {
        if (::getpwnam(u.c_str()) != nullptr) Account({"/usr/sbin/userdel", "--force", u});
      }
    }
  } cleanup;
  cleanup.users = {first, second};

  cleanup.pid = ::fork();
  ASSERT_GE(cleanup.pid, 0);
  if (cleanup.pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(uid) != 0) _exit(10);
    for (;;) ::pause();
  }
  LinuxProcessSource src;
  auto name_of_child = [&]() -> std::optional<std::string> {
    std::vector<models::ProcessRecord> procs = Scan(src);
    const models::ProcessRecord* p = Find(procs, cleanup.pid);
    if (p == nullptr || p->user_id != static_cast<int64_t>(uid)) return std::nullopt;
    return p->user_name;
  };
  // setuid is done once the child shows the uid.
  std::optional<std::string> seen;
  for (int i = 0; i < 100 && !seen; ++i) {
    seen = name_of_child();
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(seen, first);

  ASSERT_EQ(Account({"/usr/sbin/userdel", "--force", first}), "");  // its process still runs
  ASSERT_EQ(add_user(second), "");
  // The password file is looked at once a second: the new name within a few.
  for (int i = 0; i < 100 && seen != second; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    seen = name_of_child();
  }
  EXPECT_EQ(seen, second) << "uid " << uid << " is " << second << " now";
}

}  // namespace
}  // namespace sentinel::procmond
