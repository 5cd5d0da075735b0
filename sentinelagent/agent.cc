#include "sentinelagent/agent.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>

#include "sentinel/alerting/sink.h"
#include "sentinel/base/files.h"
#include "sentinel/base/signals.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/base/version.h"
#include "sentinel/config/bootstrap.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/models/severity.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"
#include "sentinelagent/agent_report.h"
#include "sentinelagent/store_stats.h"

namespace sentinel::agent {
namespace {

using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

// The message every start-up failure leaves on stderr; returns `code`.
int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "sentinelagent: %s\n", message.c_str());
  return code;
}

// Logged as "refusing to start" as well.
int Refuse(int code, const std::string& message) {
  LogError("refusing to start", {{"error", message}});
  return Fail(code, message);
}

Result<config::LoadedConfig> LoadConfig(const AgentFlags& f) {
  return config::LoadProgramConfig(
      {f.config_file, {{"database.path", f.database}, {"telemetry.log_level", f.log_level}}});
}

// procmond's arguments: the agent's own configuration file and store.
std::vector<std::string> ProcmondArgs(const AgentFlags& flags, const config::Config& cfg) {
  std::vector<std::string> args;
  if (!flags.config_file.empty()) args = {"--config", flags.config_file};
  args.push_back("--database");
  args.push_back(cfg.database.path);
  return args;
}

std::string ParentDir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

int Workers() {
  unsigned n = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(n, 1u, 4u));
}

const char* SignalName(int sig) {
  return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

void LogDeliverySummary(const alerting::Dispatcher& d) {
  alerting::DeliveryMetrics m = d.Metrics();
  LogInfo("alert delivery", {{"sinks", SinksJson(m, SinkDetail::kSummary)}, {"dlq_size", m.dlq_size}});
}

// The daemon's cycles are counted in the summary line: the first (detection
// works) is info, the others debug. --once logs its one cycle at info.
void LogCycle(const CycleReport& report, telemetry::LogLevel level) {
  if (report.stopped) {
    LogInfo("detection cycle stopped for shutdown; its unfinished rules run at the next start",
            {{"rules_finished", report.runs.size()}, {"alerts", report.alerts.size()}});
    return;
  }
  telemetry::Log(level, "detection cycle",
                 {{"rules", report.runs.size()},
                  {"failed", report.failed},
                  {"alerts", report.alerts.size()},
                  {"unrecorded", report.unrecorded.size()},
                  {"duration_ms", report.duration_ms}});
}

// The audit entry of a new alert.
nlohmann::json AlertCreatedEntry(const alerting::Alert& a) {
  nlohmann::json pids = nlohmann::json::array();
  for (const auto& p : a.affected_processes) {
    auto pid = p.find("pid");
    if (pid != p.end() && pid->is_number_integer()) pids.push_back(pid->get<int64_t>());
  }
  return {{"alert_id", a.id},
          {"rule", a.rule_id},
          {"rule_version", a.rule_version},
          {"severity", std::string(models::SeverityName(a.severity))},
          {"dedup_key", a.dedup_key},
          {"pids", pids}};
}

}  // namespace

Agent::Agent(AgentFlags flags) : flags_(std::move(flags)) {}

Agent::~Agent() {
  // Its threads record through the trail and read the store.
  fleet_.reset();
  // Its thread records alerts through the trail and the dispatcher.
  realtime_.reset();
  maintenance_.reset();
  supervisor_.reset();
  // The readers of the scheduler (HTTP, agent.sock) stop before it goes.
  StopReaders();
}

void Agent::StopReaders() {
  if (http_) http_->Stop();
  if (ops_) {
    ops_->Stop();
    ops_->WatchScheduler(nullptr);
  }
}

std::optional<int> Agent::Start() {
  static constexpr Step kSteps[] = {
      &Agent::LoadConfiguration, &Agent::SetUpSignals,   &Agent::LoadSigner,    &Agent::DropPrivileges,
      &Agent::BuildDispatcher,   &Agent::AcquireLock,    &Agent::BindEndpoints, &Agent::CheckStoresForOnce,
      &Agent::OpenStore,         &Agent::OpenAuditTrail, &Agent::RecordStart,   &Agent::StartDetection,
      &Agent::OpenRealtime};
  for (Step step : kSteps) {
    if (auto rc = (this->*step)()) return rc;
  }
  return std::nullopt;
}

