// The procmond daemon as a class: what main() drives once its flags are
// parsed. Start() loads the configuration, opens everything that needs root
// (control socket, signing key, real-time source, BPF task sampler, stores in
// root-only directories), drops privileges, opens the rest and starts the
// writer threads; Cycle() runs one scan and waits for the next (or for a
// signal); Reload() applies a SIGHUP; Stop() drains the writers and records
// the stop. Run() is the whole life: Start, Cycle until done.
//
// Every step that can end the program yields its exit code: 0 success
// (including SIGTERM/SIGINT), 1 runtime failure, 2 bad usage or
// configuration. docs/collector.md describes the order of the steps and why.
//
// Not thread-safe: one instance, on procmond's main thread.
#pragma once

#include <signal.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "procmond/control.h"
#include "procmond/privileges.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/telemetry/summary.h"

namespace sentinel {
namespace audit {
class AuditTrail;
class Signer;
}  // namespace audit
namespace storage {
class EventStore;
}  // namespace storage
}  // namespace sentinel

namespace sentinel::procmond {

class EventWriter;
class LinuxProcessSource;
class RealtimeSource;
class ScanPipeline;
class TaskSampler;

inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// procmond's command line (each flag overrides its configuration key; empty: not given).
struct CollectorFlags {
  std::string config_file;  // --config
  std::string database;     // --database: database.path
  std::string interval;     // --interval: collection.interval_secs
  bool once = false;        // --once: one scan, written, then exit
  std::string log_level;    // --log-level: telemetry.log_level
};

class CollectorService {
 public:
  // An exit code when the program must end now; nullopt: carry on.
  using Exit = std::optional<int>;

  explicit CollectorService(CollectorFlags flags);
  ~CollectorService();
  CollectorService(const CollectorService&) = delete;
  CollectorService& operator=(const CollectorService&) = delete;

  // Start(), then Cycle() until it yields the exit code.
  int Run();
  // Everything up to the first scan; nullopt when collecting can begin.
  Exit Start();
  // One scan handed to the writer, then (unless --once) the wait for the
  // next one, serving SIGHUP and scan-now meanwhile; the exit code once a
  // stop signal came or --once is done.
  Exit Cycle();
  // Reads the configuration again (SIGHUP) and applies the reloadable keys.
  void Reload();
  // Stops the real-time writer and the scan writer (bounded by timeout_ms)
  // and records the stop; 1 when scans were lost, else 0.
  int Stop(int64_t timeout_ms);

 private:
  Result<config::LoadedConfig> LoadConfig() const;
  Exit LoadAndLog();
  void BlockSignals();
  Exit CheckTargetUser() const;
  Exit ListenControl();
  Exit LoadSigner();
  Exit OpenRealtime();
  Exit OpenSampler();
  Exit CheckStoresForOnce() const;
  Result<bool> OpensAsRoot(const std::string& store_path);
  Exit OpenStoresAsRoot();
  Exit DropAndOpenStores();
  bool OpenEventStores(const std::string& user);
  Exit OpenTrail();
  void HandOver(const std::string& store_path);
  void RecordStart();
  void StartScanning();
  // The world-writable directories into the event store (writable_dirs.h).
  void RecordWritableDirs();
  Exit StartRealtime();
  void StopRealtime(int64_t timeout_ms);
  Exit WaitForNextScan();
  // Standalone procmond's summary line (telemetry.summary_interval_secs);
  // under sentinelagent the agent's line covers scans and events.
  void LogSummaryIfDue();
  telemetry::PeriodicSummary::Totals SummaryTotals() const;

  CollectorFlags flags_;
  config::LoadedConfig loaded_;
  config::Config cfg_;
  uid_t start_uid_ = 0;
  sigset_t sigs_{};
  // Declared in the order they are opened: destroyed in reverse.
  ScanStats scan_stats_;
  std::unique_ptr<ProcmondControl> control_;
  std::shared_ptr<const audit::Signer> signer_;
  std::unique_ptr<RealtimeSource> realtime_;
  std::unique_ptr<TaskSampler> sampler_;
  std::vector<std::string> chown_paths_;
  bool events_as_root_ = false;
  bool audit_as_root_ = false;
  std::unique_ptr<storage::EventStore> store_;
  std::unique_ptr<storage::EventStore> event_store_;
  std::unique_ptr<audit::AuditTrail> trail_;
  PrivilegeReport priv_;
  std::unique_ptr<LinuxProcessSource> source_;
  std::unique_ptr<ScanPipeline> pipeline_;
  std::unique_ptr<EventWriter> event_writer_;
  std::optional<telemetry::PeriodicSummary> summary_;  // none under the agent and with --once
};

}  // namespace sentinel::procmond
