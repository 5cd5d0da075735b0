#include "procmond/batch_writer.h"

#include <algorithm>
#include <chrono>

#include "sentinel/base/time.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::procmond {

BatchWriter::BatchWriter(WriteFn write, DoneFn done, BatchWriterOptions options, RecycleFn recycle)
    : write_(std::move(write)), done_(std::move(done)), options_(options), recycle_(std::move(recycle)) {
  if (options_.capacity == 0) options_.capacity = 1;
  thread_ = std::thread([this] { Run(); });
}

BatchWriter::~BatchWriter() {
  Stop(0).IgnoreError();
}

bool BatchWriter::Submit(models::ScanRecord scan, const std::function<bool()>& interrupted) {
  std::unique_lock lock(mu_);
  auto room = [&] { return stopping_ || queue_.size() < options_.capacity; };
  if (!interrupted) {
    changed_.wait(lock, room);
  } else {
    while (!changed_.wait_for(lock, std::chrono::milliseconds(kStopRetryMs), room)) {
      if (interrupted()) {
        stats_.scans_lost++;
        return false;
      }
    }
  }
  if (stopping_) return false;
  queue_.push_back(std::move(scan));
  stats_.queued = static_cast<int64_t>(queue_.size());
  changed_.notify_all();
  return true;
}

Status BatchWriter::Flush(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  bool empty = changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return queue_.empty(); });
  if (empty) return Status::Ok();
  return DeadlineExceededError(std::to_string(queue_.size()) + " scan(s) not yet written" +
                               (stats_.last_error.empty() ? "" : "; last error: " + stats_.last_error));
}

Status BatchWriter::Stop(int64_t timeout_ms) {
  if (!thread_.joinable()) return Status::Ok();
  {
    std::lock_guard lock(mu_);
    draining_ = true;
    changed_.notify_all();
  }
  Flush(timeout_ms).IgnoreError();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    abandon_ = true;
    changed_.notify_all();
  }
  thread_.join();
  std::lock_guard lock(mu_);
  stats_.scans_lost += static_cast<int64_t>(queue_.size());
  queue_.clear();
  stats_.queued = 0;
  const int64_t lost = stats_.scans_lost;
  if (lost == 0) return Status::Ok();
  return DeadlineExceededError(std::to_string(lost) + " scan(s) not written" +
                               (stats_.last_error.empty() ? "" : "; last error: " + stats_.last_error));
}

BatchWriterStats BatchWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void BatchWriter::Run() {
  WriteRetry retry(options_.initial_backoff_ms, options_.max_backoff_ms, options_.health);
  std::unique_lock lock(mu_);
  while (true) {
    changed_.wait(lock, [&] { return abandon_ || !queue_.empty(); });
    if (abandon_) return;
    // Write the head without holding the lock; it stays queued until written.
    const models::ScanRecord& scan = queue_.front();
    lock.unlock();
    const int64_t t0 = MonotonicMs();
    Result<int64_t> r = write_(scan);
    const int64_t took = MonotonicMs() - t0;
    lock.lock();
    retry.Record(r.status());
    if (r.ok()) {
      Written(lock, *r, took);
    } else if (!AfterFailure(lock, r.status(), &retry)) {
      return;
    }
  }
}

void BatchWriter::Written(std::unique_lock<std::mutex>& lock, int64_t scan_id, int64_t took_ms) {
  if (done_) {
    lock.unlock();
    done_(queue_.front(), scan_id, took_ms);
    lock.lock();
  }
  models::ScanRecord written = std::move(queue_.front());
  queue_.pop_front();
  stats_.scans_written++;
  stats_.last_scan_id = scan_id;
  stats_.last_write_ms = took_ms;
  stats_.queued = static_cast<int64_t>(queue_.size());
  changed_.notify_all();
  if (recycle_) {
    lock.unlock();
    recycle_(std::move(written));
    lock.lock();
  }
}

bool BatchWriter::AfterFailure(std::unique_lock<std::mutex>& lock, const Status& error, WriteRetry* retry) {
  stats_.write_failures++;
  stats_.last_error = error.message();
  telemetry::LogError("writing scan failed; will retry", {{"error", error.message()},
                                                          {"retry_in_ms", retry->backoff_ms()},
                                                          {"queued_scans", queue_.size()},
                                                          {"failures", stats_.write_failures}});
  if (draining_ && ++failed_while_draining_ >= kStopAttempts) {
    // Shutting down on a store that keeps failing: give the rest up now
    // (Stop() counts and reports them) instead of retrying to the deadline.
    stats_.scans_lost += static_cast<int64_t>(queue_.size());
    queue_.clear();
    stats_.queued = 0;
    changed_.notify_all();
    changed_.wait(lock, [&] { return abandon_; });
    return false;
  }
  const bool was_draining = draining_;
  changed_.wait_for(lock, retry->Delay(draining_), [&] { return abandon_ || draining_ != was_draining; });
  if (abandon_) return false;
  retry->Backoff();
  return true;
}

}  // namespace sentinel::procmond
