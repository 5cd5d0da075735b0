// The retry policy procmond's two store writers (BatchWriter for scans,
// EventWriter for real-time events) share: every attempt's outcome goes to
// the path's WriteHealth; a failed write is retried after a backoff that
// doubles up to a maximum and starts again after a success; once the writer
// is stopping, retries come at most kStopRetryMs apart and a write is given
// up after kStopAttempts failures.
//
// Not thread-safe: owned by one writer thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "sentinel/base/status.h"
#include "sentinel/base/write_health.h"

namespace sentinel::procmond {

inline constexpr int kStopAttempts = 3;
inline constexpr int64_t kStopRetryMs = 100;

class WriteRetry {
 public:
  WriteRetry(int64_t initial_backoff_ms, int64_t max_backoff_ms, WriteHealth* health)
      : initial_ms_(initial_backoff_ms),
        max_ms_(max_backoff_ms),
        backoff_ms_(initial_backoff_ms),
        health_(health) {}

  // One attempt's outcome: told to the health (when set); a success resets
  // the backoff.
  void Record(const Status& outcome) {
    if (outcome.ok()) backoff_ms_ = initial_ms_;
    if (!health_) return;
    if (outcome.ok()) {
      health_->Ok();
    } else {
      health_->Failed(outcome.message());
    }
  }
  int64_t backoff_ms() const { return backoff_ms_; }
  // How long to wait before the next try.
  std::chrono::milliseconds Delay(bool stopping) const {
    return std::chrono::milliseconds(stopping ? std::min(backoff_ms_, kStopRetryMs) : backoff_ms_);
  }
  // After a wait that was not cut short by an abandon: the next wait doubles.
  void Backoff() { backoff_ms_ = std::min(backoff_ms_ * 2, max_ms_); }

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  int64_t backoff_ms_;
  WriteHealth* health_;
};

}  // namespace sentinel::procmond
