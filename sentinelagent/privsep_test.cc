// Privileged: the root launcher's whole interface (start the program fixed at
// fork, report its exits, relay three signals, stop it when the agent goes)
// and the agent's drop, on real processes.
#include "sentinelagent/privsep.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "sentinel/base/files.h"
#include "sentinel/testing/temp_dir.h"
#include "sentinelagent/supervisor.h"

namespace sentinel::agent {
namespace {

bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

pid_t ParentOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  return static_cast<pid_t>(std::atol(line.c_str() + close + 4));
}

// A FIFO at `path` the child writes one line into; opened read-write so
// that neither side's open blocks and the wait is for the line itself.
class LineChannel {
 public:
  explicit LineChannel(const std::string& path) {
    ::unlink(path.c_str());
    if (::mkfifo(path.c_str(), 0600) == 0) fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  }
  // The first line written, waiting up to 10 s for it; "" when none came.
  std::string ReadLine() {
    std::string text;
    while (fd_.get() >= 0 && (text.empty() || text.back() != '\n')) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 10'000) != 1) return "";
      char c;
      if (::read(fd_.get(), &c, 1) != 1) return "";
      text += c;
    }
    return text;
  }

 private:
  UniqueFd fd_;
};

TEST(LauncherTest, StartsOnlyItsFixedProgramReportsExitsAndRelaysThreeSignals) {
  if (geteuid() != 0)
    GTEST_SKIP() << "privileged test: the launcher exists only for an agent started as root";
  testing::TempDir dir;
  const std::string out = dir.File("child");
  LineChannel first_line(out);
  // The child says who its parent is and what supervisor pid it was told.
  auto launcher = Launcher::Fork(
      {"/bin/sh", {"-c", "echo \"$SENTINELD_SUPERVISOR_PID $PPID\" > " + out + "; exec sleep 600"}});
  ASSERT_TRUE(launcher.ok()) << launcher.status().ToString();
  const pid_t lpid = (*launcher)->pid();
  EXPECT_EQ(ParentOf(lpid), getpid());

  auto first = (*launcher)->Start();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first_line.ReadLine(), std::to_string(lpid) + " " + std::to_string(lpid) + "\n");
  EXPECT_EQ(ParentOf(*first), lpid);

  // One child at a time.
  auto busy = (*launcher)->Start();
  EXPECT_FALSE(busy.ok());
  // Only SIGTERM, SIGKILL and SIGHUP are relayed.
  for (int sig : {SIGSTOP, SIGUSR1, SIGINT, 0, 64}) EXPECT_FALSE((*launcher)->Signal(sig).ok()) << sig;
  EXPECT_TRUE(Alive(*first));

  auto none = (*launcher)->NextExit(0);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE((*launcher)->Signal(SIGHUP).ok());
  auto exit = (*launcher)->NextExit(10'000);
  ASSERT_TRUE(exit.ok()) << exit.status().ToString();
  ASSERT_TRUE(exit->has_value());
  EXPECT_EQ((*exit)->pid, *first);
  EXPECT_TRUE(WIFSIGNALED((*exit)->status) && WTERMSIG((*exit)->status) == SIGHUP) << (*exit)->status;

  // Restarted on request; the agent going away takes it down with the launcher.
  LineChannel second_line(out);
  auto second = (*launcher)->Start();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_FALSE(second_line.ReadLine().empty());
  launcher->reset();  // closes the socket and reaps the launcher
  EXPECT_FALSE(Alive(lpid));
  EXPECT_TRUE(WaitForProcessExit(*second, 10'000)) << "the child outlived its launcher";
  EXPECT_FALSE(Alive(*second)) << "the child outlived its launcher";
}

TEST(LauncherTest, AProgramThatCannotRunIsReportedAsAnExit) {
  if (geteuid() != 0)
    GTEST_SKIP() << "privileged test: the launcher exists only for an agent started as root";
  auto launcher = Launcher::Fork({"/nonexistent/procmond", {}});
  ASSERT_TRUE(launcher.ok()) << launcher.status().ToString();
  auto child = (*launcher)->Start();
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  auto exit = (*launcher)->NextExit(10'000);
  ASSERT_TRUE(exit.ok() && exit->has_value());
  EXPECT_EQ((*exit)->pid, *child);
  EXPECT_TRUE(WIFEXITED((*exit)->status) && WEXITSTATUS((*exit)->status) == 127) << (*exit)->status;
}

TEST(DropToUserTest, LeavesNoCapabilityAndNoWayBack) {
  if (geteuid() != 0) GTEST_SKIP() << "privileged test: only root can drop";
  auto nobody = LookupServiceUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status().ToString();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!DropToUser(*nobody).ok()) _exit(1);
    if (getuid() != nobody->uid || geteuid() != nobody->uid || getgid() != nobody->gid) _exit(2);
    if (setuid(0) == 0 || setgid(0) == 0) _exit(3);
    _exit(0);  // DropToUser itself verified the empty sets and NoNewPrivs
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(DropToUserTest, RootIsNeverTheServiceUser) {
  auto root = LookupServiceUser("root");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(root.status().message().find("privileges.user"), std::string::npos) << root.status().message();
  auto missing = LookupServiceUser("no-such-user-sentinel");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(DropToUser({"root", 0, 0}).ok());
}

}  // namespace
}  // namespace sentinel::agent
