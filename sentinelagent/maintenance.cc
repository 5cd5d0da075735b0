#include "sentinelagent/maintenance.h"

#include <chrono>

#include "sentinel/alertstore/retention.h"
#include "sentinel/base/time.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::agent {

Maintenance::Maintenance(MaintenanceOptions options, DeletedHook on_deleted)
    : options_(std::move(options)), on_deleted_(std::move(on_deleted)) {}

Maintenance::~Maintenance() {
  Stop();
}

void Maintenance::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Maintenance::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Maintenance::Reconfigure(int64_t retention_days, int64_t alert_retention_days, int64_t interval_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.retention_days = retention_days;
  options_.alert_retention_days = alert_retention_days;
  options_.interval_ms = interval_ms;
}

MaintenanceStats Maintenance::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Maintenance::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.first_delay_ms);
  while (!stopping_) {
    if (wake_.wait_until(lock, next, [this] { return stopping_; })) break;
    lock.unlock();
    RunOnce();
    lock.lock();
    next = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.interval_ms);
  }
}

void Maintenance::RunOnce() {
  MaintenanceOptions o;
  {
    std::lock_guard<std::mutex> lock(mu_);
    o = options_;
  }
  const int64_t started = MonotonicMs();
  std::string error;
  storage::RetentionResult r;
  int64_t alerts_deleted = 0;
  storage::MaintenanceResult m;
  auto store = storage::EventStore::Open({o.database_path, storage::OpenMode::kReadWrite, o.busy_timeout_ms});
  if (!store.ok()) {
    error = store.status().message();
  } else {
    auto retained = (*store)->ApplyRetention(NowMs(), o.retention_days);
    if (retained.ok()) r = *retained;
    auto alerts = retained.ok()
                      ? alerting::ApplyAlertRetention((*store)->db(), NowMs(), o.alert_retention_days)
                      : Result<int64_t>(retained.status());
    if (!alerts.ok()) {
      // What was deleted before the failure stays deleted (each chunk
      // committed); the rest goes at the next run.
      error = "retention: " + alerts.status().message();
    } else {
      alerts_deleted = *alerts;
    }
    auto maintained = (*store)->Maintain();
    if (!maintained.ok()) {
      error +=
          (error.empty() ? "" : "; ") + std::string("optimize/checkpoint: ") + maintained.status().message();
    } else {
      m = *maintained;
    }
  }
  const int64_t duration = MonotonicMs() - started;
  const int64_t deleted =
      r.scans_deleted + r.instances_deleted + r.states_deleted + r.events_deleted + alerts_deleted;
  nlohmann::json counts = {{"scans_deleted", r.scans_deleted},
                           {"instances_deleted", r.instances_deleted},
                           {"states_deleted", r.states_deleted},
                           {"events_deleted", r.events_deleted},
                           {"alerts_deleted", alerts_deleted},
                           {"retention_days", o.retention_days},
                           {"alert_retention_days", o.alert_retention_days}};
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.runs;
    stats_.rows_deleted += deleted;
    stats_.last_run_ms = NowMs();
    stats_.last_duration_ms = duration;
    stats_.last_error = error;
    if (!error.empty()) ++stats_.failures;
  }
  if (!error.empty()) {
    telemetry::LogError("store maintenance failed; retried at the next run",
                        {{"error", error}, {"duration_ms", duration}, {"deleted", counts}});
  } else {
    telemetry::LogInfo("store maintenance", {{"duration_ms", duration},
                                             {"deleted", counts},
                                             {"wal_frames", m.wal_frames},
                                             {"checkpointed_frames", m.checkpointed_frames},
                                             {"checkpoint_busy", m.checkpoint_busy}});
  }
  if (deleted > 0 && on_deleted_) on_deleted_(counts);
}

}  // namespace sentinel::agent
