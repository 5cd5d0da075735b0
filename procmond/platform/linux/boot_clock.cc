#include "procmond/platform/linux/boot_clock.h"

#include <time.h>
#include <unistd.h>

namespace sentinel::procmond {
uint64_t NsPerClockTick() {
  static const uint64_t ns = [] {
    const long hz = sysconf(_SC_CLK_TCK);
    return 1'000'000'000ULL / static_cast<uint64_t>(hz > 0 ? hz : 100);
  }();
  return ns;
}

namespace {

int64_t ToNs(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

BootClock BootClock::Measure() {
  // REALTIME read between two BOOTTIME reads: the narrower the window, the
  // less a preemption between the reads can skew the difference.
  int64_t best_window = INT64_MAX;
  int64_t best_offset = 0;
  for (int i = 0; i < 16; ++i) {
    timespec b1{}, r{}, b2{};
    clock_gettime(CLOCK_BOOTTIME, &b1);
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_BOOTTIME, &b2);
    const int64_t window = ToNs(b2) - ToNs(b1);
    if (window < best_window) {
      best_window = window;
      best_offset = ToNs(r) - (ToNs(b1) + window / 2);
    }
  }
  return BootClock(best_offset);
}

int64_t BootClock::EpochMs(uint64_t boottime_ns) const {
  const int64_t ns = EpochNs(boottime_ns);
  // Floor, also for (theoretical) times before the epoch.
  return ns >= 0 ? ns / 1'000'000 : -((-ns + 999'999) / 1'000'000);
}

int64_t BootClock::StartTimeMs(uint64_t start_boottime_ns) const {
  return StartTimeMsFromTicks(start_boottime_ns / NsPerClockTick());
}

int64_t BootClock::StartTimeMsFromTicks(uint64_t start_ticks) const {
  return EpochMs(start_ticks * NsPerClockTick());
}

const BootClock& ProcessBootClock() {
  static const BootClock clock = BootClock::Measure();
  return clock;
}

}  // namespace sentinel::procmond
