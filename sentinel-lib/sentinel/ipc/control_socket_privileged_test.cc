// Control socket tests that need root (label "privileged"); each skips with
// the reason otherwise.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "control_socket_test_util.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::ipc {
namespace {

// As root: a child that switches to nobody (65534) connects and is refused by
// the SO_PEERCRED check (the directory and socket are opened up so that the
// uid check, not file permissions, is what stops it).
TEST(ControlServer, PeerWithWrongUidIsRefused) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to run a client as uid 65534 (nobody)";
  TestServer ts;
  ASSERT_TRUE(ts.server);
  ASSERT_EQ(::chmod(ts.tmp.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(ts.tmp.File("run").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(ts.path().c_str(), 0666), 0);
  const std::string path = ts.path();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(20);
    auto r = Call(path, "health", 3000);
    if (!r.ok()) ::_exit(21);
    if ((*r)["ok"] == true) ::_exit(22);
    const std::string e = (*r)["error"].get<std::string>();
    ::_exit(e.find("permission denied: uid 65534") != std::string::npos ? 0 : 23);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "20: setuid failed, 21: no reply, 22: served, 23: other error";
  EXPECT_EQ(ts.server->stats().refused_peers, 1u);
  EXPECT_EQ(ts.scans.load(), 0);
  EXPECT_TRUE(Call(ts.path(), "health", 2000).ok());
}

// A subscription is uid-checked like every request: nobody cannot subscribe,
// and gets no notice.
TEST(ControlServer, SubscriberWithWrongUidIsRefused) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to run a client as uid 65534 (nobody)";
  TestServer ts;
  ASSERT_TRUE(ts.server);
  ASSERT_EQ(::chmod(ts.tmp.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(ts.tmp.File("run").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(ts.path().c_str(), 0666), 0);
  const std::string path = ts.path();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(20);
    auto sub = Subscription::Open(path, kSubscribeEvents, 3000);
    if (sub.ok()) ::_exit(22);
    ::_exit(sub.status().message().find("permission denied: uid 65534") != std::string::npos ? 0 : 23);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "20: setuid failed, 22: subscribed, 23: other error";
  EXPECT_EQ(ts.server->stats().refused_peers, 1u);
  EXPECT_EQ(ts.server->stats().subscribers, 0u);
}

}  // namespace
}  // namespace sentinel::ipc
