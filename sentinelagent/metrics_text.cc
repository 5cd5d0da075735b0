#include "sentinelagent/metrics_text.h"

#include <set>
#include <string_view>

#include "sentinel/telemetry/metrics.h"

namespace sentinel::agent {
namespace {

using telemetry::MetricsBuilder;

const char* const kSeverities[] = {"low", "medium", "high", "critical"};

double Seconds(int64_t ms) {
  return static_cast<double>(ms) / 1000.0;
}

// A stats key as a metric-name fragment: [a-z0-9_] only.
std::string MetricKey(const std::string& key) {
  std::string out;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : '_';
  }
  return out;
}

double Number(const nlohmann::json& o, const std::string& key) {
  auto it = o.find(key);
  return it != o.end() && it->is_number() ? it->get<double>() : 0.0;
}

// A procmond stats field nobody mapped by hand: a gauge (a counter when it
// ends in _total), milliseconds turned into the base unit seconds.
void AddGenericField(MetricsBuilder& b, const std::string& prefix, const std::string& key, double value) {
  std::string name = MetricKey(key);
  for (auto [from, to] : {std::pair<std::string_view, std::string_view>{"_at_ms", "_timestamp_seconds"},
                          {"_ms_total", "_seconds_total"},
                          {"_ms", "_seconds"}}) {
    if (!name.ends_with(from)) continue;
    name = name.substr(0, name.size() - from.size()) + std::string(to);
    value /= 1000.0;
    break;
  }
  name = prefix + name;
  const std::string help = "procmond stats field " + key + ".";
  if (name.ends_with("_total")) {
    b.Counter(name, help, value);
  } else {
    b.Gauge(name, help, value);
  }
}

void AddGenericFields(MetricsBuilder& b, const std::string& prefix, const nlohmann::json& o,
                      const std::set<std::string>& mapped) {
  for (const auto& [k, v] : o.items()) {
    if (v.is_number() && !mapped.count(k)) AddGenericField(b, prefix, k, v.get<double>());
  }
}

void AddRealtimeMetrics(MetricsBuilder& b, const nlohmann::json& rt) {
  for (const char* t : {"exec", "fork", "exit"}) {
    b.Counter("realtime_events_received_total", "Real-time process events received from the kernel.",
              Number(rt, std::string("received_") + t), {{"type", t}});
  }
  for (const char* t : {"exec", "fork", "exit"}) {
    b.Counter("realtime_events_stored_total", "Real-time process events written to the store.",
              Number(rt, std::string("stored_") + t), {{"type", t}});
  }
  for (const char* r : {"kernel", "queue", "write"}) {
    b.Counter("realtime_events_lost_total", "Real-time process events lost, by where they were lost.",
              Number(rt, std::string("lost_") + r), {{"reason", r}});
  }
  if (auto src = rt.find("source"); src != rt.end() && src->is_string()) {
    b.Gauge("realtime_source_info", "The real-time event source procmond uses (1 for the active one).", 1,
            {{"source", src->get<std::string>()}});
  }
  static const std::set<std::string> kMapped = {
      "received_exec", "received_fork", "received_exit", "stored_exec", "stored_fork", "stored_exit",
      "lost_kernel",   "lost_queue",    "lost_write",    "lost_total",  "source"};
  AddGenericFields(b, "procmond_realtime_", rt, kMapped);
}

void AddProcmondMetrics(MetricsBuilder& b, const nlohmann::json& s) {
  b.Counter("scans_total", "Scans completed by procmond since it started.", Number(s, "scans_completed"));
  b.Counter("scans_failed_total", "Scans that failed in procmond since it started.",
            Number(s, "scans_failed"));
  b.Counter("scan_duration_seconds_total", "Time procmond spent scanning since it started.",
            Number(s, "scan_duration_ms_total") / 1000.0);
  b.Counter("hash_cache_hits_total", "Executable hash cache hits since procmond started.",
            Number(s, "hash_cache_hits_total"));
  b.Counter("hash_cache_misses_total",
            "Executable hash cache misses (executables hashed) since procmond started.",
            Number(s, "hash_cache_misses_total"));
  static const std::set<std::string> kMapped = {"scans_completed", "scans_failed", "scan_duration_ms_total",
                                                "hash_cache_hits_total", "hash_cache_misses_total"};
  AddGenericFields(b, "procmond_", s, kMapped);
  if (auto src = s.find("scan_source"); src != s.end() && src->is_string()) {
    b.Gauge("scan_source_info", "How procmond's scans sample processes (1 for the active way).", 1,
            {{"source", src->get<std::string>()}});
  }
  if (auto rt = s.find("realtime"); rt != s.end() && rt->is_object()) AddRealtimeMetrics(b, *rt);
}

void AddStoreMetrics(MetricsBuilder& b, const std::optional<StoreStats>& store) {
  b.Gauge("database_up", "1 when the event store opens read-only with a current schema.", store ? 1 : 0);
  if (!store) return;
  b.Gauge("scans_stored", "Completed scans kept in the event store (scan_metadata).",
          static_cast<double>(store->scans_stored));
  if (const auto& last = store->last_scan) {
    b.Gauge("last_scan_timestamp_seconds", "When the latest completed scan finished (Unix time).",
            Seconds(last->completed_at_ms));
    b.Gauge("last_scan_duration_seconds", "Duration of the latest completed scan.",
            Seconds(last->duration_ms));
    b.Gauge("processes", "Processes seen by the latest completed scan.",
            static_cast<double>(last->process_count));
    b.Gauge("last_scan_hash_cache_hits", "Hash cache hits in the latest completed scan.",
            static_cast<double>(last->hash_cache_hits));
    b.Gauge("last_scan_hash_cache_misses", "Hash cache misses in the latest completed scan.",
            static_cast<double>(last->hash_cache_misses));
  }
  std::map<std::string, int64_t> by_sev;
  for (const char* s : kSeverities) by_sev[s] = 0;
  for (const auto& [s, n] : store->alerts_by_severity) by_sev[s] = n;
  for (const auto& [s, n] : by_sev) {
    b.Gauge("alerts_stored", "Alerts kept in the event store, by severity.", static_cast<double>(n),
            {{"severity", s}});
  }
  for (const auto& d : store->delivery_attempts) {
    b.Gauge("delivery_attempts_stored", "Delivery attempts recorded in alert_deliveries, by sink and status.",
            static_cast<double>(d.count), {{"sink", d.sink}, {"status", d.status}});
  }
  b.Gauge("dlq_size", "Dead letters waiting in dead_letter_queue.", static_cast<double>(store->dlq_size));
}

void AddRealtimeDetectionMetrics(MetricsBuilder& b, const RealtimeStats& r) {
  b.Gauge("realtime_detection_connected",
          "1 while the real-time detector is subscribed to procmond's event notices.", r.connected ? 1 : 0);
  b.Counter("realtime_detection_batches_total", "Batches of exec events evaluated by the on: exec rules.",
            static_cast<double>(r.batches));
  b.Counter("realtime_detection_exec_events_total", "Exec events evaluated in real-time batches.",
            static_cast<double>(r.exec_events));
  b.Counter("realtime_detection_rule_failures_total", "On: exec rule runs that failed on a batch.",
            static_cast<double>(r.rule_failures));
  b.Counter("realtime_detection_batches_skipped_total", "Batches a failing on: exec rule gave up on.",
            static_cast<double>(r.skipped_batches));
  b.Gauge("realtime_detection_cursor_event_id",
          "Lowest process_events id every enabled on: exec rule has evaluated.",
          static_cast<double>(r.cursor));
  b.Gauge("realtime_detection_lag_events",
          "process_events ids stored but not yet evaluated by every on: exec rule.",
          static_cast<double>(r.lag_events()));
}

void AddAgentMetrics(MetricsBuilder& b, const MetricsInput& in) {
  const AgentStatsSnapshot& s = in.stats;
  b.Gauge("build_info", "Version of the running agent.", 1, {{"version", in.version}});
  b.Gauge("agent_uptime_seconds", "Seconds since the agent started.", Seconds(in.uptime_ms));
  b.Gauge("collector_up", "1 when procmond answers on its control socket.", in.procmond_stats ? 1 : 0);
  b.Counter("audit_entries_dropped_total",
            "Audit entries the agent dropped because its ledger backlog was full (each gap is also "
            "recorded in the ledger as audit_entries_dropped).",
            static_cast<double>(in.audit_entries_dropped));
  if (s.supervised) {
    b.Counter("collector_restarts_total", "Times the agent restarted procmond.",
              static_cast<double>(s.collector_restarts));
  }
  b.Counter("detection_cycles_total", "Detection cycles run, by outcome.", static_cast<double>(s.cycles),
            {{"outcome", "ok"}});
  b.Counter("detection_cycles_total", "Detection cycles run, by outcome.",
            static_cast<double>(s.cycles_failed), {{"outcome", "failed"}});
  b.Histogram("detection_cycle_duration_seconds", "Duration of detection cycles.", s.cycle_duration);
  for (const auto& [outcome, runs] : {std::pair{"ok", &s.rule_runs_ok}, {"failed", &s.rule_runs_failed}}) {
    for (const auto& [rule, n] : *runs) {
      b.Counter("rule_runs_total", "Rule runs, by rule and outcome.", static_cast<double>(n),
                {{"rule", rule}, {"outcome", outcome}});
    }
  }
  b.Histogram("rule_duration_seconds", "Duration of single rule runs.", s.rule_duration);
  b.Gauge("detection_cycle_running_seconds", "How long the running detection cycle has run (0: none runs).",
          Seconds(in.cycle_running_ms));
  b.Gauge("detection_cycle_stuck_bound_seconds",
          "A detection cycle running longer than this makes health unhealthy.",
          Seconds(in.stuck_cycle_bound_ms));
  AddRealtimeDetectionMetrics(b, s.realtime);
}

void AddRecordMetrics(MetricsBuilder& b, const AgentStatsSnapshot& s) {
  const char* wf_help = "Failed write attempts to the event store, by what was written.";
  b.Counter("store_write_failures_total", wf_help, static_cast<double>(s.record_writes.failed),
            {{"path", "alert_records"}});
  b.Counter("store_write_failures_total", wf_help, static_cast<double>(s.delivery.store_writes.failed),
            {{"path", "delivery_records"}});
  const char* wg_help = "1 while the most recent write of this kind failed (health is unhealthy).";
  b.Gauge("store_writes_failing", wg_help, s.record_writes.failing ? 1 : 0, {{"path", "alert_records"}});
  b.Gauge("store_writes_failing", wg_help, s.delivery.store_writes.failing ? 1 : 0,
          {{"path", "delivery_records"}});
  b.Counter("alerts_unrecorded_total",
            "Alerts the event store could not record, delivered from memory to the sinks.",
            static_cast<double>(s.delivery.unrecorded));
  b.Counter("alerts_unrecorded_suppressed_total",
            "Unrecorded alerts suppressed as repeats of one within the dedup window.",
            static_cast<double>(s.delivery.unrecorded_suppressed));
  for (const char* sev : kSeverities) {
    auto it = s.alerts_created.find(sev);
    b.Counter("alerts_created_total", "Alerts created since the agent started, by severity.",
              it == s.alerts_created.end() ? 0.0 : static_cast<double>(it->second), {{"severity", sev}});
  }
}

void AddDeliveryMetrics(MetricsBuilder& b, const alerting::DeliveryMetrics& delivery) {
  const char* help = "Delivery attempts since the agent started, by sink and outcome.";
  for (const auto& s : delivery.sinks) {
    for (const auto& [outcome, n] : {std::pair{"success", s.delivered},
                                     {"failure", s.failed},
                                     {"skipped", s.skipped},
                                     {"unknown", s.unknown}}) {
      b.Counter("deliveries_total", help, static_cast<double>(n), {{"sink", s.name}, {"outcome", outcome}});
    }
  }
  const char* unrecorded_help =
      "Deliveries of unrecorded alerts (one attempt each, from memory), by sink and outcome.";
  for (const auto& s : delivery.sinks) {
    for (const auto& [outcome, n] :
         {std::pair{"success", s.unrecorded_delivered}, {"failure", s.unrecorded_failed}}) {
      b.Counter("unrecorded_deliveries_total", unrecorded_help, static_cast<double>(n),
                {{"sink", s.name}, {"outcome", outcome}});
    }
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
}

}  // namespace

std::string RenderMetrics(const MetricsInput& in) {
  MetricsBuilder b;
  AddAgentMetrics(b, in);
  AddRecordMetrics(b, in.stats);
  AddDeliveryMetrics(b, in.stats.delivery);
  if (in.procmond_stats) AddProcmondMetrics(b, *in.procmond_stats);
  AddStoreMetrics(b, in.store);
  return b.Render();
}

}  // namespace sentinel::agent
