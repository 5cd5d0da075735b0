// procmond.exe --service under the Service Control Manager (issue 21): the
// test registers the real procmond.exe as a service of its own name, starts
// it through the SCM, talks to its control pipe, stops it through the SCM
// and checks it reported a clean stop and wrote scans. Under Wine the SCM is
// Wine's services.exe; on Windows the test needs an elevated account (it
// skips with the reason otherwise).
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

namespace sentinel::procmond {
namespace {

namespace fs = std::filesystem;
using testing::ProcmondExe;

// SC_HANDLE closed on destruction.
class ScHandle {
 public:
  explicit ScHandle(SC_HANDLE h) : h_(h) {}
  ~ScHandle() {
    if (h_ != nullptr) ::CloseServiceHandle(h_);
  }
  ScHandle(const ScHandle&) = delete;
  ScHandle& operator=(const ScHandle&) = delete;
  SC_HANDLE get() const { return h_; }

 private:
  SC_HANDLE h_;
};

// Polls the service until it reaches `state` (or timeout_ms passes); its last status.
SERVICE_STATUS WaitForState(SC_HANDLE service, DWORD state, int timeout_ms) {
  SERVICE_STATUS status{};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (::QueryServiceStatus(service, &status) && status.dwCurrentState != state &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return status;
}

TEST(ServiceTest, RunsUnderTheServiceControlManagerAndStopsCleanly) {
  ScHandle scm(::OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CREATE_SERVICE | SC_MANAGER_CONNECT));
  if (scm.get() == nullptr) {
    GTEST_SKIP() << "cannot open the Service Control Manager to create a service (error " << ::GetLastError()
                 << "): run elevated";
  }
  const std::string suffix = std::to_string(::GetCurrentProcessId());
  const fs::path dir = fs::temp_directory_path() / ("sentineld-service-" + suffix);
  fs::create_directories(dir);
  const fs::path config = dir / "config.yaml";
  std::ofstream(config) << "database:\n  path: '" << (dir / "events.db").string() << "'\n"
                        << "  audit_path: '" << (dir / "audit.db").string() << "'\n"
                        << "collection:\n  interval_secs: 1\n";
  const std::string pipe = "sentineld-service-test-" + suffix;
  const std::wstring name = Utf8ToWide("SentinelDProcmondTest" + suffix);
  const std::wstring command = L"\"" + ProcmondExe() + L"\" --service --config \"" + config.wstring() +
                               L"\" --pipe-name " + Utf8ToWide(pipe);
  ScHandle service(::CreateServiceW(scm.get(), name.c_str(), name.c_str(), SERVICE_ALL_ACCESS,
                                    SERVICE_WIN32_OWN_PROCESS, SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL,
                                    command.c_str(), nullptr, nullptr, nullptr, nullptr, nullptr));
  ASSERT_NE(service.get(), nullptr) << "CreateService error " << ::GetLastError();

  ASSERT_TRUE(::StartServiceW(service.get(), 0, nullptr)) << "StartService error " << ::GetLastError();
  SERVICE_STATUS running = WaitForState(service.get(), SERVICE_RUNNING, 30'000);
  EXPECT_EQ(running.dwCurrentState, static_cast<DWORD>(SERVICE_RUNNING));
  EXPECT_NE(running.dwControlsAccepted & SERVICE_ACCEPT_STOP, 0u) << "a running procmond must accept stop";

  testing::PipeClient client(Utf8ToWide("\\\\.\\pipe\\" + pipe), 10'000);
  nlohmann::json health = client.Call({{"cmd", "health"}, {"id", 1}});
  EXPECT_EQ(health["ok"], true) << health.dump();
  EXPECT_EQ(health["result"]["component"], "procmond") << health.dump();

  SERVICE_STATUS stopping{};
  EXPECT_TRUE(::ControlService(service.get(), SERVICE_CONTROL_STOP, &stopping))
      << "error " << ::GetLastError();
  SERVICE_STATUS stopped = WaitForState(service.get(), SERVICE_STOPPED, 30'000);
  EXPECT_EQ(stopped.dwCurrentState, static_cast<DWORD>(SERVICE_STOPPED));
  EXPECT_EQ(stopped.dwWin32ExitCode, static_cast<DWORD>(NO_ERROR))
      << "service-specific exit code " << stopped.dwServiceSpecificExitCode;

  ::DeleteService(service.get());
  EXPECT_TRUE(fs::exists(dir / "events.db"));
  EXPECT_TRUE(fs::exists(dir / "audit.db"));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace sentinel::procmond
