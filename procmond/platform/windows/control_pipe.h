// procmond's control channel on Windows (SPEC §15): the named pipe
// \\.\pipe\sentineld-procmond (sentinel/ipc/pipe_server.h) answering the
// commands of the Linux socket with the same frames and replies: health,
// stats, scan-now and reload. scan-now and reload never touch the collector
// from the pipe thread: they set events the service's loop waits on between
// scans (WindowsService), as SIGUSR1 and SIGHUP do on Linux.
//
// Thread-safety: Listen/Start/Stop from the service's main thread.
#pragma once

#include <windows.h>

#include <memory>
#include <string>

#include "procmond/scan_stats.h"
#include "sentinel/base/status.h"
#include "sentinel/ipc/pipe_server.h"

namespace sentinel::procmond {

// Events the pipe sets for the service loop (auto-reset; owned by the service).
struct ControlEvents {
  HANDLE scan_now = nullptr;
  HANDLE reload = nullptr;
};

class ControlPipe {
 public:
  // Creates the pipe `name` (ipc::kProcmondPipe unless a test names another).
  // Errors as ipc::PipeServer::Listen: AlreadyExists when another process holds it.
  static Result<std::unique_ptr<ControlPipe>> Listen(const std::string& name, ScanStats* stats,
                                                     ControlEvents events);
  Status Start() { return server_->Start(); }
  void Stop() { server_->Stop(); }
  const std::string& path() const { return server_->path(); }

 private:
  std::unique_ptr<ipc::PipeServer> server_;
};

}  // namespace sentinel::procmond
