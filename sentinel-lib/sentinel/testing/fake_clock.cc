#include "sentinel/testing/fake_clock.h"

#include <algorithm>
#include <chrono>

namespace sentinel::testing {

FakeClock::FakeClock(int64_t now_ms, int64_t monotonic_ms) : now_(now_ms), mono_(monotonic_ms) {}

int64_t FakeClock::NowMs() const {
  const int64_t step = read_step_.load();
  return step == 0 ? now_.load() : now_.fetch_add(step) + step;
}

int64_t FakeClock::MonotonicMs() const {
  return mono_.load();
}

void FakeClock::SetReadStepMs(int64_t ms) {
  read_step_ = ms;
}

void FakeClock::Advance(int64_t ms) {
  std::lock_guard guard(waiters_mu_);
  now_ += ms;
  mono_ += ms;
  // Under each waiter's mutex: a waiter is either before its deadline check
  // (and sees the new time) or inside cv.wait (and gets this notification).
  for (const Waiter* w : waiters_) {
    std::lock_guard lock(*w->mu);
    w->cv->notify_all();
  }
}

void FakeClock::Register(const Waiter* w) const {
  std::lock_guard guard(waiters_mu_);
  waiters_.insert(w);
}

void FakeClock::Unregister(const Waiter* w) const {
  std::lock_guard guard(waiters_mu_);
  waiters_.erase(w);
}

void FakeClock::MarkAsleep(const Waiter* w, std::optional<int64_t> seen_mono) const {
  {
    std::lock_guard guard(asleep_mu_);
    if (seen_mono) {
      asleep_[w] = *seen_mono;
    } else {
      asleep_.erase(w);
    }
  }
  asleep_cv_.notify_all();
}

bool FakeClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          int64_t deadline_mono_ms, const std::function<bool()>& done) const {
  if (done()) return true;
  if (mono_.load() >= deadline_mono_ms) return false;
  const Waiter self{lock.mutex(), &cv};
  // waiters_mu_ comes before the waiter's mutex (see Advance): register unlocked.
  lock.unlock();
  Register(&self);
  lock.lock();
  while (!done()) {
    const int64_t seen = mono_.load();
    if (seen >= deadline_mono_ms) break;
    MarkAsleep(&self, seen);
    cv.wait(lock);
    MarkAsleep(&self, std::nullopt);
  }
  lock.unlock();
  Unregister(&self);
  lock.lock();
  return done();
}

bool FakeClock::AwaitWaiters(size_t n) const {
  std::unique_lock lock(asleep_mu_);
  return asleep_cv_.wait_for(lock, std::chrono::seconds(30), [&] {
    const int64_t now = mono_.load();
    return static_cast<size_t>(std::count_if(asleep_.begin(), asleep_.end(),
                                             [now](const auto& w) { return w.second == now; })) >= n;
  });
}

}  // namespace sentinel::testing
