#include "sentinelagent/control.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <vector>

#include "sentinel/audit/trail.h"
#include "sentinel/base/time.h"
#include "sentinel/detection/rule.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"
#include "sentinelagent/audit_relay.h"

namespace sentinel::agent {

static_assert(kRunNowSignal == SIGUSR1);

namespace {

constexpr int64_t kProcmondTimeoutMs = 1000;
const char* const kSeverities[] = {"low", "medium", "high", "critical"};

// A stats key as a metric-name fragment: [a-z0-9_] only.
std::string MetricKey(const std::string& key) {
  std::string out;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : '_';
  }
  return out;
}

}  // namespace

int64_t StuckCycleBoundMs(const config::DetectionConfig& d) {
  return std::max(d.rule_timeout_secs * 1000 + kStuckCycleGraceMs, 2 * d.interval_secs * 1000);
}

AgentOps::AgentOps(const config::Config& cfg, std::string version)
    : version_(std::move(version)), started_ms_(MonotonicMs()), cfg_(cfg) {}

AgentOps::~AgentOps() {
  Stop();
}

Status AgentOps::ListenControl() {
  config::Config cfg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cfg = cfg_;
  }
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
  h["reload"] = [this](const ipc::Request&) -> Result<nlohmann::json> {
    reload_requests_++;
    if (::kill(::getpid(), SIGHUP) != 0) return ErrnoError(errno, "requesting a reload");
    return nlohmann::json{{"queued", true}};
  };
  h["scan-now"] = [this](const ipc::Request&) -> Result<nlohmann::json> {
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
  };
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

void AgentOps::RecordCycle(const CycleReport& report) {
  std::lock_guard<std::mutex> lock(mu_);
  ++cycles_;
  last_cycle_ms_ = NowMs();
  last_cycle_duration_ms_ = report.duration_ms;
  cycle_duration_.Observe(static_cast<double>(report.duration_ms) / 1000.0);
  for (const auto& r : report.runs) {
    if (r.status.ok()) {
      rule_runs_ok_[r.rule_id]++;
    } else {
      rule_runs_failed_[r.rule_id]++;
    }
    rule_duration_.Observe(static_cast<double>(r.duration_ms) / 1000.0);
  }
  for (const auto& a : report.alerts) alerts_created_[std::string(detection::SeverityName(a.severity))]++;
  if (report.record_writes_failed > 0) {
    record_writes_.Failed(report.record_error);
  } else if (report.record_writes_ok > 0) {
    record_writes_.Ok();
  }
}

void AgentOps::RecordCycleFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++cycles_failed_;
}

void AgentOps::SetDelivery(alerting::DeliveryMetrics m) {
  std::lock_guard<std::mutex> lock(mu_);
  delivery_ = std::move(m);
  have_delivery_ = true;
}

void AgentOps::SetCollector(bool supervised, pid_t pid, int64_t restarts) {
  std::lock_guard<std::mutex> lock(mu_);
  supervised_ = supervised;
  collector_pid_ = pid;
  collector_restarts_ = restarts;
}

Result<nlohmann::json> AgentOps::AskProcmond(const std::string& cmd) const {
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dir = cfg_.ipc.socket_dir;
  }
  return ipc::Call(ipc::SocketPath(dir, ipc::kProcmondSocket), cmd, kProcmondTimeoutMs);
}

