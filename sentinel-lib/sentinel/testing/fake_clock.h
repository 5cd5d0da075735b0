// testing::FakeClock: the one clock of the tests. Time moves only when the
// test says so (Advance), and moving it wakes every thread waiting through
// the clock (Clock::WaitUntil) so it re-checks its deadline at once, as the
// real passing of time would. Test-only; thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "sentinel/base/time.h"

namespace sentinel::testing {

class FakeClock final : public Clock {
 public:
  static constexpr int64_t kDefaultNowMs = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
  static constexpr int64_t kDefaultMonotonicMs = 1'000;

  explicit FakeClock(int64_t now_ms = kDefaultNowMs, int64_t monotonic_ms = kDefaultMonotonicMs);

  // Wall time; with a read step (SetReadStepMs) each read first moves it on.
  int64_t NowMs() const override;
  int64_t MonotonicMs() const override;
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_mono_ms,
                 const std::function<bool()>& done) const override;

  // Moves wall and monotonic time on by `ms` and wakes every waiter.
  void Advance(int64_t ms);

  // Every NowMs() read moves wall time on by `ms` first (0: off), for code
  // that needs strictly increasing timestamps, like a busy host's.
  void SetReadStepMs(int64_t ms);

  // Blocks until at least `n` threads wait on this clock having seen its
  // current time: whatever they had to do up to now is done and they sleep
  // until a later deadline (or their own wake-up). False after 30 s (a guard
  // against hanging, not a timing assertion).
  bool AwaitWaiters(size_t n) const;

 private:
  struct Waiter {
    std::mutex* mu;
    std::condition_variable* cv;
  };
  void Register(const Waiter* w) const;
  void Unregister(const Waiter* w) const;
  void MarkAsleep(const Waiter* w, std::optional<int64_t> seen_mono) const;  // nullopt: awake

  mutable std::atomic<int64_t> now_;  // NowMs() moves it with a read step
  std::atomic<int64_t> mono_;
  std::atomic<int64_t> read_step_{0};

  // Lock order: waiters_mu_, then a waiter's own mutex. A waiter never holds
  // its mutex while taking waiters_mu_. asleep_mu_ is a leaf.
  mutable std::mutex waiters_mu_;
  mutable std::set<const Waiter*> waiters_;
  mutable std::mutex asleep_mu_;
  mutable std::condition_variable asleep_cv_;
  mutable std::map<const Waiter*, int64_t> asleep_;  // waiter -> the monotonic time it went to sleep at
};

}  // namespace sentinel::testing
