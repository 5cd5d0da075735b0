// The agent's operations surface (SPEC §9, §10, docs/operations.md): what
// agent.sock, GET /health and GET /metrics answer with.
//
// AgentOps gathers, per request, what the reports need: the agent's own
// counters (AgentStats, fed by the main loop), procmond's answers on its
// control socket (1 s timeout) and the event store (store_stats.h, one
// short-lived read-only connection); the reports themselves are pure
// functions (agent_report.h, metrics_text.h):
//   Health()   the per-component report (sentinel/health/health.h)
//   Metrics()  the Prometheus text, every name prefixed sentinel_
//   Stats()    the counters as JSON (agent.sock `stats`)
// It also serves agent.sock: health, stats, reload (SIGHUP to the agent
// itself, taken by the main loop like an operator's signal), scan-now
// (forwarded to procmond, then SIGUSR1 to the agent, whose main loop runs
// the rules at once; TakeScanNow() tells it why it woke) and sentinelcli's
// audit entries (audit_relay.h).
//
// Thread-safety: stats() and SetConfig are used by the main thread;
// Health/Metrics/Stats from the socket and HTTP threads; all are safe
// concurrently. Listen/Start/Stop from the main thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "sentinel/audit/signer.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/health/health.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinelagent/agent_report.h"
#include "sentinelagent/agent_stats.h"
#include "sentinelagent/rule_scheduler.h"

namespace sentinel::agent {

// SIGUSR1 wakes the agent's main loop for scan-now (add it to the blocked set).
inline constexpr int kRunNowSignal = 10;  // SIGUSR1 on Linux

class AgentOps {
 public:
  AgentOps(const config::Config& cfg, std::string version);
  ~AgentOps();
  AgentOps(const AgentOps&) = delete;
  AgentOps& operator=(const AgentOps&) = delete;

  // The audit signing key loaded at start-up (null when none): sentinelcli's
  // entries relayed over agent.sock are signed with it. Call before
  // ListenControl.
  void SetAuditSigner(std::shared_ptr<const audit::Signer> signer) { audit_signer_ = std::move(signer); }
  // Binds agent.sock. AlreadyExists when another agent listens on it;
  // other errors leave the agent without a control socket (logged by the caller).
  Status ListenControl();
  Status StartControl();
  void Stop();
  std::string control_path() const;

  // --- the main thread reports ---
  void SetConfig(const config::Config& cfg);
  AgentStats& stats() { return stats_; }
  // The scheduler whose running cycle health judges (CycleStartedMs()).
  void WatchScheduler(const RuleScheduler* scheduler) { scheduler_ = scheduler; }
  // True once per scan-now request (the main loop calls it on SIGUSR1).
  bool TakeScanNow() { return scan_now_.exchange(false); }

  // --- readers (any thread) ---
  health::HealthReport Health();
  std::string Metrics();
  nlohmann::json Stats();

 private:
  config::Config Config() const;
  Result<nlohmann::json> AskProcmond(const std::string& cmd) const;
  int64_t CycleRunningMs() const;
  Result<nlohmann::json> ScanNow();
  Result<nlohmann::json> Reload();

  const std::string version_;
  const int64_t started_ms_;
  mutable std::mutex mu_;
  config::Config cfg_;  // guarded by mu_
  std::shared_ptr<const audit::Signer> audit_signer_;
  AgentStats stats_;
  std::atomic<const RuleScheduler*> scheduler_{nullptr};
  std::atomic<bool> scan_now_{false};
  std::atomic<uint64_t> scan_now_requests_{0}, reload_requests_{0};
  std::unique_ptr<ipc::ControlServer> control_;
};

}  // namespace sentinel::agent
