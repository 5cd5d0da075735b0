// Control socket tests that need root (label "privileged"); each skips with
// the reason otherwise.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include <gtest/gtest.h>

#include "control_socket_test_util.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::ipc {
namespace {

// As root: opens the test server's directory and socket to everyone (so the
// uid check, not file permissions, is what stops a client), runs `client`
// in a child switched to nobody (65534) and returns the child's exit code
// (20: the switch failed; -1: it did not exit).
int RunAsNobody(TestServer& ts, const std::function<int(const std::string& path)>& client) {
  if (::chmod(ts.tmp.path().c_str(), 0755) != 0 || ::chmod(ts.tmp.File("run").c_str(), 0755) != 0 ||
      ::chmod(ts.path().c_str(), 0666) != 0) {
    return -1;
  }
  const std::string path = ts.path();
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(20);
    ::_exit(client(path));
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// A child running as nobody connects and is refused by the SO_PEERCRED check.
TEST(ControlServer, PeerWithWrongUidIsRefused) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to run a client as uid 65534 (nobody)";
  TestServer ts;
  ASSERT_TRUE(ts.server);
  const int code = RunAsNobody(ts, [](const std::string& path) {
    auto r = Call(path, "health", 3000);
    if (!r.ok()) return 21;
    if ((*r)["ok"] == true) return 22;
    const std::string e = (*r)["error"].get<std::string>();
    return e.find("permission denied: uid 65534") != std::string::npos ? 0 : 23;
  });
  EXPECT_EQ(code, 0) << "20: setuid failed, 21: no reply, 22: served, 23: other error";
  EXPECT_EQ(ts.server->stats().refused_peers, 1u);
  EXPECT_EQ(ts.scans.load(), 0);
  EXPECT_TRUE(Call(ts.path(), "health", 2000).ok());
}

// A subscription is uid-checked like every request: nobody cannot subscribe.
TEST(ControlServer, SubscriberWithWrongUidIsRefused) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to run a client as uid 65534 (nobody)";
  TestServer ts;
  ASSERT_TRUE(ts.server);
  const int code = RunAsNobody(ts, [](const std::string& path) {
    auto sub = Subscription::Open(path, kSubscribeEvents, 3000);
    if (sub.ok()) return 22;
    return sub.status().message().find("permission denied: uid 65534") != std::string::npos ? 0 : 23;
  });
  EXPECT_EQ(code, 0) << "20: setuid failed, 22: subscribed, 23: other error";
  EXPECT_EQ(ts.server->stats().refused_peers, 1u);
  EXPECT_EQ(ts.server->stats().subscribers, 0u);
}

}  // namespace
}  // namespace sentinel::ipc
