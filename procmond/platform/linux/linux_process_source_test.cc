#include "procmond/platform/linux/linux_process_source.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace sentinel::procmond {
namespace {

// A real child process with known arguments, stopped at a known point.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    // Wait until the exec has happened (the exe link points at the program).
    char real[4096];
    std::string want = realpath(argv[0].c_str(), real) ? real : argv[0];
    for (int i = 0; i < 400; ++i) {
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/exe", pid_);
      char buf[4096];
      ssize_t n = readlink(path, buf, sizeof buf);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)) == want) break;
      usleep(5000);
    }
  }
  ~Child() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

TEST(LinuxProcessSourceTest, SeesRealChildWithItsArguments) {
  Child child({"/bin/sh", "-c", "while :; do sleep 1; done", "quote\"d arg", "new\nline"});
  LinuxProcessSource src;
  std::vector<models::ProcessRecord> procs;
  ScanErrors errors;
  ASSERT_TRUE(src.Enumerate(&procs, &errors).ok());
  const models::ProcessRecord* found = nullptr;
  const models::ProcessRecord* self = nullptr;
  for (const auto& p : procs) {
    if (p.pid == child.pid()) found = &p;
    if (p.pid == getpid()) self = &p;
  }
  ASSERT_NE(found, nullptr);
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(found->name, "sh");
  EXPECT_EQ(found->ppid, getpid());
  // /bin may be a symlink to /usr/bin (merged /usr): the kernel reports the real path.
  char real[4096];
  ASSERT_NE(realpath("/bin/sh", real), nullptr);
  EXPECT_EQ(found->exe_path, std::string(real));
  ASSERT_TRUE(found->command_line.has_value());
  EXPECT_EQ(*found->command_line,
            (std::vector<std::string>{"/bin/sh", "-c", "while :; do sleep 1; done", "quote\"d arg", "new\nline"}));
  EXPECT_EQ(found->user_id, static_cast<int64_t>(getuid()));
  EXPECT_TRUE(found->status == "sleeping" || found->status == "running") << *found->status;
  EXPECT_GT(found->start_time_ms, self->start_time_ms - 1000);
  EXPECT_GT(*found->memory_bytes, 0);
  EXPECT_GT(procs.size(), 2u);
}

TEST(LinuxProcessSourceTest, ZombieIsRecordedNotFatal) {
  pid_t pid = fork();
  if (pid == 0) _exit(3);
  // Let it become a zombie (not reaped yet).
  for (int i = 0; i < 200; ++i) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = fopen(path, "r");
    char buf[512] = {};
    if (f) {
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      (void)n;
    }
    if (strstr(buf, ") Z ")) break;
    usleep(5000);
  }
  LinuxProcessSource src;
  std::vector<models::ProcessRecord> procs;
  ScanErrors errors;
  ASSERT_TRUE(src.Enumerate(&procs, &errors).ok());
  bool seen = false;
  for (const auto& p : procs) {
    if (p.pid == pid) {
      seen = true;
      EXPECT_EQ(p.status, "zombie");
      EXPECT_FALSE(p.exe_path.has_value());
      EXPECT_TRUE(p.command_line->empty());
    }
  }
  EXPECT_TRUE(seen);
  waitpid(pid, nullptr, 0);
}

TEST(LinuxProcessSourceTest, MissingProcRootIsAnError) {
  LinuxProcessSource src("/nonexistent-proc");
  std::vector<models::ProcessRecord> procs;
  ScanErrors errors;
  Status s = src.Enumerate(&procs, &errors);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent-proc"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::procmond
