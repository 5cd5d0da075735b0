#include "sentinel/alerting/backoff.h"

#include <algorithm>
#include <memory>
#include <random>

namespace sentinel::alerting {

Backoff::Backoff(config::RetryConfig retry, std::function<double()> uniform01)
    : retry_(retry), uniform01_(std::move(uniform01)) {
  if (!uniform01_) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    uniform01_ = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
}

int64_t Backoff::NominalMs(int failed_attempts) const {
  int64_t delay = std::max<int64_t>(retry_.initial_backoff_ms, 1);
  // Doubling stops at the cap, so no shift can overflow.
  for (int i = 1; i < failed_attempts && delay < retry_.max_backoff_ms; ++i) delay *= 2;
  return std::min(delay, std::max<int64_t>(retry_.max_backoff_ms, 1));
}

int64_t Backoff::DelayMs(int failed_attempts) {
  const int64_t nominal = NominalMs(std::max(failed_attempts, 1));
  const double u = std::clamp(uniform01_(), 0.0, 1.0);
  const int64_t half = nominal / 2;
  const auto jitter = static_cast<int64_t>(static_cast<double>(nominal - half) * u);
  return std::clamp<int64_t>(half + jitter, 1, nominal);
}

}  // namespace sentinel::alerting
