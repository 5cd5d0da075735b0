#include "procmond/hashing/exe_hasher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/crypto/sha256.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Bytes this process has read through read(2) so far (/proc/self/io rchar).
int64_t ReadChars() {
  std::string io = ReadFile("/proc/self/io");
  size_t at = io.find("rchar:");
  return at == std::string::npos ? -1 : std::stoll(io.substr(at + 6));
}

TEST(ExeHasherTest, HashesOnceThenServesFromCacheWithoutReading) {
  TempDir dir;
  const std::string content = RandomBytes(1 << 20, 1);
  WriteFile(dir.File("bin"), content);
  ExeHasher h(64 << 20);

  ExeHasher::Outcome first = h.Hash(AT_FDCWD, dir.File("bin").c_str());
  ASSERT_TRUE(first.sha256.has_value()) << first.skipped << " " << first.detail;
  EXPECT_EQ(*first.sha256, crypto::Sha256Hex(content));
  EXPECT_FALSE(first.cache_hit);

  const int64_t before = ReadChars();
  ExeHasher::Outcome second = h.Hash(AT_FDCWD, dir.File("bin").c_str());
  const int64_t read = ReadChars() - before;
  ASSERT_TRUE(second.sha256.has_value());
  EXPECT_EQ(*second.sha256, *first.sha256);
  EXPECT_TRUE(second.cache_hit);
  // Only the first /proc/self/io read is in the delta, not the 1 MiB file.
  EXPECT_LT(read, 4096) << "a cache hit read the file";
  EXPECT_EQ(h.counters().hits, 1);
  EXPECT_EQ(h.counters().misses, 1);
  EXPECT_TRUE(h.counters().skipped.empty());
}

// Hashing must not disturb the access time of what it reads (forensics).
TEST(ExeHasherTest, ReadingKeepsTheAccessTime) {
  TempDir dir;
  const std::string path = dir.File("bin");
  WriteFile(path, std::string(10000, 'z'));
  // Two days old, older than mtime: relatime would update it on any read.
  timespec times[2];
  ASSERT_EQ(::clock_gettime(CLOCK_REALTIME, &times[1]), 0);
  times[0] = times[1];
  times[0].tv_sec -= 2 * 86400;
  times[1].tv_sec -= 86400;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  ExeHasher h(1 << 20);
  ASSERT_TRUE(h.Hash(AT_FDCWD, path.c_str()).sha256.has_value());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_atim.tv_sec, times[0].tv_sec);
}

TEST(ExeHasherTest, SameInodeThroughAnotherNameIsAHit) {
  TempDir dir;
  WriteFile(dir.File("a"), "payload");
  ASSERT_EQ(::link(dir.File("a").c_str(), dir.File("b").c_str()), 0);
  ASSERT_EQ(::symlink(dir.File("a").c_str(), dir.File("c").c_str()), 0);
  ExeHasher h(1024);
  EXPECT_FALSE(h.Hash(AT_FDCWD, dir.File("a").c_str()).cache_hit);
  EXPECT_TRUE(h.Hash(AT_FDCWD, dir.File("b").c_str()).cache_hit);
  EXPECT_TRUE(h.Hash(AT_FDCWD, dir.File("c").c_str()).cache_hit);
  EXPECT_EQ(h.counters().misses, 1);
  EXPECT_EQ(h.counters().hits, 2);
}

// An in-place rewrite of the same size with mtime set back is still seen:
// ctime is part of the key and cannot be set back.
TEST(ExeHasherTest, RewriteWithRestoredMtimeIsRehashed) {
  TempDir dir;
  const std::string path = dir.File("bin");
  WriteFile(path, std::string(4096, 'a'));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  ExeHasher h(1 << 20);
  auto a = h.Hash(AT_FDCWD, path.c_str());
  ASSERT_TRUE(a.sha256);

  // Rewritten (mtime restored) until the kernel's coarse clock has moved
  // and the new ctime differs: no fixed sleep.
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const timespec times[2] = {st.st_atim, st.st_mtim};
  struct stat now {};
  do {
    ASSERT_EQ(::pwrite(fd, "b", 1, 100), 1);
    ASSERT_EQ(::futimens(fd, times), 0);
    ASSERT_EQ(::fstat(fd, &now), 0);
  } while (now.st_ctim.tv_sec == st.st_ctim.tv_sec && now.st_ctim.tv_nsec == st.st_ctim.tv_nsec);
  ::close(fd);
  struct stat st2 {};
  ASSERT_EQ(::stat(path.c_str(), &st2), 0);
  ASSERT_EQ(st2.st_size, st.st_size);
  ASSERT_EQ(st2.st_mtim.tv_nsec, st.st_mtim.tv_nsec);

  auto b = h.Hash(AT_FDCWD, path.c_str());
  ASSERT_TRUE(b.sha256);
  EXPECT_FALSE(b.cache_hit);
  EXPECT_NE(*a.sha256, *b.sha256);
  EXPECT_EQ(*b.sha256, crypto::Sha256Hex(ReadFile(path)));
  EXPECT_EQ(h.counters().misses, 2);
}