std::optional<int> Agent::LoadConfiguration() {
  auto loaded = LoadConfig(flags_);
  if (!loaded.ok()) return Fail(kExitUsage, loaded.status().message());
  loaded_ = std::move(loaded).value();
  cfg_ = loaded_.config;
  config::InitProgramLogging("sentinelagent", cfg_);
  LogInfo("sentinelagent starting", {{"version", kVersion},
                                     {"pid", getpid()},
                                     {"uid", getuid()},
                                     {"config_hash", loaded_.hash},
                                     {"config_sources", loaded_.sources},
                                     {"database", cfg_.database.path},
                                     {"once", flags_.once},
                                     {"collector", !flags_.no_collector}});
  return std::nullopt;
}

std::optional<int> Agent::SetUpSignals() {
  // Taken by the main loop; kRunNowSignal: scan-now over agent.sock.
  signals_ = BlockSignals({SIGTERM, SIGINT, SIGHUP, kRunNowSignal});
  // A sink peer that hangs up must fail one attempt, not kill the agent.
  signal(SIGPIPE, SIG_IGN);
  return std::nullopt;
}

// A bad audit signing key is a configuration error: found before any store
// is created. Read before the privilege drop: started as root, the key is
// root's (0600, owned by the signing process's uid at load), the same file
// procmond loads before its own drop.
std::optional<int> Agent::LoadSigner() {
  if (cfg_.database.audit_signing_key.empty()) return std::nullopt;
  auto key = audit::Signer::LoadPrivateKeyFile(cfg_.database.audit_signing_key);
  if (!key.ok()) {
    // A planted link is not a configuration error.
    return Fail(IsRefusedPath(key.status()) ? kExitRuntime : kExitUsage,
                "database.audit_signing_key: " + key.status().message());
  }
  signer_ = std::shared_ptr<const audit::Signer>(std::move(*key));
  return std::nullopt;
}

// Started as root: fork the root launcher of procmond, create the
// directories the agent needs for its user, then drop to privileges.user
// with no capability (privsep.h, docs/decisions.md #18). Nothing after this
// runs as root: no thread exists yet and nothing is open.
std::optional<int> Agent::DropPrivileges() {
  supervise_ = !flags_.once && !flags_.no_collector;
  procmond_program_ = supervise_ ? FindProcmond() : "";
  if (::geteuid() != 0) return std::nullopt;
  auto user = LookupServiceUser(cfg_.privileges.user);
  if (!user.ok()) return Fail(kExitUsage, user.status().message());
  if (supervise_) {
    auto forked = Launcher::Fork({procmond_program_, ProcmondArgs(flags_, cfg_)});
    if (!forked.ok()) return Fail(kExitRuntime, forked.status().message());
    launcher_ = std::move(forked).value();
  }
  std::vector<std::string> dirs{ParentDir(cfg_.database.path), ParentDir(cfg_.database.audit_path)};
  if (!flags_.once) dirs.push_back(cfg_.ipc.socket_dir);
  if (Status s = PrepareDirectories(dirs, *user); !s.ok()) return Refuse(kExitRuntime, s.message());
  if (Status s = DropToUser(*user); !s.ok()) {
    LogError("cannot drop privileges", {{"error", s.message()}});
    return Fail(kExitRuntime, "cannot drop privileges: " + s.message());
  }
  dropped_to_ = *user;
  LogInfo("privileges dropped", {{"user", user->name},
                                 {"uid", user->uid},
                                 {"gid", user->gid},
                                 {"kept_capabilities", nlohmann::json::array()},
                                 {"no_new_privs", true},
                                 {"launcher_pid", launcher_ ? launcher_->pid() : -1}});
  return std::nullopt;
}

