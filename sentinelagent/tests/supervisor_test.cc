// The supervisor's restart backoff on real short-lived children, with the
// clock injected through Poll(now_ms): no test waits for time to pass, only
// for the child's exit (a pidfd).
#include "sentinelagent/supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace sentinel::agent {
namespace {

// Waits for the running child to exit (not reaping it: Poll does).
void WaitForChildExit(const Supervisor& s) {
  ASSERT_GT(s.pid(), 0);
  ASSERT_TRUE(WaitForProcessExit(s.pid(), 30'000)) << "the child did not exit";
}

// Starts the child at `now` (when its backoff has passed), waits for it to
// exit and lets the supervisor see the exit at `now + ran_ms`.
void RunOnce(Supervisor& s, int64_t now, int64_t ran_ms) {
  s.Poll(now);
  ASSERT_GT(s.pid(), 0) << "not started at " << now;
  WaitForChildExit(s);
  s.Poll(now + ran_ms);
  ASSERT_EQ(s.pid(), -1) << "exit not seen";
}

// The first moment after `from` at which Poll starts the child again,
// probed with the injected clock: exactly `from + delay` for the expected
// delay (nothing before it).
void ExpectRestartAfter(Supervisor& s, int64_t from, int64_t delay) {
  s.Poll(from + delay - 1);
  EXPECT_EQ(s.pid(), -1) << "restarted before its backoff of " << delay << " ms";
}

TEST(SupervisorTest, RestartDelaysDoubleFromOneSecondUpToOneMinute) {
  Supervisor s("/bin/true", {});
  int64_t now = 0;
  RunOnce(s, now, 10);
  now += 10;
  // 1 s, 2 s, 4 s, ... 32 s, then capped at 60 s.
  for (int64_t delay : {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000}) {
    ExpectRestartAfter(s, now, delay);
    now += delay;
    RunOnce(s, now, 10);
    now += 10;
  }
  EXPECT_EQ(s.restarts(), 8);
}

TEST(SupervisorTest, ARunOfFiveMinutesResetsTheBackoff) {
  Supervisor s("/bin/true", {});
  int64_t now = 0;
  RunOnce(s, now, 10);  // next delay 1 s
  now += 10 + 1000;
  RunOnce(s, now, 10);  // next delay 2 s
  now += 10 + 2000;
  RunOnce(s, now, 10);  // next delay 4 s
  now += 10 + 4000;
  // This run lasts five minutes (by the injected clock): back to 1 s.
  RunOnce(s, now, 5 * 60'000);
  now += 5 * 60'000;
  ExpectRestartAfter(s, now, 1000);
  s.Poll(now + 1000);
  EXPECT_GT(s.pid(), 0);
  s.Stop(10'000);
}

TEST(SupervisorTest, AProgramThatCannotRunIsRestartedWithBackoff) {
  Supervisor s("/nonexistent/procmond", {});
  RunOnce(s, 0, 0);  // exec fails: exit 127
  ExpectRestartAfter(s, 0, 1000);
  s.Poll(1000);
  EXPECT_GT(s.pid(), 0);
  WaitForChildExit(s);
  s.Poll(1000);
  EXPECT_EQ(s.restarts(), 1);
}

TEST(SupervisorTest, StopTermsThenKillsAChildThatIgnoresSigterm) {
  // Writes "ready" once SIGTERM is ignored, then sleeps.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  Supervisor s("/bin/sh",
               {"-c", "trap '' TERM; echo ready >&" + std::to_string(ready[1]) + "; exec sleep 600"});
  s.Poll(0);
  const pid_t child = s.pid();
  ASSERT_GT(child, 0);
  ::close(ready[1]);
  char buf[6] = {};
  ASSERT_EQ(::read(ready[0], buf, 5), 5);
  ::close(ready[0]);
  s.Stop(200);  // SIGTERM is ignored: SIGKILL after the grace
  EXPECT_EQ(s.pid(), -1);
  EXPECT_EQ(::kill(child, 0), -1) << "the child is still there";
}

TEST(SupervisorTest, StopEndsAChildThatHonoursSigterm) {
  Supervisor s("/bin/sleep", {"600"});
  s.Poll(0);
  const pid_t child = s.pid();
  ASSERT_GT(child, 0);
  s.Stop(30'000);
  EXPECT_EQ(s.pid(), -1);
  EXPECT_EQ(::kill(child, 0), -1);
}

}  // namespace
}  // namespace sentinel::agent
