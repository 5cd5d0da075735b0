// WindowsProcessSource against the live process table (run under wine64 by
// ctest, label `windows`; on a Windows host as is).
//
// The child process is this test program itself, copied under a name of its
// own into a directory whose name has a space, and run with a command line
// that selects only WindowsProcessSourceChild.DISABLED_SleepUntilKilled (a
// disabled test: it runs only when asked). Each test terminates the children
// it started, through its own handle.
//
// Verified under Wine: the listing (NtQuerySystemInformation and
// Toolhelp32), pid, ppid, name, exe_path, command line, exe hash, start
// time, memory, the token's SID and account name, CPU accounting between
// scans, and SplitCommandLine against the system's CommandLineToArgvW.
// Wine 8 has no ProcessCommandLineInformation (it answers "invalid
// parameter"), so under Wine the command line comes from the PEB fallback;
// only a Windows host (8.1 or later) verifies the information class itself.
// Only a Windows host verifies: processes of other users and protected
// processes (access denied is counted, not fatal), Idle and System (pids 0
// and 4), and meaningful integrity levels and elevation (Wine runs everything
// as one user).
#include "procmond/platform/windows/windows_process_source.h"

#include <windows.h>
// windows.h first
#include <shellapi.h>  // CommandLineToArgvW: the reference for SplitCommandLine

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/win32.h"
#include "sentinel/crypto/sha256.h"