// The delivery engine for `alerting`: one sink per enabled entry, built (and
// their secrets read) before anything is written; started later.
Result<std::unique_ptr<alerting::Dispatcher>> Agent::MakeDispatcher(const config::Config& cfg) {
  alerting::SinkRegistry registry;
  alerting::RegisterBuiltinSinks(registry);
  alerting::SinkEnvironment env = alerting::SinkEnvironment::Process();
  env.fleet = cfg.fleet;  // the nats sink's servers, credentials, TLS and host id
  // The daemon's nats sink waits out broker outages (decisions.md); --once ends when the retry
  // policy says so.
  env.nats_outage_wait_ms = flags_.once ? 0 : -1;
  alerting::DispatcherOptions opts;
  opts.database_path = cfg.database.path;
  opts.busy_timeout_ms = cfg.database.busy_timeout_ms;
  opts.retry = cfg.alerting.retry;
  opts.circuit_breaker = cfg.alerting.circuit_breaker;
  opts.on_dead_letter = [this](int64_t alert, const std::string& sink, int attempts,
                               const std::string& error) {
    if (audit_dead_letter_) audit_dead_letter_(alert, sink, attempts, error);
  };
  opts.dedup_window_ms = cfg.alerting.dedup_window_secs * 1000;
  std::vector<alerting::SinkBinding> sinks;
  for (const auto& s : alerting::EffectiveSinks(cfg)) {  // with the fleet's implicit nats sink
    opts.configured_sinks.insert(s.name);
    if (!s.enabled) continue;
    ASSIGN_OR_RETURN(auto sink, registry.Build(s, env));
    sinks.push_back(
        {std::move(sink), s.min_severity.empty() ? std::nullopt : models::ParseSeverity(s.min_severity)});
  }
  return std::make_unique<alerting::Dispatcher>(std::move(opts), std::move(sinks));
}

std::optional<int> Agent::BuildDispatcher() {
  auto dispatcher = MakeDispatcher(cfg_);
  if (!dispatcher.ok()) return Fail(kExitUsage, "alerting.sinks: " + dispatcher.status().message());
  dispatcher_ = std::move(dispatcher).value();
  return std::nullopt;
}

// One agent per data directory: a second would run every rule and deliver
// every alert twice.
std::optional<int> Agent::AcquireLock() {
  auto lock = InstanceLock::Acquire(cfg_.database.path);
  if (!lock.ok()) return Refuse(kExitRuntime, lock.status().message());
  instance_lock_.emplace(std::move(lock).value());
  return std::nullopt;
}

// agent.sock and the HTTP endpoint (control.h) are bound before any store is
// written: a taken port stops the start-up with exit 1 (the host's state:
// systemd retries), an address that cannot be used as configured with exit
// 2, a live agent.sock means another agent runs (exit 1). They serve once
// the main loop runs.
std::optional<int> Agent::BindEndpoints() {
  ops_ = std::make_unique<AgentOps>(cfg_, kVersion);
  ops_->SetAuditSigner(signer_);
  http_ = MakeHttpLink(*ops_, cfg_.database, cfg_.telemetry, kVersion);
  if (flags_.once) return std::nullopt;
  if (!cfg_.telemetry.http_listen.empty()) {
    if (Status s = http_->Bind(cfg_.telemetry.http_listen); !s.ok()) {
      const bool usage = s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kUnimplemented;
      return Refuse(usage ? kExitUsage : kExitRuntime, s.message());
    }
  }
  Status s = ops_->ListenControl();
  if (s.code() == StatusCode::kAlreadyExists || IsRefusedPath(s)) return Refuse(kExitRuntime, s.message());
  if (!s.ok()) {
    LogWarn("control socket unavailable: sentinelcli health falls back to what it reads itself",
            {{"error", s.message()}});
  }
  return std::nullopt;
}

// --once writes nothing when a store it would write cannot be used: a file
// that is not ours, newer, truncated or unreadable (the ledger included,
// which the daemon would run without) stops the run, naming it.
std::optional<int> Agent::CheckStoresForOnce() {
  if (!flags_.once) return std::nullopt;
  Status s = storage::CheckStoreFiles(cfg_.database.path, cfg_.database.audit_path);
  if (s.ok()) return std::nullopt;
  LogError("refusing to run", {{"error", s.message()}});
  return Fail(kExitRuntime, s.message());
}

std::optional<int> Agent::OpenStore() {
  auto db =
      storage::OpenStore(storage::DatabaseKind::kEvents,
                         {cfg_.database.path, storage::OpenMode::kReadWrite, cfg_.database.busy_timeout_ms});
  if (!db.ok()) return Fail(kExitRuntime, db.status().message());
  db_ = std::move(db).value();
  return std::nullopt;
}

