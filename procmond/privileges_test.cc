// Privileged: runs the real procmond as root and checks, from
// /proc/PID/status of the running collector, that it dropped to the
// configured user with only the configured capabilities.
#include "procmond/privileges.h"

#include <linux/capability.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "sentinel/base/files.h"
#include "sentinel/storage/store.h"
#include "sentinel/testing/subprocess.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

const std::string kProcmond = std::string(SENTINEL_BINARY_DIR) + "/procmond/procmond";

std::string StatusLine(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

int64_t ScanCount(const std::string& db) {
  auto store = storage::OpenStore(storage::DatabaseKind::kEvents, {db, storage::OpenMode::kReadOnly, 1000});
  if (!store.ok()) return 0;
  auto n = (*store)->QueryInt("SELECT count(*) FROM scan_metadata WHERE status='completed'");
  return n.ok() ? n->value_or(0) : 0;
}

TEST(PrivilegesTest, CollectorDropsToConfiguredUserKeepingOnlyConfiguredCaps) {
  if (geteuid() != 0)
    GTEST_SKIP() << "privileged test: needs root to start procmond as root and watch it drop";
  auto nobody = LookupUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status().message();
  testing::TempDir dir;
  chmod(dir.path().c_str(), 0755);
  const std::string db = dir.File("data/events.db");
  testing::WriteFile(
      dir.File("config.yaml"),
      "database: {path: " + db +
          "}\n"
          "collection: {interval_secs: 1}\n"
          "privileges: {user: nobody, keep_capabilities: [CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH]}\n"
          "telemetry: {log_level: warn}\n");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("HOME", dir.path().c_str(), 1);
    setenv("XDG_CONFIG_HOME", dir.path().c_str(), 1);
    // Never the host's default ledger under /var/lib/sentineld.
    setenv("SENTINELD_DATABASE__AUDIT_PATH", dir.File("audit.db").c_str(), 1);
    // Nor the host's control socket directory (/run/sentineld).
    setenv("SENTINELD_IPC__SOCKET_DIR", dir.File("ipc").c_str(), 1);
    execl(kProcmond.c_str(), kProcmond.c_str(), "--config", dir.File("config.yaml").c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 200 && ScanCount(db) < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(ScanCount(db), 2) << "procmond kept writing scans after dropping privileges";

  const std::string uid = std::to_string(nobody->first);
  EXPECT_EQ(StatusLine(pid, "Uid"), "\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid);
  auto caps = ReadCapabilityState(pid);
  ASSERT_TRUE(caps.ok());
  const uint64_t want = (1ULL << CAP_SYS_PTRACE) | (1ULL << CAP_DAC_READ_SEARCH);
  EXPECT_EQ(caps->effective, want);
  EXPECT_EQ(caps->permitted, want);
  EXPECT_EQ(caps->bounding, want);
  EXPECT_EQ(caps->inheritable, 0u);
  EXPECT_EQ(caps->ambient, 0u);
  EXPECT_TRUE(caps->no_new_privs);
  struct stat st {};
  ASSERT_EQ(stat(db.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody->first);
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  // With CAP_SYS_PTRACE kept it still sees root's processes in full.
  auto store = storage::OpenStore(storage::DatabaseKind::kEvents, {db, storage::OpenMode::kReadOnly, 1000});
  ASSERT_TRUE(store.ok());
  auto exe = (*store)->QueryText("SELECT exe_path FROM processes WHERE pid = " + std::to_string(getpid()));
  ASSERT_TRUE(exe.ok());
  EXPECT_TRUE(exe->has_value()) << "exe of a root process unreadable after the drop";

  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(PrivilegesTest, MissingUserIsAConfigurationError) {
  if (geteuid() != 0) GTEST_SKIP() << "privileged test: the user is only looked up when starting as root";
  testing::TempDir dir;
  const std::string db = dir.File("events.db");
  testing::WriteFile(dir.File("config.yaml"), "privileges: {user: no-such-user-sentinel}\n");
  auto r = testing::Run({kProcmond, "--once", "--config", dir.File("config.yaml"), "--database", db},
                        {"HOME=" + dir.path(), "XDG_CONFIG_HOME=" + dir.path()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("privileges.user"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no-such-user-sentinel"), std::string::npos) << r.err;
  EXPECT_FALSE(testing::FileExists(db));
}

TEST(PrivilegesTest, UnprivilegedRunReportsWhatIsMissing) {
  if (geteuid() == 0) {
    // Run the unprivileged path in a child that gives up root first.
    pid_t pid = fork();
    if (pid == 0) {
      if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(3);
      auto r = DropPrivileges({"nobody", {"CAP_SYS_PTRACE"}, {}});
      _exit(r.ok() && !r->dropped && !r->was_root && !r->missing.empty() ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return;
  }
  auto r = DropPrivileges({"nobody", {"CAP_SYS_PTRACE"}, {}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->dropped);
  EXPECT_FALSE(r->missing.empty());
}

}  // namespace
}  // namespace sentinel::procmond

namespace sentinel::procmond {
namespace {

// Issue 14: a chown path the service user swapped for a link (or a hard link)
// to root's file is refused; the file keeps its owner.
TEST(PrivilegesTest, ChownPathsNeverFollowLinks) {
  if (geteuid() != 0) GTEST_SKIP() << "privileged test: needs root to give files away and drop";
  auto nobody = LookupUser("nobody");
  if (!nobody.ok()) GTEST_SKIP() << "needs the nobody user: " << nobody.status().message();
  for (const std::string kind : {"symlink", "hardlink"}) {
    SCOPED_TRACE(kind);
    testing::TempDir dir;
    testing::WriteFile(dir.File("root-file"), "precious");
    ASSERT_EQ(chmod(dir.File("root-file").c_str(), 0600), 0);
    const std::string planted = dir.File("events.db");
    if (kind == "symlink") {
      ASSERT_EQ(symlink(dir.File("root-file").c_str(), planted.c_str()), 0);
    } else {
      ASSERT_EQ(link(dir.File("root-file").c_str(), planted.c_str()), 0);
    }
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      PrivilegeOptions o;
      o.user = "nobody";
      o.chown_paths = {planted};
      auto r = DropPrivileges(o);
      const bool refused = !r.ok() && IsRefusedPath(r.status()) &&
                           r.status().message().find("refusing " + planted) != std::string::npos;
      _exit(refused ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the planted " << kind << " was not refused";
    struct stat st {};
    ASSERT_EQ(stat(dir.File("root-file").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  }
}

}  // namespace
}  // namespace sentinel::procmond
