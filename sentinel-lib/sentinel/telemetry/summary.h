// The daemons' periodic summary line (SPEC §16): at the default log level a
// daemon logs its start, its stop, its problems and, every
// telemetry.summary_interval_secs, one info line "summary" of what it did
// since the previous one -- not a line per scan, rule or cycle.
//
// The owner keeps running totals (counters that only grow while their source
// lives) and asks Due() from its loop; when due, Take() turns the totals into
// the line's fields: `period_s` (seconds since the previous line) and each
// counter's increase since then. A counter that went down (its source was
// replaced, e.g. the alert dispatcher at a reload) counts from 0.
//
// Not thread-safe: one owner thread. Time is passed in (monotonic ms), so
// tests need no clock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sentinel::telemetry {

class PeriodicSummary {
 public:
  using Totals = std::vector<std::pair<std::string, int64_t>>;

  // `interval_ms` 0 (or less): never due. The first line is due one
  // interval after `now_ms`.
  PeriodicSummary(int64_t interval_ms, int64_t now_ms);

  // A new period (a reload); the next line is due `interval_ms` after the
  // previous one.
  void SetInterval(int64_t interval_ms) { interval_ms_ = interval_ms; }
  int64_t interval_ms() const { return interval_ms_; }

  bool Due(int64_t now_ms) const { return interval_ms_ > 0 && now_ms - last_ms_ >= interval_ms_; }

  // Remembers `totals` as the baseline without producing a line (the owner's
  // counters at start, so work done before it does not count).
  void Baseline(const Totals& totals);

  // The fields of the line due now, and `totals` remembered for the next.
  nlohmann::json Take(const Totals& totals, int64_t now_ms);

 private:
  int64_t interval_ms_;
  int64_t last_ms_;
  std::map<std::string, int64_t> previous_;
};

}  // namespace sentinel::telemetry