std::optional<int> Agent::OpenAuditTrail() {
  audit::LedgerOptions lopts;
  lopts.path = cfg_.database.audit_path;
  lopts.busy_timeout_ms = cfg_.database.busy_timeout_ms;
  lopts.signer = signer_;
  auto opened = audit::AuditTrail::Open("sentinelagent", lopts);
  if (opened.ok()) {
    trail_ = std::move(opened).value();
    return std::nullopt;
  }
  const Status& s = opened.status();
  if (s.code() == StatusCode::kInvalidArgument) return Fail(kExitUsage, s.message());
  // A link planted at the ledger stops the agent. A ledger that is there but
  // damaged or not ours: the daemon runs without it (decisions #16), --once
  // stops before writing anything.
  const bool unusable = s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kDataLoss;
  if (IsRefusedPath(s) || (flags_.once && unusable)) return Fail(kExitRuntime, s.message());
  trail_ = audit::AuditTrail::Disabled("sentinelagent", s.message());
  return std::nullopt;
}

void Agent::Record(const std::string& action, const nlohmann::json& data) {
  std::lock_guard<std::mutex> lock(trail_mu_);
  trail_->Record(action, data);
}

std::optional<int> Agent::RecordStart() {
  Record("component_start", {{"component", "sentinelagent"},
                             {"version", kVersion},
                             {"pid", getpid()},
                             {"uid", getuid()},
                             {"once", flags_.once},
                             {"collector", !flags_.no_collector}});
  Record("config_loaded", {{"config_hash", loaded_.hash}, {"sources", loaded_.sources}});
  if (dropped_to_) {
    Record("privileges_dropped", {{"component", "sentinelagent"},
                                  {"user", dropped_to_->name},
                                  {"uid", dropped_to_->uid},
                                  {"gid", dropped_to_->gid},
                                  {"kept_capabilities", nlohmann::json::array()},
                                  {"no_new_privs", true},
                                  {"launcher_pid", launcher_ ? launcher_->pid() : -1}});
  }
  audit_dead_letter_ = [this](int64_t alert, const std::string& sink, int attempts,
                              const std::string& error) {
    Record("alert_dead_lettered",
           {{"alert_id", alert}, {"sink", sink}, {"attempts", attempts}, {"error", error}});
  };
  return std::nullopt;
}

void Agent::EnqueueNewAlerts() {
  std::lock_guard<std::mutex> lock(dispatcher_mu_);
  if (auto queued = dispatcher_->EnqueueNewAlerts(); !queued.ok()) {
    LogError("queueing alerts for delivery failed; they are queued at the next cycle or start",
             {{"error", queued.status().message()}});
  }
}

// Deliveries a previous run left pending (or alerts it stored but never
// queued) resume before the first cycle.
std::optional<int> Agent::StartDetection() {
  if (Status s = dispatcher_->Start(); !s.ok())
    return Fail(kExitRuntime, "starting alert delivery: " + s.message());
  scheduler_ = std::make_unique<RuleScheduler>(cfg_, *db_, Workers());
  scheduler_->SetAuditHook(
      [this](const std::string& action, const std::string& rule, const std::string& details) {
        Record(action, {{"rule", rule}, {"details", details}});
      });
  if (Status s = scheduler_->LoadRules(cfg_); !s.ok())
    return Fail(kExitRuntime, "loading rules: " + s.message());
  ops_->WatchScheduler(scheduler_.get());
  // A rule's alerts are queued for delivery as soon as they are committed.
  scheduler_->SetAlertsCommittedHook([this] { EnqueueNewAlerts(); });
  // SIGTERM/SIGINT (blocked, so they stay pending for the main loop) stop a
  // cycle at once: its query workers are killed.
  scheduler_->SetStopCheck(StopSignalPending);
  return std::nullopt;
}

// The real-time detector (realtime_detector.h): opened now, its thread
// started with the services (Run) or run once after the cycle (RunOnce).
RealtimeOptions Agent::RealtimeConfig() const {
  RealtimeOptions o;
  o.database_path = cfg_.database.path;
  o.busy_timeout_ms = cfg_.database.busy_timeout_ms;
  o.procmond_socket = ipc::SocketPath(cfg_.ipc.socket_dir, ipc::kProcmondSocket);
  o.batch_ms = cfg_.detection.realtime_batch_ms;
  o.interval_ms = cfg_.detection.interval_secs * 1000;
  o.rule_timeout_ms = cfg_.detection.rule_timeout_secs * 1000;
  o.dedup_window_ms = cfg_.alerting.dedup_window_secs * 1000;
  return o;
}

