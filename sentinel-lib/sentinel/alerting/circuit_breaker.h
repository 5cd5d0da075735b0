// A circuit breaker per sink (alerting.circuit_breaker).
//
// Closed: every attempt goes through; failure_threshold consecutive failures
// open it. Open: attempts are refused without touching the peer until
// open_secs have passed on the (injected, monotonic) clock; then it is
// half-open and lets exactly one trial attempt through. The trial's success
// closes it; its failure opens it again for another open_secs.
//
// Not thread-safe: one breaker belongs to one sink worker. state() may be
// published to other threads through the dispatcher's metrics.
#pragma once

#include <cstdint>
#include <string_view>

#include "sentinel/base/time.h"
#include "sentinel/config/config.h"

namespace sentinel::alerting {

enum class CircuitState { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
std::string_view CircuitStateName(CircuitState s);  // "closed", "open", "half_open"

class CircuitBreaker {
 public:
  CircuitBreaker(config::CircuitBreakerConfig cfg, const Clock& clock);

  // Whether an attempt may go to the peer now. In the half-open state the
  // first call returns true (the trial) and later calls false until the trial
  // is recorded.
  bool Allow();
  void RecordSuccess();
  void RecordFailure();

  // The state as of now (an open circuit whose time is up reads half-open).
  CircuitState state() const;
  int consecutive_failures() const { return failures_; }
  // Monotonic ms at which an open circuit admits its trial.
  int64_t reopens_at_ms() const { return opened_at_ms_ + cfg_.open_secs * 1000; }

 private:
  config::CircuitBreakerConfig cfg_;
  const Clock& clock_;
  CircuitState state_ = CircuitState::kClosed;
  int failures_ = 0;
  int64_t opened_at_ms_ = 0;
  bool trial_in_flight_ = false;
};

}  // namespace sentinel::alerting
