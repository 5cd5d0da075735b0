#include "procmond/platform/windows/control_pipe.h"

#include <utility>

#include "sentinel/base/win32.h"

namespace sentinel::procmond {

Result<std::unique_ptr<ControlPipe>> ControlPipe::Listen(const std::string& name, ScanStats* stats,
                                                         ControlEvents events) {
  ipc::PipeServerOptions o;
  o.pipe_name = name;
  o.component = "procmond";
  ScanStats* s = stats;
  ipc::Handlers handlers;
  handlers["health"] = [s](const ipc::Request&) -> Result<nlohmann::json> {
    return HealthJson(*s, static_cast<int64_t>(::GetCurrentProcessId()));
  };
  handlers["stats"] = [s](const ipc::Request&) -> Result<nlohmann::json> {
    nlohmann::json j = s->ToJson();
    j["platform"] = "windows";
    return j;
  };
  handlers["scan-now"] = [s, events](const ipc::Request&) -> Result<nlohmann::json> {
    s->scan_now_requests++;
    if (!::SetEvent(events.scan_now)) return Win32Error(::GetLastError(), "waking the scan loop");
    return nlohmann::json{{"queued", true}};
  };
  handlers["reload"] = [s, events](const ipc::Request&) -> Result<nlohmann::json> {
    s->reload_requests++;
    if (!::SetEvent(events.reload)) return Win32Error(::GetLastError(), "requesting a reload");
    return nlohmann::json{{"queued", true}};
  };
  std::unique_ptr<ControlPipe> pipe(new ControlPipe());
  ASSIGN_OR_RETURN(pipe->server_, ipc::PipeServer::Listen(std::move(o), std::move(handlers)));
  return pipe;
}

}  // namespace sentinel::procmond
