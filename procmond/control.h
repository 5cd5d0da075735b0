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
// Thread-safety: ScanStats fields are atomics written by the writer thread
// and read by the socket thread; Listen/Start/Stop from the main thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/base/write_health.h"
#include "sentinel/config/config.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/models/process.h"

namespace sentinel::procmond {

// SIGUSR1 asks the main loop for a scan now (add it to the blocked set).
inline constexpr int kScanNowSignal = 10;  // SIGUSR1 on Linux

struct ScanStats {
  std::atomic<int64_t> started_at_ms{0};
  std::atomic<int64_t> scans_completed{0}, scans_failed{0};
  std::atomic<int64_t> last_scan_id{0}, last_scan_completed_at_ms{0}, last_scan_duration_ms{0};
  std::atomic<int64_t> last_write_ms{0}, last_processes{0}, last_errors{0};
  std::atomic<int64_t> scan_duration_ms_total{0};
  std::atomic<int64_t> hash_cache_hits_total{0}, hash_cache_misses_total{0};
  std::atomic<int64_t> scan_now_requests{0}, reload_requests{0};
  std::atomic<bool> scan_source_ebpf{false};  // scans sample through the BPF task iterator
  // The two write paths (docs/operations.md "Health"): health answers
  // "unhealthy" while the most recent write on either failed.
  WriteHealth scan_writes, event_writes;
  std::atomic<int64_t> scans_lost{0};  // scans never written (given up at stop)

  // From the writer's "scan written" callback.
  void RecordWritten(const models::ScanRecord& scan, int64_t scan_id, int64_t write_ms);
  nlohmann::json ToJson() const;
};

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