std::optional<int> Agent::OpenRealtime() {
  realtime_ = std::make_unique<RealtimeDetector>(RealtimeConfig(),
                                                 [this](const std::vector<alerting::Alert>& alerts) {
                                                   RecordAlerts(alerts);
                                                   ops_->stats().CountAlerts(alerts);
                                                   EnqueueNewAlerts();
                                                 });
  if (Status s = realtime_->Open(); !s.ok()) return Fail(kExitRuntime, "real-time detection: " + s.message());
  realtime_->SetRules(scheduler_->rules());
  return std::nullopt;
}

void Agent::RecordAlerts(const std::vector<alerting::Alert>& alerts) {
  if (alerts.empty()) return;
  std::vector<std::pair<std::string, nlohmann::json>> entries;
  for (const auto& a : alerts) entries.push_back({"alert_created", AlertCreatedEntry(a)});
  std::lock_guard<std::mutex> lock(trail_mu_);
  trail_->RecordMany(entries);
}

bool Agent::Cycle() {
  auto report = scheduler_->RunCycle();
  if (!report.ok()) {
    LogError("detection cycle failed", {{"error", report.status().message()}});
    ops_->stats().RecordCycleFailure();
    return false;
  }
  ops_->stats().RecordCycle(*report, NowMs());
  // Alerts the store refused still reach every sink, from memory.
  if (!report->unrecorded.empty()) dispatcher_->DeliverUnrecorded(report->unrecorded);
  RecordAlerts(report->alerts);
  // The alerts are committed; queue them (the dispatcher reads them back by id).
  EnqueueNewAlerts();
  // A stop for shutdown is a clean stop, not a failure.
  LogCycle(*report, cycle_logged_ ? telemetry::LogLevel::kDebug : telemetry::LogLevel::kInfo);
  cycle_logged_ = true;
  return true;
}

// Waits for every pending delivery to succeed or be dead-lettered (bounded
// by the retry policy); SIGTERM/SIGINT stop early, keeping the rest pending.
void Agent::WaitForDeliveries() {
  while (true) {
    auto idle = dispatcher_->Idle();
    if (!idle.ok()) {
      LogError("reading the delivery queue failed", {{"error", idle.status().message()}});
      return;
    }
    if (*idle) return;
    timespec wait{0, 100'000'000};
    const int sig = sigtimedwait(&signals_, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      LogInfo("stopping before every delivery finished; the rest stays queued",
              {{"signal", SignalName(sig)}});
      return;
    }
  }
}

int Agent::RunOnce() {
  // Exec events first (their rows carry the exec's own details), then the scan.
  Status rt = realtime_->CatchUp();
  if (!rt.ok()) LogError("real-time detection failed", {{"error", rt.message()}});
  const bool ok = Cycle() && rt.ok();
  WaitForDeliveries();
  dispatcher_->Stop();
  LogDeliverySummary(*dispatcher_);
  LogInfo("sentinelagent stopping", {{"reason", "--once"}});
  Record("component_stop", {{"component", "sentinelagent"}, {"reason", "--once"}});
  return ok ? 0 : kExitRuntime;
}

