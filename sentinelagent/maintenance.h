// Scheduled store maintenance (issue 7): retention per
// database.retention_days / alert_retention_days, PRAGMA optimize and a
// passive WAL checkpoint, every database.maintenance_interval_secs on a
// thread of its own with its own connection. Deletes go in small
// transactions (EventStore::ApplyRetention, alerting::ApplyAlertRetention) so the collector's scan writes
// wait one chunk at most; the checkpoint is PASSIVE, so it never waits for,
// nor blocks, readers or writers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace sentinel::agent {

struct MaintenanceOptions {
  std::string database_path;
  int64_t busy_timeout_ms = 5000;
  int64_t retention_days = 30;
  int64_t alert_retention_days = 365;
  int64_t interval_ms = 3'600'000;
  int64_t first_delay_ms = 60'000;  // after start: let the first scan and cycle run first
};

struct MaintenanceStats {
  int64_t runs = 0;
  int64_t failures = 0;
  int64_t rows_deleted = 0;
  int64_t last_run_ms = 0;  // epoch ms of the last completed run
  int64_t last_duration_ms = 0;
  std::string last_error;
};

class Maintenance {
 public:
  // Called after each run that deleted something, with the counts (for the
  // audit ledger: deleted history is a security-relevant event).
  using DeletedHook = std::function<void(const nlohmann::json&)>;

  Maintenance(MaintenanceOptions options, DeletedHook on_deleted);
  ~Maintenance();
  Maintenance(const Maintenance&) = delete;
  Maintenance& operator=(const Maintenance&) = delete;

  void Start();
  void Stop();
  // New retention settings take effect at the next run (SIGHUP).
  void Reconfigure(int64_t retention_days, int64_t alert_retention_days, int64_t interval_ms);

  MaintenanceStats stats() const;

 private:
  void Loop();
  void RunOnce();

  MaintenanceOptions options_;
  DeletedHook on_deleted_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  MaintenanceStats stats_;
  std::thread thread_;
};

}  // namespace sentinel::agent
