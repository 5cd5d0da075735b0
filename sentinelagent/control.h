// The agent's operations surface (SPEC §9, §10, docs/operations.md): what
// agent.sock, GET /health and GET /metrics answer with.
//
// AgentOps holds what the main loop reports (detection cycles, a snapshot
// of the dispatcher's delivery metrics, the supervised procmond) under a
// mutex, and builds from it, from the event store (read-only, one short-lived
// connection per request) and from procmond's control socket (1 s timeout):
//   Health()   the per-component report (sentinel/health/health.h)
//   Metrics()  the Prometheus text, every name prefixed sentinel_
//   Stats()    the counters as JSON (agent.sock `stats`)
// It also serves agent.sock: health, stats, reload (SIGHUP to the agent
// itself, taken by the main loop like an operator's signal) and scan-now
// (forwarded to procmond, then SIGUSR1 to the agent, whose main loop runs
// the rules at once; TakeScanNow() tells it why it woke).
//
// Thread-safety: the Record*/Set* methods are called by the main thread;
// Health/Metrics/Stats from the socket and HTTP threads; all are safe
// concurrently. Listen/Start/Stop from the main thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "sentinel/alerting/dispatcher.h"
#include "sentinel/audit/signer.h"
#include "sentinel/base/status.h"
#include "sentinel/base/write_health.h"
#include "sentinel/config/config.h"
#include "sentinel/health/health.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/telemetry/metrics.h"
#include "sentinelagent/rule_scheduler.h"

namespace sentinel::agent {

// SIGUSR1 wakes the agent's main loop for scan-now (add it to the blocked set).
inline constexpr int kRunNowSignal = 10;  // SIGUSR1 on Linux

// A detection cycle running longer than this is stuck (health "agent"
// unhealthy): max(detection.rule_timeout_secs + kStuckCycleGraceMs,
// 2 x detection.interval_secs). docs/operations.md "Health".
inline constexpr int64_t kStuckCycleGraceMs = 10'000;
int64_t StuckCycleBoundMs(const config::DetectionConfig& d);

class AgentOps {
 public:
  AgentOps(const config::Config& cfg, std::string version);
  ~AgentOps();
  AgentOps(const AgentOps&) = delete;
  AgentOps& operator=(const AgentOps&) = delete;

  // Binds agent.sock. AlreadyExists when another agent listens on it;
  // other errors leave the agent without a control socket (logged by the caller).
  // The audit signing key loaded at start-up (null when none): sentinelcli's
  // entries relayed over agent.sock are signed with it. Call before
  // ListenControl.
  void SetAuditSigner(std::shared_ptr<const audit::Signer> signer) { audit_signer_ = std::move(signer); }
  Status ListenControl();
  Status StartControl();
  void Stop();
  std::string control_path() const;

  // --- the main thread reports ---
  void SetConfig(const config::Config& cfg);
  void RecordCycle(const CycleReport& report);
  void RecordCycleFailure();
  void SetDelivery(alerting::DeliveryMetrics m);
  void SetCollector(bool supervised, pid_t pid, int64_t restarts);
  // The scheduler whose running cycle health judges (CycleStartedMs()).
  void WatchScheduler(const RuleScheduler* scheduler) { scheduler_ = scheduler; }
  // True once per scan-now request (the main loop calls it on SIGUSR1).
  bool TakeScanNow() { return scan_now_.exchange(false); }

  // --- readers (any thread) ---
  health::HealthReport Health();
  std::string Metrics();
  nlohmann::json Stats();

 private:
  Result<nlohmann::json> AskProcmond(const std::string& cmd) const;
  void AddDatabaseMetrics(telemetry::MetricsBuilder& b, const config::Config& cfg, bool collector_up);
  static void AddProcmondMetrics(telemetry::MetricsBuilder& b, const nlohmann::json& stats);

  const std::string version_;
  const int64_t started_ms_;
  mutable std::mutex mu_;
  config::Config cfg_;
  std::shared_ptr<const audit::Signer> audit_signer_;
  alerting::DeliveryMetrics delivery_;
  bool have_delivery_ = false;
  bool supervised_ = false;
  pid_t collector_pid_ = -1;
  int64_t collector_restarts_ = 0;
  uint64_t cycles_ = 0, cycles_failed_ = 0;
  int64_t last_cycle_ms_ = 0;  // wall clock of the last completed cycle
  int64_t last_cycle_duration_ms_ = 0;
  std::map<std::string, uint64_t> rule_runs_ok_, rule_runs_failed_;
  std::map<std::string, uint64_t> alerts_created_;  // by severity
  telemetry::Histogram rule_duration_{telemetry::DurationBuckets()};
  telemetry::Histogram cycle_duration_{telemetry::DurationBuckets()};
  WriteHealth record_writes_;  // alert and rule-run records (RecordCycle)
  std::atomic<const RuleScheduler*> scheduler_{nullptr};
  std::atomic<bool> scan_now_{false};
  std::atomic<uint64_t> scan_now_requests_{0}, reload_requests_{0};
  std::unique_ptr<ipc::ControlServer> control_;
};

}  // namespace sentinel::agent
