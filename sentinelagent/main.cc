// sentinelagent: supervises procmond, runs the detection rules on a schedule,
// turns findings into deduplicated alerts and delivers them through the
// configured sinks (SPEC §1, §6, §7).
//
// Exit codes: 0 success (including SIGTERM/SIGINT), 1 runtime failure,
// 2 bad usage or configuration.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include <CLI/CLI.hpp>

#include "sentinel/alerting/dispatcher.h"
#include "sentinel/alerting/sink.h"
#include "sentinel/audit/trail.h"
#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/base/version.h"
#include "sentinel/config/bootstrap.h"
#include "sentinel/config/config.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/sql_guard.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"
#include "sentinelagent/control.h"
#include "sentinelagent/http_server.h"
#include "sentinelagent/instance_lock.h"
#include "sentinelagent/maintenance.h"
#include "sentinelagent/privsep.h"
#include "sentinelagent/rule_scheduler.h"
#include "sentinelagent/supervisor.h"

namespace {

using namespace sentinel;
using telemetry::LogError;
using telemetry::LogInfo;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

struct Flags {
  std::string config_file;
  std::string database;
  std::string log_level;
  bool once = false;
  bool no_collector = false;
};

Result<config::LoadedConfig> LoadConfig(const Flags& f) {
  return config::LoadProgramConfig(
      {f.config_file, {{"database.path", f.database}, {"telemetry.log_level", f.log_level}}});
}

void InitLog(const config::Config& c) {
  config::InitProgramLogging("sentinelagent", c);
}

// The delivery engine for `alerting`: one sink per enabled entry, built (and
// their secrets read) before anything is written; started later.
using DeadLetterHook = std::function<void(int64_t, const std::string&, int, const std::string&)>;

Result<std::unique_ptr<alerting::Dispatcher>> MakeDispatcher(const config::Config& cfg,
                                                             DeadLetterHook on_dead) {
  alerting::SinkRegistry registry;
  alerting::RegisterBuiltinSinks(registry);
  const alerting::SinkEnvironment env = alerting::SinkEnvironment::Process();
  alerting::DispatcherOptions opts;
  opts.database_path = cfg.database.path;
  opts.busy_timeout_ms = cfg.database.busy_timeout_ms;
  opts.retry = cfg.alerting.retry;
  opts.circuit_breaker = cfg.alerting.circuit_breaker;
  opts.on_dead_letter = std::move(on_dead);
  opts.dedup_window_ms = cfg.alerting.dedup_window_secs * 1000;
  std::vector<alerting::SinkBinding> sinks;
  for (const auto& s : cfg.alerting.sinks) {
    opts.configured_sinks.insert(s.name);
    if (!s.enabled) continue;
    ASSIGN_OR_RETURN(auto sink, registry.Build(s, env));
    sinks.push_back(
        {std::move(sink), s.min_severity.empty() ? std::nullopt : detection::ParseSeverity(s.min_severity)});
  }
  return std::make_unique<alerting::Dispatcher>(std::move(opts), std::move(sinks));
}

void LogDeliverySummary(const alerting::Dispatcher& d) {
  alerting::DeliveryMetrics m = d.Metrics();
  nlohmann::json sinks = nlohmann::json::object();
  for (const auto& s : m.sinks) {
    sinks[s.name] = {{"delivered", s.delivered},
                     {"failed", s.failed},
                     {"skipped", s.skipped},
                     {"dead_lettered", s.dead_lettered},
                     {"circuit", alerting::CircuitStateName(s.circuit)}};
  }
  LogInfo("alert delivery", {{"sinks", sinks}, {"dlq_size", m.dlq_size}});
}

// procmond's arguments: the agent's own configuration file and store.
std::vector<std::string> ProcmondArgs(const Flags& flags, const config::Config& cfg) {
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

int Run(const Flags& flags) {
  auto loaded = LoadConfig(flags);
  if (!loaded.ok()) {
    std::fprintf(stderr, "sentinelagent: %s\n", loaded.status().message().c_str());
    return kExitUsage;
  }
  config::Config cfg = loaded->config;
  InitLog(cfg);
  LogInfo("sentinelagent starting", {{"version", kVersion},
                                     {"pid", getpid()},
                                     {"uid", getuid()},
                                     {"config_hash", loaded->hash},
                                     {"config_sources", loaded->sources},
                                     {"database", cfg.database.path},
                                     {"once", flags.once},
                                     {"collector", !flags.no_collector}});

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  sigaddset(&sigs, agent::kRunNowSignal);  // scan-now over agent.sock
  sigprocmask(SIG_BLOCK, &sigs, nullptr);
  // A sink peer that hangs up must fail one attempt, not kill the agent.
  signal(SIGPIPE, SIG_IGN);

  // A bad audit signing key is a configuration error: found before any
  // store is created. Read before the privilege drop below: started as root,
  // the key is root's (0600, owned by the signing process's uid at load),
  // the same file procmond loads before its own drop.
  std::shared_ptr<const audit::Signer> signer;
  if (!cfg.database.audit_signing_key.empty()) {
    auto key = audit::Signer::LoadPrivateKeyFile(cfg.database.audit_signing_key);
    if (!key.ok()) {
      std::fprintf(stderr, "sentinelagent: database.audit_signing_key: %s\n", key.status().message().c_str());
      return IsRefusedPath(key.status()) ? kExitRuntime : kExitUsage;  // a planted link is not a config error
    }
    signer = std::shared_ptr<const audit::Signer>(std::move(*key));
  }

  // Started as root: fork the root launcher of procmond, create the
  // directories the agent needs for its user, then drop to privileges.user
  // with no capability (sentinelagent/privsep.h, docs/decisions.md #18).
  // Nothing below runs as root: no thread exists yet and nothing is open.
  std::unique_ptr<agent::Launcher> launcher;
  const bool supervise = !flags.once && !flags.no_collector;
  const std::string procmond_program = supervise ? agent::FindProcmond() : "";
  std::optional<agent::ServiceUser> dropped_to;
  if (::geteuid() == 0) {
    auto user = agent::LookupServiceUser(cfg.privileges.user);
    if (!user.ok()) {
      std::fprintf(stderr, "sentinelagent: %s\n", user.status().message().c_str());
      return kExitUsage;
    }
    if (supervise) {
      auto forked = agent::Launcher::Fork({procmond_program, ProcmondArgs(flags, cfg)});
      if (!forked.ok()) {
        std::fprintf(stderr, "sentinelagent: %s\n", forked.status().message().c_str());
        return kExitRuntime;
      }
      launcher = std::move(forked).value();
    }
    std::vector<std::string> dirs{ParentDir(cfg.database.path), ParentDir(cfg.database.audit_path)};
    if (!flags.once) dirs.push_back(cfg.ipc.socket_dir);
    if (Status s = agent::PrepareDirectories(dirs, *user); !s.ok()) {
      LogError("refusing to start", {{"error", s.message()}});
      std::fprintf(stderr, "sentinelagent: %s\n", s.message().c_str());
      return kExitRuntime;
    }
    if (Status s = agent::DropToUser(*user); !s.ok()) {
      LogError("cannot drop privileges", {{"error", s.message()}});
      std::fprintf(stderr, "sentinelagent: cannot drop privileges: %s\n", s.message().c_str());
      return kExitRuntime;
    }
    dropped_to = *user;
    LogInfo("privileges dropped", {{"user", user->name},
                                   {"uid", user->uid},
                                   {"gid", user->gid},
                                   {"kept_capabilities", nlohmann::json::array()},
                                   {"no_new_privs", true},
                                   {"launcher_pid", launcher ? launcher->pid() : -1}});
  }

  // Set once the audit trail is open (below); the dispatcher starts after that.
  DeadLetterHook audit_dead_letter;
  auto on_dead_letter = [&audit_dead_letter](int64_t alert, const std::string& sink, int attempts,
                                             const std::string& error) {
    if (audit_dead_letter) audit_dead_letter(alert, sink, attempts, error);
  };
  auto dispatcher = MakeDispatcher(cfg, on_dead_letter);
  if (!dispatcher.ok()) {
    std::fprintf(stderr, "sentinelagent: alerting.sinks: %s\n", dispatcher.status().message().c_str());
    return kExitUsage;
  }

  // One agent per data directory: a second would run every rule and deliver
  // every alert twice.
  auto instance_lock = agent::InstanceLock::Acquire(cfg.database.path);
  if (!instance_lock.ok()) {
    LogError("refusing to start", {{"error", instance_lock.status().message()}});
    std::fprintf(stderr, "sentinelagent: %s\n", instance_lock.status().message().c_str());
    return kExitRuntime;
  }

  // agent.sock and the HTTP endpoint (sentinelagent/control.h) are bound
  // before any store is written: a taken port stops the start-up with exit 1
  // (the host's state: systemd retries), an address that cannot be used as
  // configured with exit 2, a live agent.sock means another agent runs
  // (exit 1). They serve once the main loop runs.
  agent::AgentOps ops(cfg, kVersion);
  ops.SetAuditSigner(signer);
  agent::HttpServer http(ops);
  if (!flags.once) {
    if (!cfg.telemetry.http_listen.empty()) {
      if (Status s = http.Bind(cfg.telemetry.http_listen); !s.ok()) {
        LogError("refusing to start", {{"error", s.message()}});
        std::fprintf(stderr, "sentinelagent: %s\n", s.message().c_str());
        return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime;
      }
    }
    if (Status s = ops.ListenControl(); s.code() == StatusCode::kAlreadyExists || IsRefusedPath(s)) {
      LogError("refusing to start", {{"error", s.message()}});
      std::fprintf(stderr, "sentinelagent: %s\n", s.message().c_str());
      return kExitRuntime;
    } else if (!s.ok()) {
      telemetry::LogWarn("control socket unavailable: sentinelcli health falls back to what it reads itself",
                         {{"error", s.message()}});
    }
  }

  // --once writes nothing when a store it would write cannot be used: a file
  // that is not ours, newer, truncated or unreadable (the ledger included,
  // which the daemon would run without) stops the run, naming it.
  if (flags.once) {
    for (const auto& [kind, path] : {std::pair{storage::DatabaseKind::kEvents, cfg.database.path},
                                     std::pair{storage::DatabaseKind::kAudit, cfg.database.audit_path}}) {
      if (Status s = storage::CheckStoreFile(kind, path); !s.ok()) {
        LogError("refusing to run", {{"error", s.message()}});
        std::fprintf(stderr, "sentinelagent: %s\n", s.message().c_str());
        return kExitRuntime;
      }
    }
  }

  auto db =
      storage::OpenStore(storage::DatabaseKind::kEvents,
                         {cfg.database.path, storage::OpenMode::kReadWrite, cfg.database.busy_timeout_ms});
  if (!db.ok()) {
    std::fprintf(stderr, "sentinelagent: %s\n", db.status().message().c_str());
    return kExitRuntime;
  }

  // The audit trail. Records come from this thread and from delivery
  // workers (dead letters): one mutex serializes them.
  std::unique_ptr<audit::AuditTrail> trail;
  {
    audit::LedgerOptions lopts;
    lopts.path = cfg.database.audit_path;
    lopts.busy_timeout_ms = cfg.database.busy_timeout_ms;
    lopts.signer = signer;
    auto opened = audit::AuditTrail::Open("sentinelagent", lopts);
    if (!opened.ok() && opened.status().code() == StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "sentinelagent: %s\n", opened.status().message().c_str());
      return kExitUsage;
    }
    // A link planted at the ledger stops the agent. A ledger that is there
    // but damaged or not ours: the daemon runs without it (decisions #16),
    // --once stops before writing anything.
    if (!opened.ok() && (IsRefusedPath(opened.status()) ||
                         (flags.once && (opened.status().code() == StatusCode::kFailedPrecondition ||
                                         opened.status().code() == StatusCode::kDataLoss)))) {
      std::fprintf(stderr, "sentinelagent: %s\n", opened.status().message().c_str());
      return kExitRuntime;
    }
    trail = opened.ok() ? std::move(*opened)
                        : audit::AuditTrail::Disabled("sentinelagent", opened.status().message());
  }
  std::mutex trail_mu;
  auto record = [&](const std::string& action, const nlohmann::json& data) {
    std::lock_guard<std::mutex> lock(trail_mu);
    trail->Record(action, data);
  };
  record("component_start", {{"component", "sentinelagent"},
                             {"version", kVersion},
                             {"pid", getpid()},
                             {"uid", getuid()},
                             {"once", flags.once},
                             {"collector", !flags.no_collector}});
  record("config_loaded", {{"config_hash", loaded->hash}, {"sources", loaded->sources}});
  if (dropped_to) {
    record("privileges_dropped", {{"component", "sentinelagent"},
                                  {"user", dropped_to->name},
                                  {"uid", dropped_to->uid},
                                  {"gid", dropped_to->gid},
                                  {"kept_capabilities", nlohmann::json::array()},
                                  {"no_new_privs", true},
                                  {"launcher_pid", launcher ? launcher->pid() : -1}});
  }
  audit_dead_letter = [&](int64_t alert, const std::string& sink, int attempts, const std::string& error) {
    record("alert_dead_lettered",
           {{"alert_id", alert}, {"sink", sink}, {"attempts", attempts}, {"error", error}});
  };
  auto stop_record = [&](const std::string& reason) {
    record("component_stop", {{"component", "sentinelagent"}, {"reason", reason}});
  };

  // Deliveries a previous run left pending (or alerts it stored but never
  // queued) resume before the first cycle.
  if (Status s = (*dispatcher)->Start(); !s.ok()) {
    std::fprintf(stderr, "sentinelagent: starting alert delivery: %s\n", s.message().c_str());
    return kExitRuntime;
  }
  agent::RuleScheduler scheduler(cfg, **db, Workers());
  scheduler.SetAuditHook([&](const std::string& action, const std::string& rule, const std::string& details) {
    record(action, {{"rule", rule}, {"details", details}});
  });
  if (Status s = scheduler.LoadRules(cfg); !s.ok()) {
    std::fprintf(stderr, "sentinelagent: loading rules: %s\n", s.message().c_str());
    return kExitRuntime;
  }
  ops.WatchScheduler(&scheduler);
  // The readers of the scheduler (HTTP, agent.sock) stop before it goes.
  struct StopReaders {
    agent::HttpServer& http;
    agent::AgentOps& ops;
    ~StopReaders() {
      http.Stop();
      ops.Stop();
      ops.WatchScheduler(nullptr);
    }
  } stop_readers{http, ops};
  // A rule's alerts are queued for delivery as soon as they are committed.
  scheduler.SetAlertsCommittedHook([&] {
    if (auto queued = (*dispatcher)->EnqueueNewAlerts(); !queued.ok()) {
      LogError("queueing alerts for delivery failed; they are queued at the next cycle or start",
               {{"error", queued.status().message()}});
    }
  });
  // SIGTERM/SIGINT (blocked, so they stay pending for the loops below) stop
  // a cycle at once: its query workers are killed.
  scheduler.SetStopCheck([] {
    sigset_t pending;
    sigemptyset(&pending);
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
  });

  auto cycle = [&]() -> bool {
    auto report = scheduler.RunCycle();
    if (!report.ok()) {
      LogError("detection cycle failed", {{"error", report.status().message()}});
      ops.RecordCycleFailure();
      return false;
    }
    ops.RecordCycle(*report);
    // Alerts the store refused still reach every sink, from memory.
    if (!report->unrecorded.empty()) (*dispatcher)->DeliverUnrecorded(report->unrecorded);
    if (!report->alerts.empty()) {
      std::vector<std::pair<std::string, nlohmann::json>> entries;
      for (const auto& a : report->alerts) {
        nlohmann::json pids = nlohmann::json::array();
        for (const auto& p : a.affected_processes) {
          auto pid = p.find("pid");
          if (pid != p.end() && pid->is_number_integer()) pids.push_back(pid->get<int64_t>());
        }
        entries.push_back({"alert_created",
                           {{"alert_id", a.id},
                            {"rule", a.rule_id},
                            {"rule_version", a.rule_version},
                            {"severity", std::string(detection::SeverityName(a.severity))},
                            {"dedup_key", a.dedup_key},
                            {"pids", pids}}});
      }
      std::lock_guard<std::mutex> lock(trail_mu);
      trail->RecordMany(entries);
    }
    // The alerts are committed; queue them (the dispatcher reads them back by id).
    if (auto queued = (*dispatcher)->EnqueueNewAlerts(); !queued.ok()) {
      LogError("queueing alerts for delivery failed; they are queued at the next cycle or start",
               {{"error", queued.status().message()}});
    }
    if (report->stopped) {
      LogInfo("detection cycle stopped for shutdown; its unfinished rules run at the next start",
              {{"rules_finished", report->runs.size()}, {"alerts", report->alerts.size()}});
      return true;  // a clean stop, not a failure
    }
    LogInfo("detection cycle", {{"rules", report->runs.size()},
                                {"failed", report->failed},
                                {"alerts", report->alerts.size()},
                                {"unrecorded", report->unrecorded.size()},
                                {"duration_ms", report->duration_ms}});
    return true;
  };

  if (flags.once) {
    const bool ok = cycle();
    // Wait for every pending delivery to succeed or be dead-lettered (bounded
    // by the retry policy); SIGTERM/SIGINT stop early, keeping the rest pending.
    while (true) {
      auto idle = (*dispatcher)->Idle();
      if (!idle.ok()) {
        LogError("reading the delivery queue failed", {{"error", idle.status().message()}});
        break;
      }
      if (*idle) break;
      timespec wait{0, 100'000'000};
      int sig = sigtimedwait(&sigs, nullptr, &wait);
      if (sig == SIGTERM || sig == SIGINT) {
        LogInfo("stopping before every delivery finished; the rest stays queued",
                {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        break;
      }
    }
    (*dispatcher)->Stop();
    LogDeliverySummary(**dispatcher);
    LogInfo("sentinelagent stopping", {{"reason", "--once"}});
    stop_record("--once");
    return ok ? 0 : kExitRuntime;
  }

  std::unique_ptr<agent::Supervisor> supervisor;
  if (supervise) {
    supervisor =
        std::make_unique<agent::Supervisor>(procmond_program, ProcmondArgs(flags, cfg), launcher.get());
    supervisor->Poll(MonotonicMs());
  }

  // Retention, optimize and checkpoints on their own thread and connection.
  agent::MaintenanceOptions mopts;
  mopts.database_path = cfg.database.path;
  mopts.busy_timeout_ms = cfg.database.busy_timeout_ms;
  mopts.retention_days = cfg.database.retention_days;
  mopts.alert_retention_days = cfg.database.alert_retention_days;
  mopts.interval_ms = cfg.database.maintenance_interval_secs * 1000;
  mopts.first_delay_ms = std::min<int64_t>(60'000, mopts.interval_ms);
  agent::Maintenance maintenance(mopts,
                                 [&](const nlohmann::json& counts) { record("retention_applied", counts); });
  maintenance.Start();

  ops.SetCollector(supervisor != nullptr, supervisor ? supervisor->pid() : -1,
                   supervisor ? supervisor->restarts() : 0);
  ops.SetDelivery((*dispatcher)->Metrics());
  if (!ops.control_path().empty()) {
    if (Status s = ops.StartControl(); s.ok()) {
      LogInfo("control socket listening", {{"path", ops.control_path()}});
    } else {
      telemetry::LogWarn("control socket not started", {{"error", s.message()}});
    }
  }
  if (!cfg.telemetry.http_listen.empty()) {
    http.Start();
    LogInfo("HTTP endpoint listening", {{"address", http.address()}, {"paths", {"/metrics", "/health"}}});
  }

  int64_t next_cycle = MonotonicMs();
  while (true) {
    const int64_t now = MonotonicMs();
    if (now >= next_cycle) {
      cycle();
      next_cycle = MonotonicMs() + cfg.detection.interval_secs * 1000;
    }
    if (supervisor) supervisor->Poll(MonotonicMs());
    if (supervisor && supervisor->launcher_lost()) {
      // Only the root launcher can start procmond: without it the agent
      // cannot collect; exit so whatever runs the agent starts both again.
      LogError("the procmond launcher is gone; stopping (procmond can no longer be started)",
               {{"launcher_pid", launcher->pid()}});
      maintenance.Stop();
      (*dispatcher)->Stop();
      stop_record("launcher gone");
      return kExitRuntime;
    }
    ops.SetDelivery((*dispatcher)->Metrics());
    if (supervisor) ops.SetCollector(true, supervisor->pid(), supervisor->restarts());
    const int64_t wait_ms = std::clamp<int64_t>(next_cycle - MonotonicMs(), 0, 1000);
    timespec wait{static_cast<time_t>(wait_ms / 1000), static_cast<long>((wait_ms % 1000) * 1'000'000)};
    int sig = sigtimedwait(&sigs, nullptr, &wait);
    if (sig == agent::kRunNowSignal && ops.TakeScanNow()) {
      LogInfo("running the rules now (scan-now over the control socket)");
      next_cycle = MonotonicMs();
    }
    if (sig == SIGTERM || sig == SIGINT) {
      LogInfo("sentinelagent stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      maintenance.Stop();
      (*dispatcher)->Stop();
      LogDeliverySummary(**dispatcher);
      if (supervisor) supervisor->Stop(10'000);
      stop_record(sig == SIGTERM ? "SIGTERM" : "SIGINT");
      return 0;
    }
    if (sig == SIGHUP) {
      auto reloaded = LoadConfig(flags);
      if (!reloaded.ok()) {
        LogError("configuration reload refused; keeping the running configuration",
                 {{"error", reloaded.status().message()}});
        continue;
      }
      // Restart-only keys (stores, sockets, the HTTP port) keep their running
      // values; everything else applies now, from one consistent config.
      const std::vector<std::string> kept = config::RestartOnlyChanges(cfg, reloaded->config);
      config::Config next = config::ReloadableConfig(cfg, reloaded->config);
      if (next.alerting != cfg.alerting) {
        // New sinks are built (secrets read) before the running ones stop; a
        // refused configuration keeps the running sinks.
        auto replacement = MakeDispatcher(next, on_dead_letter);
        if (!replacement.ok()) {
          LogError("new alerting.sinks refused; keeping the running sinks",
                   {{"error", replacement.status().message()}});
          next.alerting = cfg.alerting;
        } else {
          (*dispatcher)->Stop();
          if (Status st = (*replacement)->Start(); !st.ok()) {
            LogError(
                "alert delivery could not start; deliveries stay queued until the next reload or restart",
                {{"error", st.message()}});
          }
          *dispatcher = std::move(replacement).value();
        }
      }
      maintenance.Reconfigure(next.database.retention_days, next.database.alert_retention_days,
                              next.database.maintenance_interval_secs * 1000);
      cfg = std::move(next);
      InitLog(cfg);
      ops.SetConfig(cfg);
      if (Status s = scheduler.LoadRules(cfg); !s.ok()) {
        LogError("rule reload failed", {{"error", s.message()}});
      }
      const std::string hash = config::Hash(cfg);
      if (!kept.empty()) {
        telemetry::LogWarn(Join(kept, ", ") + " changed, takes effect at restart; running value kept",
                           {{"keys", kept}});
      }
      LogInfo(kept.empty() ? "configuration reloaded" : "configuration reloaded except restart-only keys",
              {{"config_hash", hash}, {"loaded_hash", reloaded->hash}, {"restart_pending", kept}});
      record("config_loaded", {{"config_hash", hash},
                               {"loaded_hash", reloaded->hash},
                               {"sources", reloaded->sources},
                               {"reload", true},
                               {"restart_pending", kept}});
      if (supervisor) supervisor->Signal(SIGHUP);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Re-executed as a rule worker (sentinel/detection/query_worker.h).
  if (auto worker = sentinel::detection::RunQueryWorkerIfRequested(argc, argv)) return *worker;
  ::umask(027);
  // Rule queries cannot grow the agent without bound (SPEC §6).
  sentinel::detection::SetMemoryCeiling(sentinel::detection::kDefaultMemoryCeiling);
  CLI::App app{"sentinelagent: SentinelD detection and alerting agent"};
  Flags flags;
  app.add_option("--config", flags.config_file, "Configuration file (layered over the defaults)");
  app.add_option("--database", flags.database, "Event store path (database.path)");
  app.add_flag("--once", flags.once, "Run every enabled rule once, store the alerts and exit");
  app.add_flag("--no-collector", flags.no_collector, "Do not spawn and supervise procmond");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error|critical|off");
  app.set_version_flag("--version", std::string("sentinelagent ") + kVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return Run(flags);
}
