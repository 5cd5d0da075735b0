// A clock for the alerting tests: time moves only when told. Thread-safe.
#pragma once

#include <atomic>

#include "sentinel/base/time.h"

namespace sentinel::alerting::internal {

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now_ms = 1'700'000'000'000) : now_(now_ms), mono_(1'000) {}
  int64_t NowMs() const override { return now_.load(); }
  int64_t MonotonicMs() const override { return mono_.load(); }
  void Advance(int64_t ms) {
    now_ += ms;
    mono_ += ms;
  }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> mono_;
};

}  // namespace sentinel::alerting::internal