namespace sentinel::procmond {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const wchar_t* kChildFilter = L"WindowsProcessSourceChild.DISABLED_SleepUntilKilled";

// What a child process runs: sleeps until its parent terminates it.
TEST(WindowsProcessSourceChild, DISABLED_SleepUntilKilled) {
  ::Sleep(120'000);
}

std::wstring SelfPath() {
  std::wstring buf(MAX_PATH, L'\0');
  for (;;) {
    const DWORD n = ::GetModuleFileNameW(nullptr, buf.data(), static_cast<DWORD>(buf.size()));
    if (n < buf.size()) return buf.substr(0, n);
    buf.resize(buf.size() * 2);
  }
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool EndsWithIgnoringCase(const std::string& s, const std::string& suffix) {
  return Lower(s).ends_with(Lower(suffix));
}

std::string FileSha256(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(content.empty()) << p.string();
  return crypto::Sha256Hex(content);
}

int64_t FiletimeToEpochMs(const FILETIME& f) {
  const int64_t t = static_cast<int64_t>((static_cast<uint64_t>(f.dwHighDateTime) << 32) | f.dwLowDateTime);
  return (t - 116444736000000000LL) / 10'000;
}

const models::ProcessRecord* Find(const std::vector<models::ProcessRecord>& records, int64_t pid) {
  for (const auto& r : records) {
    if (r.pid == pid) return &r;
  }
  return nullptr;
}

json PlatformData(const models::ProcessRecord& r) {
  return json::parse(r.platform_data);
}

// This program, copied to "%TEMP%\sentinel source test PID-N\sentinel
// child.exe" and started sleeping, with arguments that need quoting.
class SleepingChild {
 public:
  SleepingChild() {
    static int counter = 0;
    // Wine reuses pids from run to run: the time makes the name unique.
    dir_ = fs::temp_directory_path() /
           (L"sentinel source test " + std::to_wstring(::GetCurrentProcessId()) + L"-" +
            std::to_wstring(::GetTickCount64()) + L"-" + std::to_wstring(counter++));
    fs::create_directories(dir_);
    exe_ = dir_ / L"sentinel child.exe";
    fs::copy_file(SelfPath(), exe_, fs::copy_options::overwrite_existing);
    // Arguments that exercise the quoting rules, and one non-ASCII.
    command_line_ =
        L"\"" + exe_.wstring() + L"\" --gtest_filter=" + kChildFilter +
        L" --gtest_also_run_disabled_tests \"two words\" back\\\\slash \"quote \\\"inside\\\"\" caf\u00e9";
    argv_ = {WideToUtf8(exe_.wstring()),
             "--gtest_filter=" + WideToUtf8(kChildFilter),
             "--gtest_also_run_disabled_tests",
             "two words",
             "back\\\\slash",
             "quote \"inside\"",
             "caf\xC3\xA9"};
  }
  ~SleepingChild() {
    Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  SleepingChild(const SleepingChild&) = delete;
  SleepingChild& operator=(const SleepingChild&) = delete;

  // Starts it with its output going nowhere; false (and a test failure) if it could not.
  bool Start() {
    SECURITY_ATTRIBUTES inherit{sizeof inherit, nullptr, TRUE};
    HANDLE nul = ::CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                               &inherit, OPEN_EXISTING, 0, nullptr);
    EXPECT_NE(nul, INVALID_HANDLE_VALUE);
    STARTUPINFOW si{};
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = si.hStdOutput = si.hStdError = nul;
    std::wstring mutable_line = command_line_;
    const BOOL ok = ::CreateProcessW(exe_.c_str(), mutable_line.data(), nullptr, nullptr, TRUE,
                                     CREATE_NO_WINDOW, nullptr, nullptr, &si, &pi_);
    const DWORD err = ::GetLastError();
    ::CloseHandle(nul);
    EXPECT_TRUE(ok) << "CreateProcessW: error " << err;
    return ok != FALSE;
  }

  // Terminates the child (ours: started above) and waits for it to exit.
  void Stop() {
    if (pi_.hProcess == nullptr) return;
    ::TerminateProcess(pi_.hProcess, 0);
    ::WaitForSingleObject(pi_.hProcess, 10'000);
    ::CloseHandle(pi_.hThread);
    ::CloseHandle(pi_.hProcess);
    pi_ = {};
  }

  DWORD pid() const { return pi_.dwProcessId; }
  HANDLE process() const { return pi_.hProcess; }
  const fs::path& exe() const { return exe_; }
  const std::wstring& command_line() const { return command_line_; }
  const std::vector<std::string>& argv() const { return argv_; }

 private:
  fs::path dir_;
  fs::path exe_;
  std::wstring command_line_;
  std::vector<std::string> argv_;
  PROCESS_INFORMATION pi_{};
};

// Scans with a new source until `pid` is listed with its command line (a
// just-created process may not show it at once), for up to ten seconds.
std::vector<models::ProcessRecord> ScanUntilListed(const WindowsProcessSourceOptions& options, DWORD pid,
                                                   ScanErrors* errors, std::string* listing = nullptr) {
  std::vector<models::ProcessRecord> records;
  for (int attempt = 0; attempt < 100; ++attempt) {
    WindowsProcessSource source(options);
    records.clear();
    *errors = {};
    const Status st = source.Enumerate(&records, errors);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (listing != nullptr) *listing = source.last_listing();
    const models::ProcessRecord* r = Find(records, pid);
    if (r != nullptr && r->command_line) break;
    ::Sleep(100);
  }
  return records;
}

std::string ErrorsText(const ScanErrors& errors) {
  std::ostringstream out;
  for (const auto& [reason, n] : errors.by_reason) out << reason << " x" << n << "; ";
  return out.str();
}

// The fields the child was started with, whichever listing found it.
void ExpectChildFields(const models::ProcessRecord& r, const SleepingChild& child) {
  EXPECT_EQ(r.ppid, static_cast<int64_t>(::GetCurrentProcessId()));
  EXPECT_EQ(Lower(r.name), "sentinel child.exe");
  ASSERT_TRUE(r.exe_path.has_value()) << r.platform_data;
  EXPECT_TRUE(EndsWithIgnoringCase(*r.exe_path, "\\sentinel child.exe")) << *r.exe_path;
  EXPECT_EQ(Lower(*r.exe_path), Lower(WideToUtf8(child.exe().wstring())));
  ASSERT_TRUE(r.command_line.has_value()) << r.platform_data;
  EXPECT_EQ(*r.command_line, child.argv());
  EXPECT_EQ(r.exe_hash, FileSha256(child.exe())) << r.platform_data;
  EXPECT_EQ(r.status, "running");
  ASSERT_TRUE(r.memory_bytes.has_value());
  EXPECT_GT(*r.memory_bytes, 0);

  FILETIME create{}, exited{}, kernel{}, user{};
  ASSERT_TRUE(::GetProcessTimes(child.process(), &create, &exited, &kernel, &user));
  EXPECT_EQ(r.start_time_ms, FiletimeToEpochMs(create));

  const json pd = PlatformData(r);
  EXPECT_EQ(pd.value("command_line_raw", ""), WideToUtf8(child.command_line()));
  EXPECT_GE(pd.value("threads", 0), 1) << r.platform_data;
  EXPECT_FALSE(pd.contains("hash_skipped")) << r.platform_data;
  EXPECT_FALSE(pd.contains("errors")) << r.platform_data;
}

TEST(WindowsProcessSourceTest, ListsAChildWithWhatItWasStartedWith) {
  SleepingChild child;
  ASSERT_TRUE(child.Start());
  ScanErrors errors;
  std::string listing;
  const auto records = ScanUntilListed({}, child.pid(), &errors, &listing);
  EXPECT_EQ(listing, "NtQuerySystemInformation");
  const models::ProcessRecord* r = Find(records, child.pid());
  ASSERT_NE(r, nullptr) << "child pid " << child.pid() << " not listed among " << records.size();
  ExpectChildFields(*r, child);
  EXPECT_EQ(r->cpu_percent, 0.0);  // first sight
}

TEST(WindowsProcessSourceTest, TheToolhelpListingFindsTheSameChild) {
  SleepingChild child;
  ASSERT_TRUE(child.Start());
  ScanErrors errors;
  std::string listing;
  const auto records = ScanUntilListed({.force_toolhelp = true}, child.pid(), &errors, &listing);
  EXPECT_EQ(listing, "Toolhelp32");
  const models::ProcessRecord* r = Find(records, child.pid());
  ASSERT_NE(r, nullptr) << "child pid " << child.pid() << " not listed among " << records.size();
  ExpectChildFields(*r, child);
}

TEST(WindowsProcessSourceTest, OwnProcessCarriesItsToken) {
  WindowsProcessSource source;
  std::vector<models::ProcessRecord> records;
  ScanErrors errors;
  ASSERT_TRUE(source.Enumerate(&records, &errors).ok());
  const models::ProcessRecord* self = Find(records, ::GetCurrentProcessId());
  ASSERT_NE(self, nullptr);
  const json pd = PlatformData(*self);

  ASSERT_TRUE(self->user_name.has_value()) << self->platform_data;
  EXPECT_NE(self->user_name->find('\\'), std::string::npos) << *self->user_name;
  const std::string sid = pd.value("sid", "");
  EXPECT_TRUE(sid.starts_with("S-1-")) << self->platform_data;
  // user_id is the SID's last sub-authority (its RID).
  ASSERT_TRUE(self->user_id.has_value());
  EXPECT_EQ(std::to_string(*self->user_id), sid.substr(sid.rfind('-') + 1));
  EXPECT_FALSE(self->effective_uid.has_value());

  const std::set<std::string> levels = {"untrusted", "low", "medium", "high", "system"};
  EXPECT_TRUE(levels.contains(pd.value("integrity_level", ""))) << self->platform_data;
  EXPECT_TRUE(pd.contains("elevated") && pd["elevated"].is_boolean()) << self->platform_data;
  const std::set<std::string> types = {"default", "full", "limited"};
  EXPECT_TRUE(types.contains(pd.value("elevation_type", ""))) << self->platform_data;
  DWORD session = 0;
  ASSERT_TRUE(::ProcessIdToSessionId(::GetCurrentProcessId(), &session));
  EXPECT_EQ(pd.value("session_id", -1), static_cast<int64_t>(session)) << self->platform_data;

  ASSERT_TRUE(self->exe_path.has_value());
  EXPECT_EQ(Lower(*self->exe_path), Lower(WideToUtf8(SelfPath())));
  EXPECT_EQ(self->exe_hash, FileSha256(SelfPath()));
  FILETIME create{}, exited{}, kernel{}, user{};
  ASSERT_TRUE(::GetProcessTimes(::GetCurrentProcess(), &create, &exited, &kernel, &user));
  EXPECT_EQ(self->start_time_ms, FiletimeToEpochMs(create));
}

TEST(WindowsProcessSourceTest, EveryRecordIsWellFormed) {
  WindowsProcessSource source;
  std::vector<models::ProcessRecord> records;
  ScanErrors errors;
  ASSERT_TRUE(source.Enumerate(&records, &errors).ok());
  ASSERT_GT(records.size(), 1U);
  std::set<int64_t> pids;
  for (const auto& r : records) {
    EXPECT_TRUE(pids.insert(r.pid).second) << "pid " << r.pid << " listed twice";
    const json pd = json::parse(r.platform_data, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(pd.is_object()) << r.platform_data;
    EXPECT_EQ(pd.contains("kernel_process"), r.pid == 0 || r.pid == 4) << r.platform_data;
    if (r.exe_hash) {
      EXPECT_EQ(r.exe_hash->size(), 64U);
    }
  }
  // Errors are counted, never fatal; whatever was counted names its field.
  int64_t sum = 0;
  for (const auto& [reason, n] : errors.by_reason) sum += n;
  EXPECT_EQ(sum, errors.count) << ErrorsText(errors);
}

TEST(WindowsProcessSourceTest, CpuAndHashCountersSpanTheIntervalBetweenScans) {
  WindowsProcessSource source;
  std::vector<models::ProcessRecord> first;
  ScanErrors errors;
  ASSERT_TRUE(source.Enumerate(&first, &errors).ok());
  const HashCounters c1 = source.LastHashCounters();
  const models::ProcessRecord* self1 = Find(first, ::GetCurrentProcessId());
  ASSERT_NE(self1, nullptr);
  EXPECT_EQ(self1->cpu_percent, 0.0);  // first sight
  EXPECT_GE(c1.misses, 1);             // this program's image at least

  // Burn about 300 ms of CPU time in this process.
  FILETIME create{}, exited{}, kernel{}, user{};
  auto cpu_100ns = [&] {
    ::GetProcessTimes(::GetCurrentProcess(), &create, &exited, &kernel, &user);
    auto u = [](const FILETIME& f) {
      return (static_cast<uint64_t>(f.dwHighDateTime) << 32) | f.dwLowDateTime;
    };
    return u(kernel) + u(user);
  };
  const uint64_t start = cpu_100ns();
  const ULONGLONG deadline = ::GetTickCount64() + 5'000;
  volatile uint64_t sink = 0;
  while (cpu_100ns() - start < 3'000'000 && ::GetTickCount64() < deadline) {
    for (int i = 0; i < 100'000; ++i) sink = sink + static_cast<uint64_t>(i);
  }

  std::vector<models::ProcessRecord> second;
  ASSERT_TRUE(source.Enumerate(&second, &errors).ok());
  const HashCounters c2 = source.LastHashCounters();
  const models::ProcessRecord* self2 = Find(second, ::GetCurrentProcessId());
  ASSERT_NE(self2, nullptr);
  ASSERT_TRUE(self2->cpu_percent.has_value());
  EXPECT_GT(*self2->cpu_percent, 1.0);
  EXPECT_LT(*self2->cpu_percent, 100.0 * 1.5);  // one thread: at most one core (plus timer slack)

  // The second scan hashes only what it sees for the first time; a hash kept
  // for an instance counts as a hit.
  int64_t kept = 0;
  int64_t new_instances = 0;
  for (const auto& r : second) {
    const models::ProcessRecord* before = Find(first, r.pid);
    if (before == nullptr || before->start_time_ms != r.start_time_ms) {
      ++new_instances;
    } else if (r.exe_hash) {
      ++kept;
    }
  }
  EXPECT_GE(kept, 1);
  EXPECT_GE(c2.hits, kept);
  EXPECT_LE(c2.misses, new_instances);
  EXPECT_EQ(source.hasher_counters().misses, c1.misses + c2.misses);
}

TEST(WindowsProcessSourceTest, RefreshesRereadThroughTheHashCache) {
  WindowsProcessSource source({.refresh_every_scans = 1});
  std::vector<models::ProcessRecord> records;
  ScanErrors errors;
  ASSERT_TRUE(source.Enumerate(&records, &errors).ok());
  const int64_t hits_before = source.hasher_counters().hits;
  records.clear();
  ASSERT_TRUE(source.Enumerate(&records, &errors).ok());
  // Every image hashed at the first scan is looked up again and found.
  EXPECT_GT(source.hasher_counters().hits, hits_before);
  const models::ProcessRecord* self = Find(records, ::GetCurrentProcessId());
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(self->exe_hash, FileSha256(SelfPath()));
}

TEST(WindowsProcessSourceTest, HashingCanBeTurnedOff) {
  WindowsProcessSource source({.hash_executables = false});
  std::vector<models::ProcessRecord> records;
  ScanErrors errors;
  ASSERT_TRUE(source.Enumerate(&records, &errors).ok());
  const models::ProcessRecord* self = Find(records, ::GetCurrentProcessId());
  ASSERT_NE(self, nullptr);
  EXPECT_FALSE(self->exe_hash.has_value());
  EXPECT_EQ(PlatformData(*self).value("hash_skipped", ""), "disabled");
  EXPECT_EQ(source.hasher_counters().misses, 0);
}

TEST(WindowsProcessSourceTest, AnExitedChildIsForgotten) {
  SleepingChild child;
  ASSERT_TRUE(child.Start());
  const DWORD pid = child.pid();
  WindowsProcessSource source;
  std::vector<models::ProcessRecord> records;
  ScanErrors errors;
  ASSERT_TRUE(source.Enumerate(&records, &errors).ok());
  ASSERT_NE(Find(records, pid), nullptr);
  child.Stop();
  records.clear();
  ASSERT_TRUE(source.Enumerate(&records, &errors).ok());
  EXPECT_EQ(Find(records, pid), nullptr);
  // What is kept between scans is what the last scan listed, no more.
  EXPECT_EQ(source.tracked_instances(), records.size());
}

// --- SplitCommandLine ---

std::vector<std::string> SystemSplit(const std::wstring& line) {
  int argc = 0;
  wchar_t** argv = ::CommandLineToArgvW(line.c_str(), &argc);
  std::vector<std::string> out;
  if (argv == nullptr) return out;
  for (int i = 0; i < argc; ++i) out.push_back(WideToUtf8(argv[i]));
  ::LocalFree(argv);
  return out;
}

TEST(SplitCommandLineTest, FollowsTheDocumentedRules) {
  using V = std::vector<std::string>;
  // The examples of Microsoft's "Parsing C++ command-line arguments".
  EXPECT_EQ(SplitCommandLine(LR"(p "abc" d e)"), (V{"p", "abc", "d", "e"}));
  EXPECT_EQ(SplitCommandLine(LR"(p a\\b d"e f"g h)"), (V{"p", R"(a\\b)", "de fg", "h"}));
  EXPECT_EQ(SplitCommandLine(LR"(p a\\\"b c d)"), (V{"p", R"(a\"b)", "c", "d"}));
  EXPECT_EQ(SplitCommandLine(LR"(p a\\\\"b c" d e)"), (V{"p", R"(a\\b c)", "d", "e"}));
  // argv[0]: quotes without escapes, and no space needed after them.
  EXPECT_EQ(SplitCommandLine(LR"("C:\Program Files\x.exe" -v)"), (V{R"(C:\Program Files\x.exe)", "-v"}));
  EXPECT_EQ(SplitCommandLine(LR"("C:\dir\"rest)"), (V{R"(C:\dir\)", "rest"}));
  // Empty arguments count; trailing blanks do not.
  EXPECT_EQ(SplitCommandLine(L"p \"\" x \t "), (V{"p", "", "x"}));
  EXPECT_EQ(SplitCommandLine(L""), V{});
}

TEST(SplitCommandLineTest, AgreesWithCommandLineToArgvW) {
  const std::wstring lines[] = {
      L"prog",
      L"prog a b  c\td",
      LR"(prog "a b" c)",
      LR"(prog a"b c"d)",
      LR"(prog a""b)",
      LR"(prog "a""b")",
      LR"(prog """a""")",
      LR"(prog """""" x)",
      LR"(prog "a"""b c)",
      LR"(prog \"a\" \\"b\\" \\\"c)",
      LR"(prog a\b\\c\\\d\\\\)",
      LR"(prog trailing\)",
      LR"(prog "unterminated quote)",
      LR"(prog "" "" x)",
      LR"("quoted prog"x y)",
      LR"("prog with space" "arg with space")",
      L"\tprog leading blank",
      L"prog \"tab\tinside\" caf\u00e9 \u65e5\u672c",
      LR"(C:\Windows\System32\cmd.exe /c "echo ""hi"" & exit /b 3")",
  };
  for (const std::wstring& line : lines) {
    EXPECT_EQ(SplitCommandLine(line), SystemSplit(line)) << WideToUtf8(line);
  }
}

TEST(SplitCommandLineTest, ReplacesInvalidUtf16) {
  const std::wstring line = std::wstring(L"prog a") + static_cast<wchar_t>(0xD800) + L"b";
  const auto argv = SplitCommandLine(line);
  ASSERT_EQ(argv.size(), 2U);
  EXPECT_EQ(argv[1],
            "a\xEF\xBF\xBD"
            "b");
}

}  // namespace
}  // namespace sentinel::procmond
