// procmond's control socket (SPEC §10, docs/operations.md): procmond.sock
// under ipc.socket_dir, served on its own thread.
//
// Commands: subscribe_events (the connection stays open and receives an
// "events_written" notice after each committed event batch), health (pid, uptime, last scan; status
// "unhealthy" with the problems while the latest scan or event batch write failed), stats (scan counters,
// hash cache, real-time pipeline counters — every value numeric unless noted), scan-now and reload. scan-now
// and reload never touch the collector from the socket thread: they send SIGUSR1 / SIGHUP to procmond itself,
// which the main loop (blocked on sigtimedwait) takes between scans exactly like an operator's signal.
//
// The socket is bound while procmond is still root, before the privilege
// drop; ChownPaths() names what the drop must hand to the collector's user
// (the socket file, and the directory when procmond created it) so the
// dropped process can remove its socket at exit.
//
// Thread-safety: Listen/Start/Stop from the main thread (ScanStats: scan_stats.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "procmond/scan_stats.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/ipc/control_socket.h"

namespace sentinel::procmond {

// SIGUSR1 asks the main loop for a scan now (add it to the blocked set).
inline constexpr int kScanNowSignal = 10;  // SIGUSR1 on Linux

class ProcmondControl {
 public:
  // Binds procmond.sock. Peers allowed: root, procmond's uid (after the
  // drop) and the uid of privileges.user. Errors as ControlServer::Listen.
  static Result<std::unique_ptr<ProcmondControl>> Listen(const config::Config& cfg, ScanStats* stats);
  Status Start() { return server_->Start(); }
  void Stop() { server_->Stop(); }
  std::vector<std::string> ChownPaths() const;
  // After each committed event batch (thread-safe): every subscriber of
  // ipc::kSubscribeEvents gets {"event": "events_written", "last_id": N, "rows": R}.
  void PublishEventsWritten(int64_t last_id, int64_t rows);
  const std::string& path() const { return server_->path(); }

 private:
  explicit ProcmondControl(std::string socket_dir) : socket_dir_(std::move(socket_dir)) {}
  std::string socket_dir_;
  std::unique_ptr<ipc::ControlServer> server_;
};

}  // namespace sentinel::procmond
