// procmond on Windows as a class: what main_windows.cc drives, in a console
// or under the Service Control Manager (--service). The same steps as the
// Linux CollectorService (procmond/collector_service.h) where Windows has
// them: load the configuration (exit 2 when it is bad), open the event store
// and the audit ledger (exit 1 when they cannot be written, before anything
// is written), listen on the control pipe, then one scan per interval
// through the BatchWriter until the stop event, scan-now or reload. Windows
// has no privilege drop here: the service account is chosen at install
// (packaging/windows/install-service.ps1; docs/platforms.md).
//
// Exit codes as on Linux: 0 success (including a stop request), 1 runtime
// failure, 2 bad usage or configuration.
//
// Not thread-safe: one instance, on the service's main thread.
#pragma once

#include <windows.h>

#include <memory>
#include <optional>
#include <string>

#include "procmond/scan_stats.h"
#include "sentinel/config/bootstrap.h"
#include "sentinel/config/config.h"

namespace sentinel {
namespace audit {
class AuditTrail;
}  // namespace audit
namespace storage {
class EventStore;
}  // namespace storage
}  // namespace sentinel

namespace sentinel::procmond {

class ControlPipe;
class ScanPipeline;
class WindowsProcessSource;

inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// procmond.exe's command line (each flag overrides its configuration key; empty: not given).
struct WindowsFlags {
  std::string config_file;  // --config
  std::string database;     // --database: database.path
  std::string interval;     // --interval: collection.interval_secs
  bool once = false;        // --once: one scan, written, then exit
  std::string log_level;    // --log-level: telemetry.log_level
  std::string pipe_name;    // --pipe-name: the control pipe (default ipc::kProcmondPipe)
};

class WindowsService {
 public:
  using Exit = std::optional<int>;

  explicit WindowsService(WindowsFlags flags);
  ~WindowsService();
  WindowsService(const WindowsService&) = delete;
  WindowsService& operator=(const WindowsService&) = delete;

  // The whole life: runs until `stop` (a manual-reset event) is set, or
  // after one scan with --once. `started` (optional) is called once the
  // service is collecting (the SCM's SERVICE_RUNNING).
  int Run(HANDLE stop, void (*started)() = nullptr);

 private:
  Result<config::LoadedConfig> LoadConfig() const;
  Exit LoadAndLog();
  Exit OpenStores();
  Exit ListenControl();
  void StartScanning();
  Exit Cycle();
  Exit WaitForNextScan();
  void Reload();
  int Stop(int64_t timeout_ms);

  WindowsFlags flags_;
  HANDLE stop_ = nullptr;
  HANDLE scan_now_ = nullptr;
  HANDLE reload_ = nullptr;
  config::LoadedConfig loaded_;
  config::Config cfg_;
  ScanStats scan_stats_;
  std::unique_ptr<ControlPipe> control_;
  std::unique_ptr<storage::EventStore> store_;
  std::unique_ptr<audit::AuditTrail> trail_;
  std::unique_ptr<WindowsProcessSource> source_;
  std::unique_ptr<ScanPipeline> pipeline_;
};

}  // namespace sentinel::procmond