void Agent::StartServices() {
  // Before procmond runs: a forwarding enabled now starts at the store's current end.
  if (Status s = PrepareFleetForwarding(*db_, cfg_, NowMs()); !s.ok())
    LogError("fleet: the forwarding cursors could not be prepared", {{"error", s.message()}});
  if (supervise_) {
    supervisor_ =
        std::make_unique<Supervisor>(procmond_program_, ProcmondArgs(flags_, cfg_), launcher_.get());
    supervisor_->Poll(MonotonicMs());
  }
  // Retention, optimize and checkpoints on their own thread and connection.
  MaintenanceOptions mopts;
  mopts.database_path = cfg_.database.path;
  mopts.busy_timeout_ms = cfg_.database.busy_timeout_ms;
  mopts.retention_days = cfg_.database.retention_days;
  mopts.alert_retention_days = cfg_.database.alert_retention_days;
  mopts.interval_ms = cfg_.database.maintenance_interval_secs * 1000;
  mopts.first_delay_ms = std::min<int64_t>(60'000, mopts.interval_ms);
  maintenance_ = std::make_unique<Maintenance>(
      mopts, [this](const nlohmann::json& counts) { Record("retention_applied", counts); });
  maintenance_->Start();
  ops_->stats().SetCollector(supervisor_ != nullptr, supervisor_ ? supervisor_->pid() : -1,
                             supervisor_ ? supervisor_->restarts() : 0);
  ops_->stats().SetDelivery(dispatcher_->Metrics());
  if (Status s = realtime_->Start(); !s.ok())
    LogError("real-time detection not started", {{"error", s.message()}});
  if (!ops_->control_path().empty()) {
    if (Status s = ops_->StartControl(); s.ok()) {
      LogInfo("control socket listening", {{"path", ops_->control_path()}});
    } else {
      LogWarn("control socket not started", {{"error", s.message()}});
    }
  }
  if (!cfg_.telemetry.http_listen.empty()) {
    http_->Start();
    LogInfo("HTTP endpoint listening",
            {{"address", http_->address()},
             {"paths", cfg_.telemetry.web_ui ? nlohmann::json{"/ (web UI)", "/api/", "/metrics", "/health"}
                                             : nlohmann::json{"/metrics", "/health"}}});
  }
  StartFleet();
  // Counts from here on: what the store held before the start is not this run's.
  summary_.emplace(cfg_.telemetry.summary_interval_secs * 1000, MonotonicMs());
  int64_t processes = 0;
  summary_->Baseline(SummaryTotals(&processes));
}

telemetry::PeriodicSummary::Totals Agent::SummaryTotals(int64_t* processes) {
  const StoreProgress progress = ReadStoreProgress(*db_);
  *processes = progress.last_scan_processes;
  return agent::SummaryTotals(ops_->stats().Snapshot(), progress.last_scan_id, progress.last_event_id);
}

// One info line per telemetry.summary_interval_secs (SPEC §16): what the
// agent did since the previous one, and the processes of the latest scan.
void Agent::LogSummaryIfDue() {
  const int64_t now = MonotonicMs();
  if (!summary_ || !summary_->Due(now)) return;
  int64_t processes = 0;
  const telemetry::PeriodicSummary::Totals totals = SummaryTotals(&processes);
  nlohmann::json fields = summary_->Take(totals, now);
  fields["processes"] = processes;
  LogInfo("summary", fields);
}

// "ok" when every component is, "failing" when collection or detection is
// not, "degraded" otherwise (a sink, the audit tail).
std::string Agent::FleetHealth() {
  const health::HealthReport report = ops_->Health();
  std::string health = "ok";
  for (const auto& c : report.components) {
    if (c.status != "unhealthy") continue;
    if (c.name == "collector" || c.name == "agent") return "failing";
    health = "degraded";
  }
  return health;
}

void Agent::StartFleet() {
  if (cfg_.fleet.servers.empty()) return;
  FleetServiceOptions o;
  o.cfg = cfg_;
  o.version = kVersion;
  o.health = [this] { return FleetHealth(); };
  o.reload_rules = [this] { fleet_reload_ = true; };
  o.record = [this](const std::string& action, const nlohmann::json& data) { Record(action, data); };
  o.rules = scheduler_->rules();
  auto started = StartFleetLink(std::move(o));
  if (!started.ok()) {
    LogError("fleet not started; this host runs on its own", {{"error", started.status().message()}});
    return;
  }
  fleet_ = std::move(*started);
}

void Agent::ReloadRules() {
  if (Status s = scheduler_->LoadRules(cfg_); !s.ok()) {
    LogError("rule reload failed", {{"error", s.message()}});
    return;
  }
  realtime_->SetRules(scheduler_->rules());
  if (fleet_) fleet_->SetRuleSet(scheduler_->rules());
}

void Agent::ReportState() {
  ops_->stats().SetDelivery(dispatcher_->Metrics());
  ops_->stats().SetRealtime(realtime_->Stats());
  if (supervisor_) ops_->stats().SetCollector(true, supervisor_->pid(), supervisor_->restarts());
}

int Agent::WaitSignal(int64_t next_cycle_ms) {
  const int64_t wait_ms = std::clamp<int64_t>(next_cycle_ms - MonotonicMs(), 0, 1000);
  timespec wait{static_cast<time_t>(wait_ms / 1000), static_cast<long>((wait_ms % 1000) * 1'000'000)};
  const int sig = sigtimedwait(&signals_, nullptr, &wait);
  return sig < 0 ? 0 : sig;
}

// Only the root launcher can start procmond: without it the agent cannot
// collect; exit so whatever runs the agent starts both again.
int Agent::StopForLostLauncher() {
  LogError("the procmond launcher is gone; stopping (procmond can no longer be started)",
           {{"launcher_pid", launcher_->pid()}});
  fleet_.reset();
  realtime_->Stop();
  maintenance_->Stop();
  dispatcher_->Stop();
  Record("component_stop", {{"component", "sentinelagent"}, {"reason", "launcher gone"}});
  return kExitRuntime;
}

int Agent::StopOnSignal(int sig) {
  LogInfo("sentinelagent stopping", {{"signal", SignalName(sig)}});
  fleet_.reset();
  realtime_->Stop();
  maintenance_->Stop();
  dispatcher_->Stop();
  LogDeliverySummary(*dispatcher_);
  if (supervisor_) supervisor_->Stop(10'000);
  Record("component_stop", {{"component", "sentinelagent"}, {"reason", SignalName(sig)}});
  return 0;
}

int Agent::Run() {
  StartServices();
  int64_t next_cycle = MonotonicMs();
  while (true) {
    if (MonotonicMs() >= next_cycle) {
      Cycle();
      next_cycle = MonotonicMs() + cfg_.detection.interval_secs * 1000;
    }
    if (supervisor_) supervisor_->Poll(MonotonicMs());
    if (supervisor_ && supervisor_->launcher_lost()) return StopForLostLauncher();
    ReportState();
    LogSummaryIfDue();
    const int sig = WaitSignal(next_cycle);
    if (sig == kRunNowSignal && ops_->TakeScanNow()) {
      LogInfo("running the rules now (scan-now over the control socket)");
      next_cycle = MonotonicMs();
    }
    if (sig == SIGTERM || sig == SIGINT) return StopOnSignal(sig);
    if (sig == SIGHUP) Reload();
    if (fleet_reload_.exchange(false)) ReloadRules();
  }
}

// New sinks are built (secrets read) before the running ones stop; a refused
// configuration keeps the running sinks.
void Agent::ReplaceDispatcher(config::Config& next) {
  auto replacement = MakeDispatcher(next);
  if (!replacement.ok()) {
    LogError("new alerting.sinks refused; keeping the running sinks",
             {{"error", replacement.status().message()}});
    next.alerting = cfg_.alerting;
    return;
  }
  std::lock_guard<std::mutex> lock(dispatcher_mu_);
  dispatcher_->Stop();
  if (Status st = (*replacement)->Start(); !st.ok()) {
    LogError("alert delivery could not start; deliveries stay queued until the next reload or restart",
             {{"error", st.message()}});
  }
  dispatcher_ = std::move(replacement).value();
}

void Agent::Reload() {
  auto reloaded = LoadConfig(flags_);
  if (!reloaded.ok()) {
    LogError("configuration reload refused; keeping the running configuration",
             {{"error", reloaded.status().message()}});
    return;
  }
  // Restart-only keys (stores, sockets, the HTTP port) keep their running
  // values; everything else applies now, from one consistent config.
  const std::vector<std::string> kept = config::RestartOnlyChanges(cfg_, reloaded->config);
  config::Config next = config::ReloadableConfig(cfg_, reloaded->config);
  if (next.alerting != cfg_.alerting) ReplaceDispatcher(next);
  if (maintenance_) {
    maintenance_->Reconfigure(next.database.retention_days, next.database.alert_retention_days,
                              next.database.maintenance_interval_secs * 1000);
  }
  cfg_ = std::move(next);
  config::InitProgramLogging("sentinelagent", cfg_);
  if (summary_) summary_->SetInterval(cfg_.telemetry.summary_interval_secs * 1000);
  ops_->SetConfig(cfg_);
  if (Status s = scheduler_->LoadRules(cfg_); !s.ok())
    LogError("rule reload failed", {{"error", s.message()}});
  realtime_->Reconfigure(RealtimeConfig());
  realtime_->SetRules(scheduler_->rules());
  if (fleet_) {
    fleet_->SetConfig(cfg_);
    fleet_->SetRuleSet(scheduler_->rules());
  }
  const std::string hash = config::Hash(cfg_);
  if (!kept.empty()) {
    LogWarn(Join(kept, ", ") + " changed, takes effect at restart; running value kept", {{"keys", kept}});
  }
  LogInfo(kept.empty() ? "configuration reloaded" : "configuration reloaded except restart-only keys",
          {{"config_hash", hash}, {"loaded_hash", reloaded->hash}, {"restart_pending", kept}});
  Record("config_loaded", {{"config_hash", hash},
                           {"loaded_hash", reloaded->hash},
                           {"sources", reloaded->sources},
                           {"reload", true},
                           {"restart_pending", kept}});
  if (supervisor_) supervisor_->Signal(SIGHUP);
}

}  // namespace sentinel::agent