health::HealthReport AgentOps::Health() {
  config::Config cfg;
  alerting::DeliveryMetrics delivery;
  int64_t last_cycle = 0, cycles = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cfg = cfg_;
    delivery = delivery_;
    last_cycle = last_cycle_ms_;
    cycles = static_cast<int64_t>(cycles_);
  }
  const int64_t now = NowMs();
  health::HealthReport r;
  r.source = "sentinelagent";
  r.generated_at_ms = now;
  r.components.push_back(health::CheckCollector(cfg, AskProcmond("health"), now));
  std::string agent_detail = "pid " + std::to_string(::getpid()) + ", up " +
                             std::to_string((MonotonicMs() - started_ms_) / 1000) + " s, " +
                             std::to_string(cycles) + " detection cycles";
  if (last_cycle > 0) agent_detail += ", last " + std::to_string((now - last_cycle) / 1000) + " s ago";
  // What the agent knows is wrong with itself (docs/operations.md "Health").
  std::vector<std::string> problems;
  if (const RuleScheduler* sched = scheduler_.load(); sched != nullptr) {
    const int64_t started = sched->CycleStartedMs();
    const int64_t bound = StuckCycleBoundMs(cfg.detection);
    if (started > 0 && MonotonicMs() - started > bound) {
      problems.push_back("detection cycle stuck: running for " +
                         std::to_string((MonotonicMs() - started) / 1000) + " s, over the bound of " +
                         std::to_string(bound / 1000) +
                         " s (max(detection.rule_timeout_secs + 10 s, 2 x detection.interval_secs))");
    }
  }
  for (const auto& [what, w] : {std::pair<const char*, WritePathState>{"alert record", record_writes_.Get()},
                                {"delivery record", delivery.store_writes}}) {
    if (w.failing) {
      problems.push_back(std::string(what) + " writes failing (" + std::to_string(w.failed) +
                         " failed attempts): " + w.last_error);
    }
  }
  if (delivery.unrecorded > 0)
    agent_detail += ", " + std::to_string(delivery.unrecorded) + " alerts unrecorded";
  std::string problem_text;
  for (const auto& p : problems) problem_text += (problem_text.empty() ? "" : "; ") + p;
  r.components.push_back({"agent", problems.empty() ? "ok" : "unhealthy",
                          problems.empty() ? agent_detail : problem_text + " (" + agent_detail + ")"});
  r.components.push_back(health::CheckDatabase(cfg.database));
  std::set<std::string> seen;
  for (const auto& s : delivery.sinks) {
    seen.insert(s.name);
    const std::string state(alerting::CircuitStateName(s.circuit));
    r.components.push_back({"sink:" + s.name, s.circuit == alerting::CircuitState::kOpen ? "unhealthy" : "ok",
                            "circuit " + state + "; delivered " + std::to_string(s.delivered) + ", failed " +
                                std::to_string(s.failed) + ", dead-lettered " +
                                std::to_string(s.dead_lettered) + ", pending " + std::to_string(s.pending)});
  }
  for (const auto& s : cfg.alerting.sinks) {
    if (s.enabled && !seen.count(s.name)) {
      r.components.push_back({"sink:" + s.name, "unknown", "not yet reported by the delivery engine"});
    }
  }
  r.components.push_back(health::CheckAuditTail(cfg.database));
  return r;
}

nlohmann::json AgentOps::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json j;
  j["uptime_ms"] = MonotonicMs() - started_ms_;
  j["detection_cycles"] = cycles_;
  j["detection_cycles_failed"] = cycles_failed_;
  j["last_cycle_duration_ms"] = last_cycle_duration_ms_;
  uint64_t ok = 0, failed = 0;
  for (const auto& [_, n] : rule_runs_ok_) ok += n;
  for (const auto& [_, n] : rule_runs_failed_) failed += n;
  j["rule_runs"] = ok;
  j["rule_runs_failed"] = failed;
  j["alerts_created"] = alerts_created_;
  j["scan_now_requests"] = scan_now_requests_.load();
  j["reload_requests"] = reload_requests_.load();
  j["collector_pid"] = collector_pid_;
  j["collector_restarts"] = collector_restarts_;
  nlohmann::json sinks = nlohmann::json::object();
  for (const auto& s : delivery_.sinks) {
    sinks[s.name] = {{"delivered", s.delivered},
                     {"failed", s.failed},
                     {"skipped", s.skipped},
                     {"unknown", s.unknown},
                     {"dead_lettered", s.dead_lettered},
                     {"pending", s.pending},
                     {"circuit", std::string(alerting::CircuitStateName(s.circuit))}};
  }
  j["sinks"] = sinks;
  j["dlq_size"] = delivery_.dlq_size;
  j["alerts_unrecorded"] = delivery_.unrecorded;
  j["alerts_unrecorded_suppressed"] = delivery_.unrecorded_suppressed;
  j["alert_record_write_failures"] = record_writes_.Get().failed;
  j["delivery_record_write_failures"] = delivery_.store_writes.failed;
  const RuleScheduler* sched = scheduler_.load();
  const int64_t started = sched != nullptr ? sched->CycleStartedMs() : 0;
  j["detection_cycle_running_ms"] = started > 0 ? MonotonicMs() - started : 0;
  j["audit_entries_dropped_total"] = audit::AuditEntriesDroppedTotal();
  return j;
}

