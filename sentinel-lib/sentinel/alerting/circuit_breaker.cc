#include "sentinel/alerting/circuit_breaker.h"

namespace sentinel::alerting {

std::string_view CircuitStateName(CircuitState s) {
  switch (s) {
    case CircuitState::kClosed: return "closed";
    case CircuitState::kOpen: return "open";
    case CircuitState::kHalfOpen: return "half_open";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(config::CircuitBreakerConfig cfg, const Clock& clock)
    : cfg_(cfg), clock_(clock) {}

CircuitState CircuitBreaker::state() const {
  if (state_ == CircuitState::kOpen && clock_.MonotonicMs() >= reopens_at_ms())
    return CircuitState::kHalfOpen;
  return state_;
}

bool CircuitBreaker::Allow() {
  if (state_ == CircuitState::kOpen && clock_.MonotonicMs() >= reopens_at_ms()) {
    state_ = CircuitState::kHalfOpen;
    trial_in_flight_ = false;
  }
  switch (state_) {
    case CircuitState::kClosed: return true;
    case CircuitState::kOpen: return false;
    case CircuitState::kHalfOpen:
      if (trial_in_flight_) return false;
      trial_in_flight_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::RecordSuccess() {
  state_ = CircuitState::kClosed;
  failures_ = 0;
  trial_in_flight_ = false;
}

void CircuitBreaker::RecordFailure() {
  ++failures_;
  if (state_ == CircuitState::kHalfOpen || failures_ >= cfg_.failure_threshold) {
    state_ = CircuitState::kOpen;
    opened_at_ms_ = clock_.MonotonicMs();
  }
  trial_in_flight_ = false;
}

}  // namespace sentinel::alerting
