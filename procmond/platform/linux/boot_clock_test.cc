#include "procmond/platform/linux/boot_clock.h"

#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace sentinel::procmond {
namespace {

int64_t Ns(clockid_t c) {
  timespec t{};
  clock_gettime(c, &t);
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

TEST(BootClockTest, ConvertsBootClockNanosecondsToEpochMillisecondsByFloor) {
  const BootClock c(1'700'000'000'000'000'000);  // boot at 2023-11-14T22:13:20Z
  EXPECT_EQ(c.EpochMs(0), 1'700'000'000'000);
  EXPECT_EQ(c.EpochMs(999'999), 1'700'000'000'000);
  EXPECT_EQ(c.EpochMs(1'000'000), 1'700'000'000'001);
  EXPECT_EQ(c.EpochMs(5'123'456'789), 1'700'000'005'123);
}

TEST(BootClockTest, StartTimesHaveTheClockTickPrecisionOfProcStat) {
  const uint64_t ns_per_tick = 1'000'000'000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  const BootClock c(1'700'000'000'000'000'000);
  // Any time within one tick gives the start_time /proc/PID/stat's ticks give.
  const uint64_t ticks = 123'456;
  for (uint64_t within : {uint64_t{0}, uint64_t{1}, ns_per_tick / 2, ns_per_tick - 1}) {
    EXPECT_EQ(c.StartTimeMs(ticks * ns_per_tick + within), c.StartTimeMsFromTicks(ticks)) << within;
  }
  EXPECT_EQ(c.StartTimeMsFromTicks(ticks), c.EpochMs(ticks * ns_per_tick));
  EXPECT_NE(c.StartTimeMs((ticks + 1) * ns_per_tick), c.StartTimeMsFromTicks(ticks));
}

TEST(BootClockTest, MeasuredOffsetIsRealtimeMinusBoottimeNotWholeSeconds) {
  const int64_t before = Ns(CLOCK_REALTIME) - Ns(CLOCK_BOOTTIME);
  const BootClock c = BootClock::Measure();
  const int64_t after = Ns(CLOCK_REALTIME) - Ns(CLOCK_BOOTTIME);
  // Each reference pair is read with microseconds between the two reads;
  // a whole-second boot time (btime) would be off by up to a second.
  const int64_t lo = std::min(before, after) - 1'000'000;
  const int64_t hi = std::max(before, after) + 1'000'000;
  EXPECT_GE(c.offset_ns(), lo);
  EXPECT_LE(c.offset_ns(), hi);
  EXPECT_EQ(&ProcessBootClock(), &ProcessBootClock());
}

}  // namespace
}  // namespace sentinel::procmond
