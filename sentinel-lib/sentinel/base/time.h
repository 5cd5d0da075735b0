// Time helpers: epoch milliseconds (the storage convention), ISO-8601 and
// relative durations ("15m", "2h", "7d") as accepted by the CLI, and an
// injectable clock so time-dependent code is testable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "sentinel/base/status.h"

namespace sentinel {

int64_t NowMs();        // wall clock, ms since the Unix epoch
int64_t MonotonicMs();  // monotonic clock, for durations

// Formats epoch ms as "2026-11-28T13:48:16.123Z".
std::string FormatIso8601Ms(int64_t epoch_ms);

// Parses a duration: an integer followed by ms, s, m, h, d or w ("15m").
Result<int64_t> ParseDurationMs(std::string_view s);

// Parses a point in time for --since/--until: ISO-8601 ("2026-11-28",
// "2026-11-28T10:00:00Z", with optional fraction and +hh:mm offset; no zone
// means UTC), a relative duration meaning "that long before now_ms", or a
// plain integer of epoch milliseconds.
Result<int64_t> ParseTimePoint(std::string_view s, int64_t now_ms);

// A clock that tests can replace (testing::FakeClock). Code that waits for a
// point in time waits through its clock, so a fake clock's time moving wakes
// it as the real passing of time would. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
  virtual int64_t MonotonicMs() const = 0;

  // Blocks on `cv` until `done()` is true or MonotonicMs() reaches
  // `deadline_mono_ms`; returns done(). As std::condition_variable::wait:
  // `lock` holds cv's mutex on entry and on return, done() is evaluated with
  // it held, and whoever makes done() true notifies `cv`. No polling: the real
  // clock sleeps until the deadline, a fake one until its time is advanced.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         int64_t deadline_mono_ms, const std::function<bool()>& done) const = 0;

  static const Clock& Real();
};

}  // namespace sentinel