TEST(ExeHasherTest, SkipsWithReasons) {
  TempDir dir;
  WriteFile(dir.File("big"), std::string(4097, 'x'));
  WriteFile(dir.File("fits"), std::string(4096, 'x'));
  ExeHasher h(4096);
  auto big = h.Hash(AT_FDCWD, dir.File("big").c_str());
  EXPECT_FALSE(big.sha256.has_value());
  EXPECT_EQ(big.skipped, kHashSkipTooLarge);
  EXPECT_NE(big.detail.find("4097"), std::string::npos) << big.detail;
  EXPECT_TRUE(h.Hash(AT_FDCWD, dir.File("fits").c_str()).sha256.has_value());
  EXPECT_EQ(h.Hash(AT_FDCWD, "/dev/null").skipped, kHashSkipNotRegular);
  EXPECT_EQ(h.Hash(AT_FDCWD, dir.path().c_str()).skipped, kHashSkipNotRegular);
  EXPECT_EQ(h.Hash(AT_FDCWD, dir.File("missing").c_str()).skipped, kHashSkipGone);
  EXPECT_EQ(h.counters().skipped.at(kHashSkipTooLarge), 1);
  EXPECT_EQ(h.counters().skipped.at(kHashSkipNotRegular), 2);
  EXPECT_EQ(h.counters().skipped.at(kHashSkipGone), 1);
  EXPECT_EQ(h.counters().misses, 1);
  EXPECT_EQ(h.counters().hits, 0);
  EXPECT_EQ(h.cache_size(), 1u);  // skips by stat are not cached
}

TEST(ExeHasherTest, CacheIsBoundedLeastRecentlyUsedFirst) {
  TempDir dir;
  for (const char* n : {"a", "b", "c"}) WriteFile(dir.File(n), n);
  ExeHasher h(1024, /*capacity=*/2);
  h.Hash(AT_FDCWD, dir.File("a").c_str());
  h.Hash(AT_FDCWD, dir.File("b").c_str());
  EXPECT_TRUE(h.Hash(AT_FDCWD, dir.File("a").c_str()).cache_hit);  // a is now the most recent
  h.Hash(AT_FDCWD, dir.File("c").c_str());                         // evicts b
  EXPECT_EQ(h.cache_size(), 2u);
  EXPECT_TRUE(h.Hash(AT_FDCWD, dir.File("a").c_str()).cache_hit);
  EXPECT_TRUE(h.Hash(AT_FDCWD, dir.File("c").c_str()).cache_hit);
  EXPECT_FALSE(h.Hash(AT_FDCWD, dir.File("b").c_str()).cache_hit);
  EXPECT_EQ(h.counters().misses, 4);
  EXPECT_EQ(h.cache_size(), 2u);
}

// Unreadable files: checked as an unprivileged user (a forked child drops to
// nobody when the test runs as root; root would read anything).
TEST(ExeHasherTest, UnreadableFileIsSkippedAndNotRetried) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const std::string path = dir.File("secret");
  WriteFile(path, "secret bytes");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  const bool root = ::geteuid() == 0;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (root && (::setgid(65534) != 0 || ::setuid(65534) != 0)) _exit(10);
    ExeHasher h(1024);
    auto a = h.Hash(AT_FDCWD, path.c_str());
    if (a.sha256 || a.skipped != kHashSkipPermissionDenied) _exit(11);
    auto b = h.Hash(AT_FDCWD, path.c_str());  // served by the negative entry: no open
    if (b.skipped != kHashSkipPermissionDenied || b.detail != a.detail) _exit(12);
    if (h.counters().skipped.at(kHashSkipPermissionDenied) != 2 || h.counters().misses != 0) _exit(13);
    if (h.cache_size() != 1) _exit(14);
    // A root process's exe is not visible to nobody at all (stat fails).
    if (root) {
      std::string exe = "/proc/" + std::to_string(getppid()) + "/exe";
      if (h.Hash(AT_FDCWD, exe.c_str()).skipped != kHashSkipPermissionDenied) _exit(15);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed check " << WEXITSTATUS(status);
}

// A cold pass over 20 processes running the same binary hashes it once.
TEST(ExeHasherTest, TwentyProcessesOfOneBinaryHashItOnce) {
  std::vector<pid_t> kids;
  for (int i = 0; i < 20; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
      _exit(127);
    }
    kids.push_back(pid);
  }
  char real[4096];
  ASSERT_NE(::realpath("/bin/sleep", real), nullptr);
  // Wait until every child has exec'd.
  for (pid_t pid : kids) {
    std::string link = "/proc/" + std::to_string(pid) + "/exe";
    for (int i = 0; i < 400; ++i) {
      char buf[4096];
      ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)) == real) break;
      usleep(5000);
    }
  }
  ExeHasher h(256 << 20);
  std::vector<std::string> digests;
  for (pid_t pid : kids) {
    std::string link = "/proc/" + std::to_string(pid) + "/exe";
    auto o = h.Hash(AT_FDCWD, link.c_str());
    digests.push_back(o.sha256.value_or("skipped: " + o.skipped));
  }
  for (pid_t pid : kids) ::kill(pid, SIGKILL);
  for (pid_t pid : kids) ::waitpid(pid, nullptr, 0);
  const std::string want = crypto::Sha256Hex(ReadFile("/bin/sleep"));
  for (const auto& d : digests) EXPECT_EQ(d, want);
  EXPECT_EQ(h.counters().misses, 1);
  EXPECT_EQ(h.counters().hits, 19);
  EXPECT_EQ(h.cache_size(), 1u);
}

}  // namespace
}  // namespace sentinel::procmond
