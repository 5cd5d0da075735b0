#include "sentinelagent/control.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include "sentinel/audit/trail.h"
#include "sentinel/base/time.h"
#include "sentinelagent/audit_relay.h"
#include "sentinelagent/metrics_text.h"
#include "sentinelagent/store_stats.h"

namespace sentinel::agent {

static_assert(kRunNowSignal == SIGUSR1);

namespace {

constexpr int64_t kProcmondTimeoutMs = 1000;

}  // namespace

AgentOps::AgentOps(const config::Config& cfg, std::string version)
    : version_(std::move(version)), started_ms_(MonotonicMs()), cfg_(cfg) {}

AgentOps::~AgentOps() {
  Stop();
}

Result<nlohmann::json> AgentOps::Reload() {
  reload_requests_++;
  if (::kill(::getpid(), SIGHUP) != 0) return ErrnoError(errno, "requesting a reload");
  return nlohmann::json{{"queued", true}};
}

Result<nlohmann::json> AgentOps::ScanNow() {
  scan_now_requests_++;
  auto fwd = AskProcmond("scan-now");
  nlohmann::json collector;
  if (fwd.ok() && fwd->value("ok", false)) {
    collector = "scan requested";
  } else {
    collector =
        "not reached: " + (fwd.ok() ? fwd->value("error", std::string("error")) : fwd.status().message());
  }
  scan_now_ = true;
  if (::kill(::getpid(), SIGUSR1) != 0) return ErrnoError(errno, "waking the detection loop");
  return nlohmann::json{{"queued", true}, {"collector", collector}, {"rules", "running now"}};
}

Status AgentOps::ListenControl() {
  const config::Config cfg = Config();
  ipc::ServerOptions o;
  o.socket_dir = cfg.ipc.socket_dir;
  o.socket_name = ipc::kAgentSocket;
  o.component = "sentinelagent";
  // The collector's user may ask the agent too (same trust domain).
  if (const passwd* pw = ::getpwnam(cfg.privileges.user.c_str()); pw != nullptr)
    o.allowed_uids.insert(pw->pw_uid);
  std::map<std::string, ipc::Handler> h;
  h["health"] = [this](const ipc::Request&) -> Result<nlohmann::json> {
    return nlohmann::json(health::HealthToJson(Health()));
  };
  h["stats"] = [this](const ipc::Request&) -> Result<nlohmann::json> { return Stats(); };
  h["reload"] = [this](const ipc::Request&) { return Reload(); };
  h["scan-now"] = [this](const ipc::Request&) { return ScanNow(); };
  // sentinelcli's audit entries, signed with the agent's key (audit_relay.h).
  auto relay = std::make_shared<const CliAuditRelay>(cfg.database, audit_signer_);
  h[std::string(kAuditAppendCommand)] = [relay](const ipc::Request& r) { return relay->Handle(r); };
  ASSIGN_OR_RETURN(control_, ipc::ControlServer::Listen(o, std::move(h)));
  return Status::Ok();
}

Status AgentOps::StartControl() {
  if (!control_) return FailedPreconditionError("agent.sock is not bound");
  return control_->Start();
}

void AgentOps::Stop() {
  if (control_) control_->Stop();
}

std::string AgentOps::control_path() const {
  return control_ ? control_->path() : "";
}

void AgentOps::SetConfig(const config::Config& cfg) {
  std::lock_guard<std::mutex> lock(mu_);
  cfg_ = cfg;
}

config::Config AgentOps::Config() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cfg_;
}

Result<nlohmann::json> AgentOps::AskProcmond(const std::string& cmd) const {
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dir = cfg_.ipc.socket_dir;
  }
  return ipc::Call(ipc::SocketPath(dir, ipc::kProcmondSocket), cmd, kProcmondTimeoutMs);
}

int64_t AgentOps::CycleRunningMs() const {
  const RuleScheduler* sched = scheduler_.load();
  const int64_t started = sched != nullptr ? sched->CycleStartedMs() : 0;
  return started > 0 ? MonotonicMs() - started : 0;
}

health::HealthReport AgentOps::Health() {
  const config::Config cfg = Config();
  const AgentStatsSnapshot stats = stats_.Snapshot();
  const int64_t now = NowMs();
  health::HealthReport r;
  r.source = "sentinelagent";
  r.generated_at_ms = now;
  r.components.push_back(health::CheckCollector(cfg, AskProcmond("health"), now));
  r.components.push_back(AgentComponent({.pid = ::getpid(),
                                         .uptime_ms = MonotonicMs() - started_ms_,
                                         .now_ms = now,
                                         .cycle_running_ms = CycleRunningMs(),
                                         .stuck_cycle_bound_ms = StuckCycleBoundMs(cfg.detection),
                                         .stats = &stats}));
  r.components.push_back(health::CheckDatabase(cfg.database));
  for (auto& c : SinkComponents(stats.delivery, cfg.alerting.sinks)) r.components.push_back(std::move(c));
  r.components.push_back(health::CheckAuditTail(cfg.database));
  return r;
}

nlohmann::json AgentOps::Stats() {
  const AgentStatsSnapshot stats = stats_.Snapshot();
  return StatsJson({.uptime_ms = MonotonicMs() - started_ms_,
                    .cycle_running_ms = CycleRunningMs(),
                    .scan_now_requests = scan_now_requests_.load(),
                    .reload_requests = reload_requests_.load(),
                    .audit_entries_dropped = audit::AuditEntriesDroppedTotal(),
                    .stats = &stats});
}

std::string AgentOps::Metrics() {
  auto procmond = AskProcmond("stats");
  const config::Config cfg = Config();
  MetricsInput in;
  in.version = version_;
  in.uptime_ms = MonotonicMs() - started_ms_;
  in.audit_entries_dropped = audit::AuditEntriesDroppedTotal();
  in.cycle_running_ms = CycleRunningMs();
  in.stuck_cycle_bound_ms = StuckCycleBoundMs(cfg.detection);
  in.stats = stats_.Snapshot();
  if (procmond.ok() && procmond->value("ok", false)) in.procmond_stats = (*procmond)["result"];
  in.store = ReadStoreStats(cfg.database);
  return RenderMetrics(in);
}

}  // namespace sentinel::agent
