// procmond's scan counters and health (SPEC §10): what its control channel
// answers to `health` and `stats`, on Linux (control.h, the Unix socket) and
// on Windows (platform/windows/control_pipe.h, the named pipe).
//
// Thread-safety: ScanStats fields are atomics written by the writer thread
// and read by the control thread.
#pragma once

#include <atomic>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "sentinel/base/write_health.h"
#include "sentinel/models/process.h"

namespace sentinel::procmond {

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

// The `health` reply: status "ok" or "unhealthy" with the problems (a write
// path failing), component, version, pid, uptime and the last scan. The
// platform adds what it has (the uid on Linux).
nlohmann::json HealthJson(const ScanStats& stats, int64_t pid);

}  // namespace sentinel::procmond
