// Control socket tests that need root (label "privileged"); each skips with
// the reason otherwise.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "control_socket_test_util.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::ipc {
namespace {

// A client run as nobody (65534) in a child process. The child is forked
// when the test starts, while this process still has one thread: forked
// after the test server's thread exists, it could inherit a lock that thread
// held (under ASan, its allocator's; seen in CI) and hang at its first
// allocation. It waits for Run() to send the socket path.
class NobodyClient {
 public:
  explicit NobodyClient(const std::function<int(const std::string& path)>& client) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[1]);
      std::string path;
      char buf[256];
      for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) path.append(buf, static_cast<size_t>(n));
      if (path.empty()) ::_exit(0);  // not run
      if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(20);
      ::_exit(client(path));
    }
    ::close(fds[0]);
    if (pid_ < 0) {
      ::close(fds[1]);
      return;
    }
    go_ = fds[1];
  }
  ~NobodyClient() {
    if (go_ >= 0) ::close(go_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  NobodyClient(const NobodyClient&) = delete;
  NobodyClient& operator=(const NobodyClient&) = delete;

  // As root: opens the test server's directory and socket to everyone (so
  // the uid check, not file permissions, is what stops the client), runs it
  // and returns its exit code (20: the switch to nobody failed; -1: it did
  // not run or exit).
  int Run(TestServer& ts) {
    if (pid_ <= 0 || go_ < 0) return -1;
    if (::chmod(ts.tmp.path().c_str(), 0755) != 0 || ::chmod(ts.tmp.File("run").c_str(), 0755) != 0 ||
        ::chmod(ts.path().c_str(), 0666) != 0) {
      return -1;
    }
    const std::string path = ts.path();
    const bool sent = ::write(go_, path.data(), path.size()) == static_cast<ssize_t>(path.size());
    ::close(go_);
    go_ = -1;
    if (!sent) return -1;
    int status = 0;
    const pid_t pid = pid_;
    pid_ = -1;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
};

// A child running as nobody connects and is refused by the SO_PEERCRED check.
TEST(ControlServer, PeerWithWrongUidIsRefused) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to run a client as uid 65534 (nobody)";
  NobodyClient client([](const std::string& path) {
    auto r = Call(path, "health", 3000);
    if (!r.ok()) return 21;
    if ((*r)["ok"] == true) return 22;
    const std::string e = (*r)["error"].get<std::string>();
    return e.find("permission denied: uid 65534") != std::string::npos ? 0 : 23;
  });
  TestServer ts;
  ASSERT_TRUE(ts.server);
  const int code = client.Run(ts);
  EXPECT_EQ(code, 0) << "20: setuid failed, 21: no reply, 22: served, 23: other error";
  EXPECT_EQ(ts.server->stats().refused_peers, 1u);
  EXPECT_EQ(ts.scans.load(), 0);
  EXPECT_TRUE(Call(ts.path(), "health", 2000).ok());
}

// A subscription is uid-checked like every request: nobody cannot subscribe.
TEST(ControlServer, SubscriberWithWrongUidIsRefused) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to run a client as uid 65534 (nobody)";
  NobodyClient client([](const std::string& path) {
    auto sub = Subscription::Open(path, kSubscribeEvents, 3000);
    if (sub.ok()) return 22;
    return sub.status().message().find("permission denied: uid 65534") != std::string::npos ? 0 : 23;
  });
  TestServer ts;
  ASSERT_TRUE(ts.server);
  const int code = client.Run(ts);
  EXPECT_EQ(code, 0) << "20: setuid failed, 22: subscribed, 23: other error";
  EXPECT_EQ(ts.server->stats().refused_peers, 1u);
  EXPECT_EQ(ts.server->stats().subscribers, 0u);
}

}  // namespace
}  // namespace sentinel::ipc
