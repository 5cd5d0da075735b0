// WindowsExeHasher against real files in a temporary directory (run under
// wine64 by ctest, label `windows`; on a Windows host as is).
//
// Verified under Wine: the cache rule (hit, re-hash on a new size, last-write
// time or change time), the LRU bound, too_large, gone, not_regular_file,
// long paths, and that a hit opens nothing for reading (a file held with no
// sharing still hits). Only a Windows host verifies an ACL-denied file
// (permission_denied cached as a negative entry): Wine runs everything as
// one user that may read every file.
#include "procmond/platform/windows/exe_hasher.h"

#include <windows.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "sentinel/crypto/sha256.h"

namespace sentinel::procmond {
namespace {

namespace fs = std::filesystem;

// Removes a directory and what it holds, paths over MAX_PATH included.
void RemoveTree(const std::wstring& dir) {
  const std::wstring long_dir = LR"(\\?\)" + dir;
  WIN32_FIND_DATAW entry{};
  HANDLE find = ::FindFirstFileW((long_dir + L"\\*").c_str(), &entry);
  if (find != INVALID_HANDLE_VALUE) {
    do {
      const std::wstring name = entry.cFileName;
      if (name == L"." || name == L"..") continue;
      if ((entry.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0) {
        RemoveTree(dir + L"\\" + name);
      } else {
        ::DeleteFileW((long_dir + L"\\" + name).c_str());
      }
    } while (::FindNextFileW(find, &entry));
    ::FindClose(find);
  }
  ::RemoveDirectoryW(long_dir.c_str());
}

// A directory of its own under %TEMP%, removed with what it holds. Named
// by pid, time and a counter: Wine reuses pids from run to run.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ =
        fs::temp_directory_path() / (L"sentinel-hasher-" + std::to_wstring(::GetCurrentProcessId()) + L"-" +
                                     std::to_wstring(::GetTickCount64()) + L"-" + std::to_wstring(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() { RemoveTree(path_.wstring()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const wchar_t* name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << p.string();
}

// Opens with FILE_SHARE_* none: nobody else may read (or write, or delete)
// the file while this is held.
HANDLE LockExclusively(const fs::path& p) {
  return ::CreateFileW(p.c_str(), GENERIC_READ, 0, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
}

FILETIME LastWriteTime(const fs::path& p) {
  FILETIME t{};
  HANDLE h = ::CreateFileW(p.c_str(), FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                           OPEN_EXISTING, 0, nullptr);
  EXPECT_NE(h, INVALID_HANDLE_VALUE);
  EXPECT_TRUE(::GetFileTime(h, nullptr, nullptr, &t));
  ::CloseHandle(h);
  return t;
}

void SetLastWriteTime(const fs::path& p, const FILETIME& t) {
  HANDLE h = ::CreateFileW(p.c_str(), FILE_WRITE_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                           OPEN_EXISTING, 0, nullptr);
  ASSERT_NE(h, INVALID_HANDLE_VALUE);
  EXPECT_TRUE(::SetFileTime(h, nullptr, nullptr, &t));
  ::CloseHandle(h);
}

TEST(WindowsExeHasherTest, HashesOnceThenHitsWithoutReading) {
  TempDir dir;
  const fs::path file = dir / L"image.exe";
  WriteFile(file, "MZ not really a program");
  WindowsExeHasher hasher(1 << 20);

  auto first = hasher.Hash(file.wstring());
  ASSERT_TRUE(first.sha256.has_value()) << first.skipped << ": " << first.detail;
  EXPECT_EQ(*first.sha256, crypto::Sha256Hex("MZ not really a program"));
  EXPECT_FALSE(first.cache_hit);
  EXPECT_EQ(hasher.counters().misses, 1);

  // Nobody may read the file now: a hit must still answer, from the cache.
  HANDLE lock = LockExclusively(file);
  ASSERT_NE(lock, INVALID_HANDLE_VALUE);
  auto second = hasher.Hash(file.wstring());
  // ...and a hasher without the entry cannot read it: the lock is real.
  WindowsExeHasher cold(1 << 20);
  auto blocked = cold.Hash(file.wstring());
  ::CloseHandle(lock);

  EXPECT_TRUE(second.cache_hit);
  EXPECT_EQ(second.sha256, first.sha256);
  EXPECT_EQ(hasher.counters().hits, 1);
  EXPECT_EQ(hasher.counters().misses, 1);
  EXPECT_TRUE(hasher.counters().skipped.empty());
  EXPECT_EQ(blocked.skipped, kHashSkipPermissionDenied) << blocked.detail;
  EXPECT_FALSE(blocked.sha256.has_value());
}

TEST(WindowsExeHasherTest, RehashesAFileRewrittenToAnotherSize) {
  TempDir dir;
  const fs::path file = dir / L"grows.exe";
  WriteFile(file, "version 1");
  WindowsExeHasher hasher(1 << 20);
  ASSERT_EQ(hasher.Hash(file.wstring()).sha256, crypto::Sha256Hex("version 1"));
  WriteFile(file, "version 1.1");
  auto o = hasher.Hash(file.wstring());
  EXPECT_FALSE(o.cache_hit);
  EXPECT_EQ(o.sha256, crypto::Sha256Hex("version 1.1"));
  EXPECT_EQ(hasher.counters().misses, 2);
  EXPECT_EQ(hasher.counters().hits, 0);
}

TEST(WindowsExeHasherTest, RehashesAFileWhoseLastWriteTimeMoved) {
  TempDir dir;
  const fs::path file = dir / L"touched.exe";
  WriteFile(file, "same bytes");
  WindowsExeHasher hasher(1 << 20);
  ASSERT_TRUE(hasher.Hash(file.wstring()).sha256.has_value());
  FILETIME t = LastWriteTime(file);
  t.dwHighDateTime += 1;  // about seven minutes later
  SetLastWriteTime(file, t);
  auto o = hasher.Hash(file.wstring());
  EXPECT_FALSE(o.cache_hit);
  EXPECT_EQ(o.sha256, crypto::Sha256Hex("same bytes"));
  EXPECT_EQ(hasher.counters().misses, 2);
}

// The same size and the last-write time set back after the rewrite: only
// the change time tells (it cannot be set from user mode).
TEST(WindowsExeHasherTest, RehashesASameSizeRewriteWithItsWriteTimeSetBack) {
  TempDir dir;
  const fs::path file = dir / L"forged.exe";
  WriteFile(file, "good program");
  WindowsExeHasher hasher(1 << 20);
  ASSERT_EQ(hasher.Hash(file.wstring()).sha256, crypto::Sha256Hex("good program"));
  const FILETIME original = LastWriteTime(file);
  ::Sleep(50);  // let the change time move on
  WriteFile(file, "evil program");
  SetLastWriteTime(file, original);
  auto o = hasher.Hash(file.wstring());
  EXPECT_FALSE(o.cache_hit);
  EXPECT_EQ(o.sha256, crypto::Sha256Hex("evil program"));
}

TEST(WindowsExeHasherTest, SkipsAFileOverTheLimitWithoutCachingIt) {
  TempDir dir;
  const fs::path big = dir / L"big.exe";
  const fs::path exact = dir / L"exact.exe";
  WriteFile(big, std::string(17, 'x'));
  WriteFile(exact, std::string(16, 'x'));
  WindowsExeHasher hasher(16);
  auto o = hasher.Hash(big.wstring());
  EXPECT_EQ(o.skipped, kHashSkipTooLarge);
  EXPECT_FALSE(o.sha256.has_value());
  EXPECT_NE(o.detail.find("17"), std::string::npos) << o.detail;
  EXPECT_EQ(hasher.counters().skipped.at(kHashSkipTooLarge), 1);
  EXPECT_EQ(hasher.counters().misses, 0);
  EXPECT_EQ(hasher.cache_size(), 0U);
  EXPECT_EQ(hasher.Hash(exact.wstring()).sha256, crypto::Sha256Hex(std::string(16, 'x')));
}

TEST(WindowsExeHasherTest, AMissingFileIsGone) {
  TempDir dir;
  WindowsExeHasher hasher(1 << 20);
  EXPECT_EQ(hasher.Hash((dir / L"never-existed.exe").wstring()).skipped, kHashSkipGone);
  EXPECT_EQ(hasher.Hash((dir / L"no-such-dir\\x.exe").wstring()).skipped, kHashSkipGone);
  EXPECT_EQ(hasher.counters().skipped.at(kHashSkipGone), 2);
  EXPECT_EQ(hasher.cache_size(), 0U);
}

TEST(WindowsExeHasherTest, ADirectoryIsNotARegularFile) {
  TempDir dir;
  WindowsExeHasher hasher(1 << 20);
  auto o = hasher.Hash(dir.path().wstring());
  EXPECT_EQ(o.skipped, kHashSkipNotRegular) << o.detail;
}

TEST(WindowsExeHasherTest, ALockedFileIsSkippedAndRetriedLater) {
  TempDir dir;
  const fs::path file = dir / L"installing.exe";
  WriteFile(file, "half written");
  WindowsExeHasher hasher(1 << 20);
  HANDLE lock = LockExclusively(file);
  ASSERT_NE(lock, INVALID_HANDLE_VALUE);
  auto locked = hasher.Hash(file.wstring());
  ::CloseHandle(lock);
  EXPECT_EQ(locked.skipped, kHashSkipPermissionDenied) << locked.detail;
  // A sharing violation passes: it is not remembered.
  auto later = hasher.Hash(file.wstring());
  EXPECT_EQ(later.sha256, crypto::Sha256Hex("half written"));
  EXPECT_FALSE(later.cache_hit);
}

TEST(WindowsExeHasherTest, TheCacheKeepsTheMostRecentlyUsed) {
  TempDir dir;
  const fs::path a = dir / L"a.exe";
  const fs::path b = dir / L"b.exe";
  const fs::path c = dir / L"c.exe";
  WriteFile(a, "a");
  WriteFile(b, "b");
  WriteFile(c, "c");
  WindowsExeHasher hasher(1 << 20, 2);
  (void)hasher.Hash(a.wstring());
  (void)hasher.Hash(b.wstring());
  EXPECT_TRUE(hasher.Hash(a.wstring()).cache_hit);  // a is now the most recent
  (void)hasher.Hash(c.wstring());                   // evicts b
  EXPECT_EQ(hasher.cache_size(), 2U);
  EXPECT_TRUE(hasher.Hash(a.wstring()).cache_hit);
  EXPECT_FALSE(hasher.Hash(b.wstring()).cache_hit);
  EXPECT_EQ(hasher.counters().misses, 4);
  EXPECT_EQ(hasher.counters().hits, 2);
}

TEST(WindowsExeHasherTest, HashesAFileWithAPathLongerThanMaxPath) {
  TempDir dir;
  std::wstring deep = dir.path().wstring();
  while (deep.size() < MAX_PATH + 20) {
    deep += L"\\a-rather-long-directory-name";
    ASSERT_TRUE(::CreateDirectoryW((LR"(\\?\)" + deep).c_str(), nullptr)) << ::GetLastError();
  }
  const std::wstring file = deep + L"\\deep.exe";
  HANDLE h = ::CreateFileW((LR"(\\?\)" + file).c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW, 0, nullptr);
  ASSERT_NE(h, INVALID_HANDLE_VALUE) << ::GetLastError();
  DWORD written = 0;
  ASSERT_TRUE(::WriteFile(h, "deep", 4, &written, nullptr));
  ::CloseHandle(h);

  WindowsExeHasher hasher(1 << 20);
  auto o = hasher.Hash(file);
  EXPECT_EQ(o.sha256, crypto::Sha256Hex("deep")) << o.skipped << ": " << o.detail;
}

}  // namespace
}  // namespace sentinel::procmond
