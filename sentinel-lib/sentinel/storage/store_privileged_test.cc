// The store opened by its owner while root touches it (needs root; skips
// otherwise with the reason).
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::storage {
namespace {

// Runs `body` in a child that is uid:gid; its exit code.
int RunAs(uid_t uid, gid_t gid, const std::function<int()>& body,
          const std::function<void()>& meanwhile = {}) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(1, &gid) != 0 || ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0)
      ::_exit(90);
    ::_exit(body());
  }
  if (pid < 0) return -1;
  if (meanwhile) meanwhile();
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// procmond failed to start in CI with "attempt to write a readonly database":
// a root reader (the test polling the store; `sudo sentinelcli` on a host)
// created the -wal as root, and SQLite gives it to the store's owner only
// after the open. A writer opening it in between had it read-only. OpenStore
// now sees the refusal and opens again; here the hand-over comes 60 ms late.
TEST(StorePrivilegedTest, WriterOpensAgainWhenARootReaderHandsOverTheWalLate) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "privileged test: needs root to leave a -wal the store's owner cannot write";
  const passwd* pw = ::getpwnam("nobody");
  ASSERT_NE(pw, nullptr) << "no user nobody on this host";
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  testing::TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), uid, gid), 0);
  const std::string path = dir.File("events.db");
  const StoreOptions rw{path, OpenMode::kReadWrite, 5000, 0};

  // The owner's store; closed, it leaves no -wal behind.
  ASSERT_EQ(RunAs(uid, gid, [&] { return EventStore::Open(rw).ok() ? 0 : 1; }), 0);
  struct stat st {};
  ASSERT_NE(::stat((path + "-wal").c_str(), &st), 0);

  // The reader's -wal, still root's.
  const int fd = ::open((path + "-wal").c_str(), O_RDWR | O_CREAT | O_EXCL, 0640);
  ASSERT_GE(fd, 0);
  ::close(fd);

  const int code = RunAs(
      uid, gid,
      [&] {
        auto db = OpenStore(DatabaseKind::kEvents, rw);
        if (!db.ok()) {
          std::fprintf(stderr, "OpenStore: %s\n", db.status().ToString().c_str());
          return 1;
        }
        Status s = (*db)->Exec("CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (1)");
        if (!s.ok()) {
          std::fprintf(stderr, "write: %s\n", s.ToString().c_str());
          return 2;
        }
        return 0;
      },
      [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        ASSERT_EQ(::chown((path + "-wal").c_str(), uid, gid), 0);
      });
  EXPECT_EQ(code, 0) << "1: the open failed, 2: the connection could not write (see stderr)";
}

// A side file that stays someone else's is still refused, naming the store.
TEST(StorePrivilegedTest, WalThatStaysRootsIsRefused) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "privileged test: needs root to leave a -wal the store's owner cannot write";
  const passwd* pw = ::getpwnam("nobody");
  ASSERT_NE(pw, nullptr) << "no user nobody on this host";
  testing::TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), pw->pw_uid, pw->pw_gid), 0);
  const std::string path = dir.File("events.db");
  const StoreOptions rw{path, OpenMode::kReadWrite, 5000, 0};
  ASSERT_EQ(RunAs(pw->pw_uid, pw->pw_gid, [&] { return EventStore::Open(rw).ok() ? 0 : 1; }), 0);
  const int fd = ::open((path + "-wal").c_str(), O_RDWR | O_CREAT | O_EXCL, 0640);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const std::string out = dir.File("message");
  const int code = RunAs(pw->pw_uid, pw->pw_gid, [&] {
    auto db = OpenStore(DatabaseKind::kEvents, rw);
    if (db.ok()) return 0;
    FILE* f = std::fopen(out.c_str(), "w");
    if (f) {
      std::fputs(db.status().message().c_str(), f);
      std::fclose(f);
    }
    return db.status().code() == StatusCode::kPermissionDenied ? 3 : 4;
  });
  EXPECT_EQ(code, 3);
  FILE* f = std::fopen(out.c_str(), "r");
  ASSERT_NE(f, nullptr);
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const std::string message(buf, n);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find(path + "-wal: the database's side file is not writable"), std::string::npos)
      << message;
  EXPECT_NE(message.find("owned by uid 0"), std::string::npos) << message;
}

}  // namespace
}  // namespace sentinel::storage
