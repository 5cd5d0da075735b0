// The wall-clock time of boot, measured precisely, for turning the kernel's
// boot-clock times (a task's start_boottime, bpf_ktime_get_boot_ns) into
// epoch milliseconds (SPEC §4 value conventions, §12 "one process, one
// identity").
//
// /proc/stat's btime is whole seconds, so a start time built on it is off by
// up to a second, and differently from one built on a precise clock: a scan
// and an exec event then disagree on the same process's start_time and make
// two alerts. procmond instead measures CLOCK_REALTIME − CLOCK_BOOTTIME once
// (the narrowest of several back-to-back samples) and converts every
// boot-clock time — scans and events alike — with that one offset, so a
// process has exactly one start_time in a procmond run. Later wall-clock
// steps (NTP, settimeofday) do not move start times already given.
//
// A start time keeps the precision of the kernel's clock tick (10 ms at
// USER_HZ 100): /proc/PID/stat, the fallback of both the scan (no task
// iterator) and the exec path (netlink), gives nothing finer, and a finer
// value on one path would give a process two identities the moment the
// other path falls back (docs/decisions.md).
//
// Thread-safety: a BootClock is immutable; ProcessBootClock() is
// initialised once, thread-safely, on first use.
#pragma once

#include <cstdint>

namespace sentinel::procmond {

class BootClock {
 public:
  explicit BootClock(int64_t realtime_minus_boottime_ns) : offset_ns_(realtime_minus_boottime_ns) {}

  // Measures the offset now (the sample with the smallest read window of
  // several, its midpoint).
  static BootClock Measure();

  int64_t offset_ns() const { return offset_ns_; }
  // Epoch milliseconds (floor) of a CLOCK_BOOTTIME time in nanoseconds.
  int64_t EpochMs(uint64_t boottime_ns) const;
  // A process's start_time (epoch ms) from its start_boottime in ns,
  // truncated to the clock tick first, exactly as /proc/PID/stat does.
  int64_t StartTimeMs(uint64_t start_boottime_ns) const;
  // The same from /proc/PID/stat's starttime in clock ticks.
  int64_t StartTimeMsFromTicks(uint64_t start_ticks) const;
  // The same for the epoch in nanoseconds.
  int64_t EpochNs(uint64_t boottime_ns) const { return offset_ns_ + static_cast<int64_t>(boottime_ns); }

 private:
  int64_t offset_ns_;
};

// Nanoseconds per clock tick (USER_HZ), the unit of /proc/PID/stat's starttime.
uint64_t NsPerClockTick();

// This process's boot clock, measured on first use.
const BootClock& ProcessBootClock();

}  // namespace sentinel::procmond