void AgentOps::AddProcmondMetrics(telemetry::MetricsBuilder& b, const nlohmann::json& s) {
  auto num = [&](const nlohmann::json& o, const char* k) -> double {
    auto it = o.find(k);
    return it != o.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  b.Counter("scans_total", "Scans completed by procmond since it started.", num(s, "scans_completed"));
  b.Counter("scans_failed_total", "Scans that failed in procmond since it started.", num(s, "scans_failed"));
  b.Counter("scan_duration_seconds_total", "Time procmond spent scanning since it started.",
            num(s, "scan_duration_ms_total") / 1000.0);
  b.Counter("hash_cache_hits_total", "Executable hash cache hits since procmond started.",
            num(s, "hash_cache_hits_total"));
  b.Counter("hash_cache_misses_total",
            "Executable hash cache misses (executables hashed) since procmond started.",
            num(s, "hash_cache_misses_total"));
  static const std::set<std::string> kMapped = {"scans_completed", "scans_failed", "scan_duration_ms_total",
                                                "hash_cache_hits_total", "hash_cache_misses_total"};
  static const std::set<std::string> kMappedRealtime = {
      "received_exec", "received_fork", "received_exit", "stored_exec", "stored_fork", "stored_exit",
      "lost_kernel",   "lost_queue",    "lost_write",    "lost_total",  "source"};
  // Any other numeric field: a gauge (a counter when it ends in _total),
  // milliseconds turned into the base unit seconds.
  auto generic = [&](const std::string& prefix, const std::string& key, const nlohmann::json& v) {
    std::string name = MetricKey(key);
    double value = v.get<double>();
    auto replace_suffix = [&](std::string_view from, std::string_view to) {
      if (!name.ends_with(from)) return false;
      name = name.substr(0, name.size() - from.size()) + std::string(to);
      value /= 1000.0;
      return true;
    };
    replace_suffix("_at_ms", "_timestamp_seconds") || replace_suffix("_ms_total", "_seconds_total") ||
        replace_suffix("_ms", "_seconds");
    name = prefix + name;
    if (name.ends_with("_total")) {
      b.Counter(name, "procmond stats field " + key + ".", value);
    } else {
      b.Gauge(name, "procmond stats field " + key + ".", value);
    }
  };
  for (const auto& [k, v] : s.items()) {
    if (v.is_number() && !kMapped.count(k)) generic("procmond_", k, v);
  }
  if (auto src = s.find("scan_source"); src != s.end() && src->is_string()) {
    b.Gauge("scan_source_info", "How procmond's scans sample processes (1 for the active way).", 1,
            {{"source", src->get<std::string>()}});
  }
  auto rt = s.find("realtime");
  if (rt != s.end() && rt->is_object()) {
    for (const char* t : {"exec", "fork", "exit"}) {
      b.Counter("realtime_events_received_total", "Real-time process events received from the kernel.",
                num(*rt, (std::string("received_") + t).c_str()), {{"type", t}});
    }
    for (const char* t : {"exec", "fork", "exit"}) {
      b.Counter("realtime_events_stored_total", "Real-time process events written to the store.",
                num(*rt, (std::string("stored_") + t).c_str()), {{"type", t}});
    }
    for (const char* r : {"kernel", "queue", "write"}) {
      b.Counter("realtime_events_lost_total", "Real-time process events lost, by where they were lost.",
                num(*rt, (std::string("lost_") + r).c_str()), {{"reason", r}});
    }
    if (rt->contains("source") && (*rt)["source"].is_string()) {
      b.Gauge("realtime_source_info", "The real-time event source procmond uses (1 for the active one).", 1,
              {{"source", (*rt)["source"].get<std::string>()}});
    }
    for (const auto& [k, v] : rt->items()) {
      if (v.is_number() && !kMappedRealtime.count(k)) generic("procmond_realtime_", k, v);
    }
  }
}

void AgentOps::AddDatabaseMetrics(telemetry::MetricsBuilder& b, const config::Config& cfg,
                                  bool collector_up) {
  auto db =
      storage::OpenStore(storage::DatabaseKind::kEvents,
                         {cfg.database.path, storage::OpenMode::kReadOnly, cfg.database.busy_timeout_ms});
  b.Gauge("database_up", "1 when the event store opens read-only with a current schema.", db.ok() ? 1 : 0);
  if (!db.ok()) return;
  auto q = [&](const char* sql) -> std::optional<int64_t> {
    auto v = (*db)->QueryInt(sql);
    return v.ok() ? *v : std::nullopt;
  };
  b.Gauge(
      "scans_stored", "Completed scans kept in the event store (scan_metadata).",
      static_cast<double>(q("SELECT COUNT(*) FROM scan_metadata WHERE status = 'completed'").value_or(0)));
  auto st = (*db)->Prepare(
      "SELECT completed_at_ms, duration_ms, process_count, hash_cache_hits, hash_cache_misses FROM "
      "scan_metadata"
      " WHERE status = 'completed' ORDER BY scan_id DESC LIMIT 1");
  if (st.ok()) {
    auto row = st->Step();
    if (row.ok() && *row) {
      b.Gauge("last_scan_timestamp_seconds", "When the latest completed scan finished (Unix time).",
              static_cast<double>(st->ColumnInt(0)) / 1000.0);
      b.Gauge("last_scan_duration_seconds", "Duration of the latest completed scan.",
              static_cast<double>(st->ColumnInt(1)) / 1000.0);
      b.Gauge("processes", "Processes seen by the latest completed scan.",
              static_cast<double>(st->ColumnInt(2)));
      b.Gauge("last_scan_hash_cache_hits", "Hash cache hits in the latest completed scan.",
              static_cast<double>(st->ColumnInt(3)));
      b.Gauge("last_scan_hash_cache_misses", "Hash cache misses in the latest completed scan.",
              static_cast<double>(st->ColumnInt(4)));
    }
  }
  std::map<std::string, double> by_sev;
  for (const char* s : kSeverities) by_sev[s] = 0;
  if (auto sev = (*db)->Prepare("SELECT severity, COUNT(*) FROM alerts GROUP BY severity"); sev.ok()) {
    while (true) {
      auto row = sev->Step();
      if (!row.ok() || !*row) break;
      by_sev[sev->ColumnText(0)] = static_cast<double>(sev->ColumnInt(1));
    }
  }
  for (const auto& [s, n] : by_sev) {
    b.Gauge("alerts_stored", "Alerts kept in the event store, by severity.", n, {{"severity", s}});
  }
  if (auto d = (*db)->Prepare("SELECT sink_name, status, COUNT(*) FROM alert_deliveries GROUP BY 1, 2");
      d.ok()) {
    while (true) {
      auto row = d->Step();
      if (!row.ok() || !*row) break;
      b.Gauge(
          "delivery_attempts_stored", "Delivery attempts recorded in alert_deliveries, by sink and status.",
          static_cast<double>(d->ColumnInt(2)), {{"sink", d->ColumnText(0)}, {"status", d->ColumnText(1)}});
    }
  }
  b.Gauge("dlq_size", "Dead letters waiting in dead_letter_queue.",
          static_cast<double>(q("SELECT COUNT(*) FROM dead_letter_queue").value_or(0)));
  (void)collector_up;
}

std::string AgentOps::Metrics() {
  config::Config cfg;
  alerting::DeliveryMetrics delivery;
  telemetry::MetricsBuilder b;
  auto stats = AskProcmond("stats");
  const bool collector_up = stats.ok() && stats->value("ok", false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cfg = cfg_;
    delivery = delivery_;
    b.Gauge("build_info", "Version of the running agent.", 1, {{"version", version_}});
    b.Gauge("agent_uptime_seconds", "Seconds since the agent started.",
            static_cast<double>(MonotonicMs() - started_ms_) / 1000.0);
    b.Gauge("collector_up", "1 when procmond answers on its control socket.", collector_up ? 1 : 0);
    b.Counter("audit_entries_dropped_total",
              "Audit entries the agent dropped because its ledger backlog was full (each gap is also "
              "recorded in the ledger as audit_entries_dropped).",
              static_cast<double>(audit::AuditEntriesDroppedTotal()));
    if (supervised_) {
      b.Counter("collector_restarts_total", "Times the agent restarted procmond.",
                static_cast<double>(collector_restarts_));
    }
    b.Counter("detection_cycles_total", "Detection cycles run, by outcome.", static_cast<double>(cycles_),
              {{"outcome", "ok"}});
    b.Counter("detection_cycles_total", "Detection cycles run, by outcome.",
              static_cast<double>(cycles_failed_), {{"outcome", "failed"}});
    b.Histogram("detection_cycle_duration_seconds", "Duration of detection cycles.",
                cycle_duration_.Snapshot());
    for (const auto& [rule, n] : rule_runs_ok_) {
      b.Counter("rule_runs_total", "Rule runs, by rule and outcome.", static_cast<double>(n),
                {{"rule", rule}, {"outcome", "ok"}});
    }
    for (const auto& [rule, n] : rule_runs_failed_) {
      b.Counter("rule_runs_total", "Rule runs, by rule and outcome.", static_cast<double>(n),
                {{"rule", rule}, {"outcome", "failed"}});
    }
    b.Histogram("rule_duration_seconds", "Duration of single rule runs.", rule_duration_.Snapshot());
    const RuleScheduler* sched = scheduler_.load();
    const int64_t started = sched != nullptr ? sched->CycleStartedMs() : 0;
    b.Gauge("detection_cycle_running_seconds", "How long the running detection cycle has run (0: none runs).",
            started > 0 ? static_cast<double>(MonotonicMs() - started) / 1000.0 : 0.0);
    b.Gauge("detection_cycle_stuck_bound_seconds",
            "A detection cycle running longer than this makes health unhealthy.",
            static_cast<double>(StuckCycleBoundMs(cfg_.detection)) / 1000.0);
    const WritePathState records = record_writes_.Get();
    const char* wf_help = "Failed write attempts to the event store, by what was written.";
    b.Counter("store_write_failures_total", wf_help, static_cast<double>(records.failed),
              {{"path", "alert_records"}});
    b.Counter("store_write_failures_total", wf_help, static_cast<double>(delivery_.store_writes.failed),
              {{"path", "delivery_records"}});
    const char* wg_help = "1 while the most recent write of this kind failed (health is unhealthy).";
    b.Gauge("store_writes_failing", wg_help, records.failing ? 1 : 0, {{"path", "alert_records"}});
    b.Gauge("store_writes_failing", wg_help, delivery_.store_writes.failing ? 1 : 0,
            {{"path", "delivery_records"}});
    b.Counter("alerts_unrecorded_total",
              "Alerts the event store could not record, delivered from memory to the sinks.",
              static_cast<double>(delivery_.unrecorded));
    b.Counter("alerts_unrecorded_suppressed_total",
              "Unrecorded alerts suppressed as repeats of one within the dedup window.",
              static_cast<double>(delivery_.unrecorded_suppressed));
    for (const char* s : kSeverities) {
      auto it = alerts_created_.find(s);
      b.Counter("alerts_created_total", "Alerts created since the agent started, by severity.",
                it == alerts_created_.end() ? 0.0 : static_cast<double>(it->second), {{"severity", s}});
    }
  }
  for (const auto& s : delivery.sinks) {
    const char* help = "Delivery attempts since the agent started, by sink and outcome.";
    b.Counter("deliveries_total", help, static_cast<double>(s.delivered),
              {{"sink", s.name}, {"outcome", "success"}});
    b.Counter("deliveries_total", help, static_cast<double>(s.failed),
              {{"sink", s.name}, {"outcome", "failure"}});
    b.Counter("deliveries_total", help, static_cast<double>(s.skipped),
              {{"sink", s.name}, {"outcome", "skipped"}});
    b.Counter("deliveries_total", help, static_cast<double>(s.unknown),
              {{"sink", s.name}, {"outcome", "unknown"}});
  }
  for (const auto& s : delivery.sinks) {
    const char* help =
        "Deliveries of unrecorded alerts (one attempt each, from memory), by sink and outcome.";
    b.Counter("unrecorded_deliveries_total", help, static_cast<double>(s.unrecorded_delivered),
              {{"sink", s.name}, {"outcome", "success"}});
    b.Counter("unrecorded_deliveries_total", help, static_cast<double>(s.unrecorded_failed),
              {{"sink", s.name}, {"outcome", "failure"}});
  }
  for (const auto& s : delivery.sinks) {
    b.Counter("dead_letters_total", "Deliveries that gave up and went to the dead-letter queue, by sink.",
              static_cast<double>(s.dead_lettered), {{"sink", s.name}});
  }
  for (const auto& s : delivery.sinks) {
    b.Gauge("delivery_pending", "Deliveries queued for a sink.", static_cast<double>(s.pending),
            {{"sink", s.name}});
  }
  for (const auto& s : delivery.sinks) {
    for (auto st : {alerting::CircuitState::kClosed, alerting::CircuitState::kOpen,
                    alerting::CircuitState::kHalfOpen}) {
      b.Gauge("sink_circuit_state", "Circuit breaker state per sink (1 for the current state).",
              s.circuit == st ? 1 : 0,
              {{"sink", s.name}, {"state", std::string(alerting::CircuitStateName(st))}});
    }
  }
  if (collector_up) AddProcmondMetrics(b, (*stats)["result"]);
  AddDatabaseMetrics(b, cfg, collector_up);
  return b.Render();
}

}  // namespace sentinel::agent
