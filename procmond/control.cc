#include "procmond/control.h"

#include <signal.h>
#include <unistd.h>

#include "procmond/privileges.h"
#include "procmond/realtime/realtime_source.h"
#include "sentinel/audit/trail.h"
#include "sentinel/base/time.h"
#include "sentinel/base/version.h"

namespace sentinel::procmond {

static_assert(kScanNowSignal == SIGUSR1);

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

namespace {

nlohmann::json RealtimeJson() {
  const RealtimeStats::Snapshot s = CurrentRealtimeStats().Get();
  return {{"source", s.source},
          {"received_exec", s.received_exec},
          {"received_fork", s.received_fork},
          {"received_exit", s.received_exit},
          {"stored_exec", s.stored_exec},
          {"stored_fork", s.stored_fork},
          {"stored_exit", s.stored_exit},
          {"lost_kernel", s.lost_kernel},
          {"lost_queue", s.lost_queue},
          {"lost_write", s.lost_write},
          {"lost_total", s.lost_total()},
          {"incomplete", s.incomplete},
          {"argv_truncated", s.argv_truncated},
          {"batches_written", s.batches_written},
          {"queued", s.queued}};
}

}  // namespace

Result<std::unique_ptr<ProcmondControl>> ProcmondControl::Listen(const config::Config& cfg,
                                                                 ScanStats* stats) {
  std::unique_ptr<ProcmondControl> c(new ProcmondControl(cfg.ipc.socket_dir));
  ipc::ServerOptions o;
  o.socket_dir = cfg.ipc.socket_dir;
  o.socket_name = ipc::kProcmondSocket;
  o.component = "procmond";
  o.subscribe_command = ipc::kSubscribeEvents;
  if (auto user = LookupUser(cfg.privileges.user); user.ok()) o.allowed_uids.insert(user->first);
  ScanStats* s = stats;
  std::map<std::string, ipc::Handler> handlers;
  handlers["health"] = [s](const ipc::Request&) -> Result<nlohmann::json> {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& [what, path] :
         {std::pair<const char*, const WriteHealth*>{"scan batch", &s->scan_writes},
          {"event batch", &s->event_writes}}) {
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
                          {"pid", getpid()},
                          {"uid", getuid()},
                          {"uptime_ms", MonotonicMs() - s->started_at_ms.load()},
                          {"scans_completed", s->scans_completed.load()},
                          {"last_scan_completed_at_ms", s->last_scan_completed_at_ms.load()}};
  };
  handlers["stats"] = [s](const ipc::Request&) -> Result<nlohmann::json> {
    nlohmann::json j = s->ToJson();
    j["realtime"] = RealtimeJson();
    return j;
  };
  handlers["scan-now"] = [s](const ipc::Request&) -> Result<nlohmann::json> {
    s->scan_now_requests++;
    if (::kill(::getpid(), SIGUSR1) != 0) return ErrnoError(errno, "waking the scan loop");
    return nlohmann::json{{"queued", true}};
  };
  handlers["reload"] = [s](const ipc::Request&) -> Result<nlohmann::json> {
    s->reload_requests++;
    if (::kill(::getpid(), SIGHUP) != 0) return ErrnoError(errno, "requesting a reload");
    return nlohmann::json{{"queued", true}};
  };
  ASSIGN_OR_RETURN(c->server_, ipc::ControlServer::Listen(o, std::move(handlers)));
  return c;
}

void ProcmondControl::PublishEventsWritten(int64_t last_id, int64_t rows) {
  server_->Publish({{"event", "events_written"}, {"last_id", last_id}, {"rows", rows}});
}

std::vector<std::string> ProcmondControl::ChownPaths() const {
  std::vector<std::string> out{server_->path()};
  if (server_->created_dir()) out.push_back(socket_dir_);
  return out;
}

}  // namespace sentinel::procmond
