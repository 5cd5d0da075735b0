#include "procmond/scan_stats.h"

#include <string>
#include <utility>

#include "sentinel/audit/trail.h"
#include "sentinel/base/time.h"
#include "sentinel/base/version.h"

namespace sentinel::procmond {

void ScanStats::RecordWritten(const models::ScanRecord& scan, int64_t scan_id, int64_t write_ms) {
  const int64_t duration = scan.completed_at_ms - scan.started_at_ms;
  last_scan_id = scan_id;
  last_scan_completed_at_ms = scan.completed_at_ms;
  last_scan_duration_ms = duration;
  last_write_ms = write_ms;
  last_processes = static_cast<int64_t>(scan.processes.size());
  last_errors = scan.errors;
  scan_duration_ms_total += duration;
  hash_cache_hits_total += scan.hash_cache_hits;
  hash_cache_misses_total += scan.hash_cache_misses;
  scans_completed++;
}

nlohmann::json ScanStats::ToJson() const {
  nlohmann::json j;
  j["uptime_ms"] = MonotonicMs() - started_at_ms.load();
  j["scans_completed"] = scans_completed.load();
  j["scans_failed"] = scans_failed.load();
  j["last_scan_id"] = last_scan_id.load();
  j["last_scan_completed_at_ms"] = last_scan_completed_at_ms.load();
  j["last_scan_duration_ms"] = last_scan_duration_ms.load();
  j["last_write_ms"] = last_write_ms.load();
  j["last_scan_processes"] = last_processes.load();
  j["last_scan_errors"] = last_errors.load();
  j["scan_duration_ms_total"] = scan_duration_ms_total.load();
  j["hash_cache_hits_total"] = hash_cache_hits_total.load();
  j["hash_cache_misses_total"] = hash_cache_misses_total.load();
  j["scan_now_requests"] = scan_now_requests.load();
  j["reload_requests"] = reload_requests.load();
  j["scan_source"] = scan_source_ebpf.load() ? "ebpf" : "proc";
  const WritePathState scans = scan_writes.Get(), events = event_writes.Get();
  j["scan_write_failures_total"] = scans.failed;
  j["scan_writes_failing"] = scans.failing ? 1 : 0;
  j["scans_lost_total"] = scans_lost.load();
  j["event_batch_write_failures_total"] = events.failed;
  j["event_writes_failing"] = events.failing ? 1 : 0;
  j["audit_entries_dropped_total"] = audit::AuditEntriesDroppedTotal();
  return j;
}

nlohmann::json HealthJson(const ScanStats& stats, int64_t pid) {
  nlohmann::json problems = nlohmann::json::array();
  for (const auto& [what, path] :
       {std::pair<const char*, const WriteHealth*>{"scan batch", &stats.scan_writes},
        {"event batch", &stats.event_writes}}) {
    const WritePathState w = path->Get();
    if (w.failing) {
      problems.push_back(std::string(what) + " writes failing (" + std::to_string(w.failed) +
                         " failed attempts): " + w.last_error);
    }
  }
  return nlohmann::json{{"status", problems.empty() ? "ok" : "unhealthy"},
                        {"problems", problems},
                        {"component", "procmond"},
                        {"version", kVersion},
                        {"pid", pid},
                        {"uptime_ms", MonotonicMs() - stats.started_at_ms.load()},
                        {"scans_completed", stats.scans_completed.load()},
                        {"last_scan_completed_at_ms", stats.last_scan_completed_at_ms.load()}};
}

}  // namespace sentinel::procmond
