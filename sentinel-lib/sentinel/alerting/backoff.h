// Retry delays: exponential backoff with jitter (alerting.retry).
//
// After the n-th failed attempt (n >= 1) the nominal delay is
// initial_backoff_ms * 2^(n-1), capped at max_backoff_ms; the delay used is
// "equal jitter": half of it fixed, the other half scaled by a uniform random
// number in [0, 1), so a sink that comes back is not hit by every pending
// alert at once, and the delay never exceeds max_backoff_ms.
//
// The random source is injected so tests are deterministic. Not thread-safe
// (one per worker).
#pragma once

#include <cstdint>
#include <functional>

#include "sentinel/config/config.h"

namespace sentinel::alerting {

class Backoff {
 public:
  // `uniform01` returns numbers in [0, 1); empty means a seeded PRNG.
  explicit Backoff(config::RetryConfig retry, std::function<double()> uniform01 = {});

  // Delay before the next attempt after `failed_attempts` (>= 1) failures.
  int64_t DelayMs(int failed_attempts);
  // The nominal (jitter-free) delay; DelayMs is within [Nominal/2, Nominal].
  int64_t NominalMs(int failed_attempts) const;

  // True when `attempts` attempts used up the retry budget.
  bool Exhausted(int attempts) const { return attempts >= retry_.max_attempts; }

 private:
  config::RetryConfig retry_;
  std::function<double()> uniform01_;
};

}  // namespace sentinel::alerting
