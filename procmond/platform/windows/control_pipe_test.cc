// procmond.exe's control pipe, driven as a client would: the test starts the
// real procmond.exe (under Wine in CI), connects to its named pipe and
// speaks the Linux framing (sentinel/ipc/frame.h): health, stats, scan-now,
// an unknown command, a bad frame; a second procmond on the same pipe name
// is refused; Ctrl-Break stops it cleanly (where there is a console to send
// it through: not under Wine without a terminal).
#include <windows.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "procmond/platform/windows/testing/procmond_client.h"
#include "sentinel/base/win32.h"
#include "sentinel/ipc/frame.h"

namespace sentinel::procmond {
namespace {

namespace fs = std::filesystem;
using testing::PipeClient;
using testing::ProcmondExe;

// A directory of its own under %TEMP%, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("sentineld-pipe-" + std::to_string(::GetCurrentProcessId()) + "-" +
                                         std::to_string(::GetTickCount64()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A child process the test started, ended (by its own handle) if still running.
class Child {
 public:
  explicit Child(std::wstring command_line) {
    STARTUPINFOW si{};
    si.cb = sizeof si;
    ok_ = ::CreateProcessW(nullptr, command_line.data(), nullptr, nullptr, FALSE, CREATE_NEW_PROCESS_GROUP,
                           nullptr, nullptr, &si, &pi_) != 0;
  }
  ~Child() {
    if (!ok_) return;
    if (::WaitForSingleObject(pi_.hProcess, 0) == WAIT_TIMEOUT) ::TerminateProcess(pi_.hProcess, 99);
    ::CloseHandle(pi_.hThread);
    ::CloseHandle(pi_.hProcess);
  }
  bool ok() const { return ok_; }
  DWORD pid() const { return pi_.dwProcessId; }
  // The exit code, or STILL_ACTIVE when it did not end within timeout_ms.
  DWORD Wait(DWORD timeout_ms) const {
    ::WaitForSingleObject(pi_.hProcess, timeout_ms);
    DWORD code = STILL_ACTIVE;
    ::GetExitCodeProcess(pi_.hProcess, &code);
    return code;
  }

 private:
  PROCESS_INFORMATION pi_{};
  bool ok_ = false;
};

class ControlPipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pipe_name_ = "sentineld-test-" + std::to_string(::GetCurrentProcessId());
    const fs::path config = dir_.path() / "config.yaml";
    std::ofstream(config) << "database:\n  path: '" << (dir_.path() / "events.db").string() << "'\n"
                          << "  audit_path: '" << (dir_.path() / "audit.db").string() << "'\n"
                          << "collection:\n  interval_secs: 1\n";
    command_ = L"\"" + ProcmondExe() + L"\" --config \"" + config.wstring() + L"\" --pipe-name " +
               Utf8ToWide(pipe_name_);
  }
  std::wstring PipePath() const { return Utf8ToWide("\\\\.\\pipe\\" + pipe_name_); }

  TempDir dir_;
  std::string pipe_name_;
  std::wstring command_;
};

TEST_F(ControlPipeTest, AnswersHealthAndStatsWithTheLinuxFraming) {
  Child procmond(command_);
  ASSERT_TRUE(procmond.ok()) << "CreateProcess " << WideToUtf8(command_);
  PipeClient client(PipePath(), 30'000);
  ASSERT_TRUE(client.connected()) << "procmond.exe never created " << WideToUtf8(PipePath());

  nlohmann::json health = client.Call({{"cmd", "health"}, {"id", 1}});
  ASSERT_TRUE(health.is_object()) << "no reply to health";
  EXPECT_EQ(health["id"], 1);
  EXPECT_EQ(health["ok"], true) << health.dump();
  EXPECT_EQ(health["result"]["component"], "procmond");
  EXPECT_EQ(health["result"]["pid"], static_cast<int64_t>(procmond.pid()));
  EXPECT_TRUE(health["result"]["status"] == "ok" || health["result"]["status"] == "unhealthy")
      << health.dump();

  // Scans every second: stats counts them, on the same connection.
  nlohmann::json stats;
  for (int i = 0; i < 100; ++i) {
    stats = client.Call({{"cmd", "stats"}, {"id", "s"}});
    ASSERT_TRUE(stats.is_object()) << "no reply to stats";
    if (stats["result"].value("scans_completed", 0) >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(stats["id"], "s");
  EXPECT_GE(stats["result"]["scans_completed"].get<int64_t>(), 1) << stats.dump();
  EXPECT_GT(stats["result"]["last_scan_processes"].get<int64_t>(), 1) << stats.dump();
  EXPECT_EQ(stats["result"]["platform"], "windows");

  nlohmann::json scan_now = client.Call({{"cmd", "scan-now"}, {"id", 2}});
  EXPECT_EQ(scan_now["result"]["queued"], true) << scan_now.dump();

  // A bad request is answered and the connection stays usable.
  nlohmann::json unknown = client.Call({{"cmd", "format-disk"}, {"id", 3}});
  EXPECT_EQ(unknown["ok"], false);
  EXPECT_NE(unknown["error"].get<std::string>().find("unknown command \"format-disk\""), std::string::npos)
      << unknown.dump();
  EXPECT_EQ(client.Call({{"cmd", "health"}, {"id", 4}})["ok"], true);

  // A bad frame gets an error frame naming it, then the pipe is closed.
  ASSERT_TRUE(client.Send(std::string("JUNKJUNKJUNK")));
  nlohmann::json bad = client.Receive();
  ASSERT_TRUE(bad.is_object()) << "no error frame for a bad magic";
  EXPECT_NE(bad["error"].get<std::string>().find("bad frame"), std::string::npos) << bad.dump();
  EXPECT_TRUE(client.Receive().is_null()) << "the connection stayed open after a bad frame";
}

TEST_F(ControlPipeTest, CtrlBreakStopsItCleanly) {
  Child procmond(command_);
  ASSERT_TRUE(procmond.ok());
  PipeClient client(PipePath(), 30'000);
  ASSERT_TRUE(client.connected());
  ASSERT_EQ(client.Call({{"cmd", "health"}, {"id", 1}})["ok"], true);
  // Ctrl-Break reaches the processes that share the caller's console.
  if (!::GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, procmond.pid())) {
    const DWORD err = ::GetLastError();
    GTEST_SKIP()
        << "no console to send Ctrl-Break through (error " << err
        << "; Wine without a terminal has none): the clean stop on Ctrl-Break is checked on Windows only";
  }
  EXPECT_EQ(procmond.Wait(30'000), 0u) << "procmond.exe did not stop cleanly on Ctrl-Break";
}

TEST_F(ControlPipeTest, ASecondProcmondOnTheSamePipeIsRefused) {
  Child first(command_);
  ASSERT_TRUE(first.ok());
  PipeClient client(PipePath(), 30'000);
  ASSERT_TRUE(client.connected());
  // Its own database: only the pipe is shared.
  const fs::path config2 = dir_.path() / "config2.yaml";
  std::ofstream(config2) << "database:\n  path: '" << (dir_.path() / "events2.db").string() << "'\n"
                         << "  audit_path: '" << (dir_.path() / "audit2.db").string() << "'\n";
  Child second(L"\"" + ProcmondExe() + L"\" --config \"" + config2.wstring() + L"\" --pipe-name " +
               Utf8ToWide(pipe_name_));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.Wait(30'000), 1u) << "a second procmond.exe took the pipe name already served";
}

}  // namespace
}  // namespace sentinel::procmond
