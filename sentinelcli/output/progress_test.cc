// Progress (progress.h) on a real pseudo-terminal and a real pipe, with the
// test's clock: what is drawn, how often, how it is erased, and that a pipe
// gets nothing.
#include "sentinelcli/output/progress.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "sentinel/testing/fake_clock.h"

namespace sentinel::cli {
namespace {

// A pseudo-terminal: Progress draws on the slave; Drain() reads what reached the master.
class Pty {
 public:
  explicit Pty(unsigned short cols) {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) return;
    const char* name = ptsname(master_);
    if (name) slave_ = open(name, O_RDWR | O_NOCTTY);
    if (slave_ < 0) return;
    struct winsize ws = {};
    ws.ws_row = 24;
    ws.ws_col = cols;
    ioctl(slave_, TIOCSWINSZ, &ws);
    // Raw output: "\r" and "\n" arrive as written (no ONLCR).
    termios t{};
    tcgetattr(slave_, &t);
    cfmakeraw(&t);
    tcsetattr(slave_, TCSANOW, &t);
  }
  ~Pty() {
    if (slave_ >= 0) close(slave_);
    if (master_ >= 0) close(master_);
  }
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
  int fd() const { return slave_; }

  // Everything written so far (what is there now; the writes are done).
  std::string Drain() {
    std::string out;
    char buf[4096];
    pollfd p{master_, POLLIN, 0};
    while (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
      const ssize_t n = read(master_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int master_ = -1;
  int slave_ = -1;
};

TEST(ProgressTest, RenderShowsCountRateShareAndTimeLeft) {
  EXPECT_EQ(Progress::Render("verifying audit ledger", "entries", 0, 50'000, 0),
            "verifying audit ledger: 0/50,000 entries (0%)");
  EXPECT_EQ(Progress::Render("verifying audit ledger", "entries", 12'500, 50'000, 500),
            "verifying audit ledger: 12,500/50,000 entries (25%), 25,000/s, 0:02 left");
  EXPECT_EQ(Progress::Render("query", "rows", 1'234'567, std::nullopt, 2'000),
            "query: 1,234,567 rows, 617,283/s");
  // An hour and more.
  EXPECT_EQ(Progress::Render("export", "rows", 10, 100'000, 10'000),
            "export: 10/100,000 rows (0%), 1/s, 27:46:30 left");
  // A total the count passed was an estimate: no share, no time left.
  EXPECT_EQ(Progress::Render("export", "rows", 120, 100, 1'000), "export: 120 rows, 120/s");
  // The caller's words are escaped like any text for a terminal.
  EXPECT_EQ(Progress::Render("a\x1b[2Jb", "rows", 1, std::nullopt, 0), "a\\x1b[2Jb: 1 rows");
}

TEST(ProgressTest, DrawsOnATerminalAtMostEveryRedrawIntervalAndErasesItself) {
  Pty pty(60);
  if (pty.fd() < 0) GTEST_SKIP() << "no pseudo-terminal available";
  testing::FakeClock clock;
  {
    Progress p({.fd = pty.fd(), .label = "checking", .unit = "files", .total = 400, .clock = &clock});
    ASSERT_TRUE(p.active());
    p.Update(0);  // the first update draws at once
    EXPECT_EQ(pty.Drain(), "\rchecking: 0/400 files (0%)");
    clock.Advance(100);
    p.Update(40);  // within 250 ms of the last drawing: nothing
    EXPECT_EQ(pty.Drain(), "");
    clock.Advance(150);
    p.Update(100);
    const std::string longest = "checking: 100/400 files (25%), 400/s, 0:01 left";
    EXPECT_EQ(pty.Drain(), "\r" + longest);
    clock.Advance(250);
    p.Update(500);  // past the total (an estimate): no share, no time left
    // Shorter than the line before it: the rest is blanked.
    const std::string shorter = "checking: 500 files, 1,000/s";
    EXPECT_EQ(pty.Drain(), "\r" + shorter + std::string(longest.size() - shorter.size(), ' '));
    p.Finish();
    EXPECT_EQ(pty.Drain(), "\r" + std::string(longest.size(), ' ') + "\r");
    p.Update(100);
    p.Finish();
  }  // the destructor after Finish adds nothing
  EXPECT_EQ(pty.Drain(), "");
}

TEST(ProgressTest, ALineIsCutToTheTerminalWidthAndTheDestructorErasesIt) {
  Pty pty(20);
  if (pty.fd() < 0) GTEST_SKIP() << "no pseudo-terminal available";
  testing::FakeClock clock;
  {
    Progress p({.fd = pty.fd(), .label = "verifying audit ledger", .unit = "entries", .clock = &clock});
    p.Update(5);
    EXPECT_EQ(pty.Drain(), "\rverifying audit led");  // 19 of 20 columns
  }
  EXPECT_EQ(pty.Drain(), "\r" + std::string(19, ' ') + "\r");
}

TEST(ProgressTest, NothingOnAPipeOrABadFd) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  testing::FakeClock clock;
  {
    Progress p({.fd = fds[1], .label = "query", .unit = "rows", .clock = &clock});
    EXPECT_FALSE(p.active());
    for (int i = 0; i < 5; ++i) {
      p.Update(i * 1000);
      clock.Advance(1000);
    }
    p.Finish();
  }
  char c;
  EXPECT_EQ(read(fds[0], &c, 1), -1) << "the pipe got a byte";
  EXPECT_EQ(errno, EAGAIN);
  close(fds[0]);
  close(fds[1]);
  Progress none({.fd = -1, .label = "query", .unit = "rows", .clock = &clock});
  EXPECT_FALSE(none.active());
  none.Update(1);
}

}  // namespace
}  // namespace sentinel::cli
