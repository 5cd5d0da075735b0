// procmond.exe: the SentinelD collector on Windows (SPEC §15). The flags of
// the Linux procmond (--config, --database, --interval, --once, --log-level,
// --version), plus --service: run under the Service Control Manager
// (packaging/windows/install-service.ps1 registers it so). In a console,
// Ctrl-C, Ctrl-Break and closing the window stop it cleanly.
//
// Exit codes: 0 success (including a stop request), 1 runtime failure,
// 2 bad usage or configuration.
#include <windows.h>

#include <string>
#include <utility>

#include <CLI/CLI.hpp>

#include "procmond/platform/windows/service.h"
#include "sentinel/base/features.h"
#include "sentinel/base/version.h"

namespace {

using sentinel::procmond::WindowsFlags;
using sentinel::procmond::WindowsService;

constexpr wchar_t kServiceName[] = L"SentinelDProcmond";

// The stop event every way of stopping sets (console handler, SCM).
HANDLE g_stop = nullptr;
WindowsFlags g_flags;
SERVICE_STATUS_HANDLE g_status_handle = nullptr;
SERVICE_STATUS g_status{};

BOOL WINAPI OnConsoleEvent(DWORD type) {
  switch (type) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
    case CTRL_CLOSE_EVENT:
    case CTRL_SHUTDOWN_EVENT: ::SetEvent(g_stop); return TRUE;
    default: return FALSE;
  }
}

void ReportStatus(DWORD state, DWORD exit_code = NO_ERROR) {
  g_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  g_status.dwCurrentState = state;
  g_status.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
  g_status.dwWin32ExitCode = exit_code == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
  g_status.dwServiceSpecificExitCode = exit_code;
  g_status.dwWaitHint = state == SERVICE_RUNNING || state == SERVICE_STOPPED ? 0 : 10'000;
  ::SetServiceStatus(g_status_handle, &g_status);
}

DWORD WINAPI OnServiceControl(DWORD control, DWORD, LPVOID, LPVOID) {
  if (control == SERVICE_CONTROL_STOP || control == SERVICE_CONTROL_SHUTDOWN) {
    ReportStatus(SERVICE_STOP_PENDING);
    ::SetEvent(g_stop);
    return NO_ERROR;
  }
  return control == SERVICE_CONTROL_INTERROGATE ? NO_ERROR : ERROR_CALL_NOT_IMPLEMENTED;
}

void WINAPI ServiceMain(DWORD, LPWSTR*) {
  g_status_handle = ::RegisterServiceCtrlHandlerExW(kServiceName, OnServiceControl, nullptr);
  if (g_status_handle == nullptr) return;
  ReportStatus(SERVICE_START_PENDING);
  WindowsService service(g_flags);
  const int rc = service.Run(g_stop, [] { ReportStatus(SERVICE_RUNNING); });
  ReportStatus(SERVICE_STOPPED, static_cast<DWORD>(rc));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"procmond: SentinelD process collector (Windows)"};
  WindowsFlags flags;
  bool service = false;
  app.add_option("--config", flags.config_file, "Configuration file (layered over the defaults)");
  app.add_option("--database", flags.database, "Event store path (database.path)");
  app.add_option("--interval", flags.interval, "Scan interval in seconds (collection.interval_secs)");
  app.add_flag("--once", flags.once, "Run one scan, write it and exit");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error|critical|off");
  app.add_option("--pipe-name", flags.pipe_name,
                 "Control pipe name under \\\\.\\pipe\\ (default sentineld-procmond; tests run several)");
  app.add_flag("--service", service,
               "Run under the Service Control Manager (installed as SentinelDProcmond)");
  app.set_version_flag(
      "--version", std::string("procmond ") + sentinel::kVersion + " (windows)\n" + sentinel::FeaturesLine());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : sentinel::procmond::kExitUsage;
  }
  g_stop = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  if (g_stop == nullptr) return sentinel::procmond::kExitRuntime;
  if (service) {
    g_flags = std::move(flags);
    SERVICE_TABLE_ENTRYW table[] = {{const_cast<LPWSTR>(kServiceName), ServiceMain}, {nullptr, nullptr}};
    if (!::StartServiceCtrlDispatcherW(table)) {
      std::fprintf(stderr, "procmond: --service: not started by the Service Control Manager (error %lu)\n",
                   ::GetLastError());
      return sentinel::procmond::kExitUsage;
    }
    return static_cast<int>(g_status.dwServiceSpecificExitCode);
  }
  ::SetConsoleCtrlHandler(OnConsoleEvent, TRUE);
  WindowsService collector(std::move(flags));
  return collector.Run(g_stop);
}
