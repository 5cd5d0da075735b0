// sentinelagent's life (SPEC §1, §6, §7): Start() loads the configuration,
// drops root (privsep.h), binds its endpoints, opens the stores and the audit
// trail and starts alert delivery; then either RunOnce() (--once: one
// detection cycle, wait for the deliveries, stop) or Run() (the daemon:
// cycles on schedule, procmond supervised, SIGHUP reloads, SIGTERM/SIGINT
// stop). Each returns the process's exit code: 0 success (including
// SIGTERM/SIGINT), 1 runtime failure, 2 bad usage or configuration.
//
// The signals the agent waits for (SIGTERM, SIGINT, SIGHUP, kRunNowSignal)
// are blocked in Start() and taken synchronously by the main loop.
//
// Not thread-safe: one Agent per process, driven by the main thread.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/alerting/dispatcher.h"
#include "sentinel/audit/signer.h"
#include "sentinel/audit/trail.h"
#include "sentinel/config/config.h"
#include "sentinel/storage/sqlite.h"
#include "sentinel/telemetry/summary.h"
#include "sentinelagent/control.h"
#include "sentinelagent/fleet_link.h"
#include "sentinelagent/http_link.h"
#include "sentinelagent/instance_lock.h"
#include "sentinelagent/maintenance.h"
#include "sentinelagent/privsep.h"
#include "sentinelagent/realtime_detector.h"
#include "sentinelagent/rule_scheduler.h"
#include "sentinelagent/supervisor.h"

namespace sentinel::agent {

inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// The command line of sentinelagent.
struct AgentFlags {
  std::string config_file;    // --config
  std::string database;       // --database
  std::string log_level;      // --log-level
  bool once = false;          // --once
  bool no_collector = false;  // --no-collector
};

class Agent {
 public:
  explicit Agent(AgentFlags flags);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Everything before the first cycle. nullopt when the agent is ready;
  // otherwise the exit code (the reason is on stderr and in the log).
  std::optional<int> Start();
  // --once: one cycle, then wait for every delivery (or SIGTERM/SIGINT).
  int RunOnce();
  // The daemon's loop until SIGTERM/SIGINT (0) or the loss of the procmond launcher (1).
  int Run();

  // One detection cycle: alerts recorded in the audit trail and queued for
  // delivery. False when the cycle failed.
  bool Cycle();
  // SIGHUP: reloads the configuration; restart-only keys keep their running
  // values (logged, recorded as restart_pending), the rest applies now.
  void Reload();

  const config::Config& config() const { return cfg_; }

 private:
  using Step = std::optional<int> (Agent::*)();
  std::optional<int> LoadConfiguration();
  std::optional<int> SetUpSignals();
  std::optional<int> LoadSigner();
  std::optional<int> DropPrivileges();
  std::optional<int> BuildDispatcher();
  std::optional<int> AcquireLock();
  std::optional<int> BindEndpoints();
  std::optional<int> CheckStoresForOnce();
  std::optional<int> OpenStore();
  std::optional<int> OpenAuditTrail();
  std::optional<int> RecordStart();
  std::optional<int> StartDetection();
  std::optional<int> OpenRealtime();
  RealtimeOptions RealtimeConfig() const;

  Result<std::unique_ptr<alerting::Dispatcher>> MakeDispatcher(const config::Config& cfg);
  void ReplaceDispatcher(config::Config& next);
  void Record(const std::string& action, const nlohmann::json& data);
  void RecordAlerts(const std::vector<alerting::Alert>& alerts);
  void EnqueueNewAlerts();
  void StartServices();
  // The fleet (fleet_link.h), only when fleet.servers is set.
  void StartFleet();
  std::string FleetHealth();
  // Rules again from disk (a fleet bundle was installed): main thread.
  void ReloadRules();
  void ReportState();
  // The periodic summary line (telemetry.summary_interval_secs), when due.
  void LogSummaryIfDue();
  telemetry::PeriodicSummary::Totals SummaryTotals(int64_t* processes);
  // Waits for a signal until next_cycle_ms (at most 1 s); 0 when none came.
  int WaitSignal(int64_t next_cycle_ms);
  void WaitForDeliveries();
  int StopOnSignal(int sig);
  int StopForLostLauncher();
  void StopReaders();

  const AgentFlags flags_;
  config::Config cfg_;
  config::LoadedConfig loaded_;  // as loaded at start-up (hash and sources for the records)
  sigset_t signals_{};
  std::shared_ptr<const audit::Signer> signer_;
  bool supervise_ = false;
  std::string procmond_program_;
  std::unique_ptr<Launcher> launcher_;
  std::optional<ServiceUser> dropped_to_;
  // Set once the audit trail is open; the dispatcher starts after that.
  std::function<void(int64_t, const std::string&, int, const std::string&)> audit_dead_letter_;
  std::unique_ptr<alerting::Dispatcher> dispatcher_;
  std::optional<InstanceLock> instance_lock_;
  std::unique_ptr<AgentOps> ops_;
  std::unique_ptr<HttpLink> http_;  // the HTTP endpoint: web UI, /api/, /metrics, /health
  std::unique_ptr<storage::Database> db_;
  // Records come from the main thread and from delivery workers (dead letters).
  std::mutex trail_mu_;
  std::unique_ptr<audit::AuditTrail> trail_;
  std::unique_ptr<RuleScheduler> scheduler_;
  // `on: exec` rules over new exec events, on its own thread and connection.
  std::unique_ptr<RealtimeDetector> realtime_;
  // The real-time thread queues its alerts for delivery while the main
  // thread may replace the dispatcher (reload).
  std::mutex dispatcher_mu_;
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<Maintenance> maintenance_;
  std::unique_ptr<FleetLink> fleet_;
  // The daemon's summary line (Run); none with --once.
  std::optional<telemetry::PeriodicSummary> summary_;
  bool cycle_logged_ = false;  // the first cycle's line is info, the others debug
  // Set by the fleet thread when a bundle was installed; the main loop reloads the rules.
  std::atomic<bool> fleet_reload_{false};
};

}  // namespace sentinel::agent
