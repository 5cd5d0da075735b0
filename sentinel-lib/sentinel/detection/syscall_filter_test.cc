// The query worker's seccomp filter, in real child processes: once it is
// installed, creating or opening a file fails with EPERM and nothing is
// created, writing is refused on every descriptor but the result one and
// stderr, and socket(), execve() and fork() kill the process (SIGSYS).
#include "sentinel/detection/syscall_filter.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::detection {
namespace {

struct ChildOutcome {
  int status = 0;
  std::string report;  // what the child wrote to its result descriptor
};

// Forks; the child installs the filter with `result_fd` = the write end of
// a pipe, runs `body` (which reports through the pipe) and exits 0.
ChildOutcome RunFiltered(const std::function<void(int result_fd)>& body) {
  int p[2];
  EXPECT_EQ(::pipe(p), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    if (!InstallQueryWorkerFilter(p[1]).ok()) ::_exit(99);
    body(p[1]);
    ::_exit(0);
  }
  ::close(p[1]);
  ChildOutcome out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.report.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  EXPECT_EQ(::waitpid(pid, &out.status, 0), pid);
  return out;
}

void Report(int fd, const std::string& s) {
  (void)!::write(fd, s.data(), s.size());
}

std::string Errno(long rc) {
  return rc >= 0 ? "ok" : (errno == EPERM ? "EPERM" : "errno " + std::to_string(errno));
}

TEST(SyscallFilterTest, NoFileCanBeCreatedOrOpened) {
  testing::TempDir dir;
  const std::string created = dir.File("created");
  const std::string existing = dir.File("existing");
  testing::WriteFile(existing, "x");
  auto out = RunFiltered([&](int fd) {
    Report(fd, "creat:" + Errno(::open(created.c_str(), O_CREAT | O_WRONLY, 0600)) + ";");
    Report(fd, "openat:" + Errno(::openat(AT_FDCWD, existing.c_str(), O_RDONLY)) + ";");
    Report(fd, "rdwr:" + Errno(::open(existing.c_str(), O_RDWR)) + ";");
    Report(fd, "unlink:" + Errno(::unlink(existing.c_str())) + ";");
  });
  ASSERT_TRUE(WIFEXITED(out.status)) << out.status;
  EXPECT_EQ(WEXITSTATUS(out.status), 0);
  EXPECT_EQ(out.report, "creat:EPERM;openat:EPERM;rdwr:EPERM;unlink:EPERM;");
  EXPECT_FALSE(testing::FileExists(created));
  EXPECT_TRUE(testing::FileExists(existing));
}

TEST(SyscallFilterTest, WritesOnlyToTheResultDescriptor) {
  testing::TempDir dir;
  const std::string file = dir.File("open-before");
  const int other = ::open(file.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(other, 0);
  auto out = RunFiltered([&](int fd) {
    const long w = ::write(other, "leak", 4);
    Report(fd, "other:" + Errno(w) + ";");
    const long t = ::ftruncate(other, 100);
    Report(fd, "ftruncate:" + Errno(t) + ";");
  });
  ::close(other);
  ASSERT_TRUE(WIFEXITED(out.status)) << out.status;
  EXPECT_EQ(out.report, "other:EPERM;ftruncate:EPERM;");
  EXPECT_EQ(testing::ReadFile(file), "");
}

void ExpectKilledBySigsys(const ChildOutcome& out, const char* what) {
  ASSERT_TRUE(WIFSIGNALED(out.status)) << what << ": status " << out.status << ", report " << out.report;
  EXPECT_EQ(WTERMSIG(out.status), SIGSYS) << what;
  EXPECT_EQ(out.report, "before;") << what;
}

TEST(SyscallFilterTest, SocketKillsTheProcess) {
  auto out = RunFiltered([](int fd) {
    Report(fd, "before;");
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    Report(fd, "socket returned " + std::to_string(s) + ";");
  });
  ExpectKilledBySigsys(out, "socket");
}

TEST(SyscallFilterTest, ExecKillsTheProcess) {
  auto out = RunFiltered([](int fd) {
    Report(fd, "before;");
    char sh[] = "/bin/sh";
    char* argv[] = {sh, nullptr};
    ::execve(sh, argv, nullptr);
    Report(fd, "execve returned;");
  });
  ExpectKilledBySigsys(out, "execve");
}

TEST(SyscallFilterTest, ForkKillsTheProcess) {
  auto out = RunFiltered([](int fd) {
    Report(fd, "before;");
    // glibc's fork() is clone(); both are refused.
    const long r = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (r == 0) ::_exit(0);
    Report(fd, "clone returned;");
  });
  ExpectKilledBySigsys(out, "clone");
}

// The agent's systemd unit (SystemCallFilter=@system-service) refuses the
// seccomp(2) system call with EPERM; the filter must still go on.
TEST(SyscallFilterTest, InstallsUnderAServiceManagerFilterWithoutSeccompSyscall) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    sock_filter outer[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_seccomp, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof outer / sizeof outer[0]), outer};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      ::_exit(98);
    Status s = InstallQueryWorkerFilter(p[1]);
    Report(p[1], s.ok() ? "installed;" : s.message() + ";");
    Report(p[1], "creat:" + Errno(::open("/nonexistent-dir-for-test/x", O_CREAT | O_WRONLY, 0600)) + ";");
    ::_exit(0);
  }
  ::close(p[1]);
  std::string report;
  char buf[256];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) report.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(report, "installed;creat:EPERM;");
}

}  // namespace
}  // namespace sentinel::detection
