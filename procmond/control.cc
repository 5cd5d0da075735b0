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
    nlohmann::json j = HealthJson(*s, getpid());
    j["uid"] = getuid();
    return j;
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
