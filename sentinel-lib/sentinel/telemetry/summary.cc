#include "sentinel/telemetry/summary.h"

namespace sentinel::telemetry {

PeriodicSummary::PeriodicSummary(int64_t interval_ms, int64_t now_ms)
    : interval_ms_(interval_ms), last_ms_(now_ms) {}

void PeriodicSummary::Baseline(const Totals& totals) {
  for (const auto& [name, value] : totals) previous_[name] = value;
}

nlohmann::json PeriodicSummary::Take(const Totals& totals, int64_t now_ms) {
  nlohmann::json fields = nlohmann::json::object();
  fields["period_s"] = (now_ms - last_ms_ + 500) / 1000;
  for (const auto& [name, value] : totals) {
    auto it = previous_.find(name);
    const int64_t before = it == previous_.end() ? 0 : it->second;
    // A counter that went down restarted with a new source: all of it is new.
    fields[name] = value >= before ? value - before : value;
    previous_[name] = value;
  }
  last_ms_ = now_ms;
  return fields;
}

}  // namespace sentinel::telemetry
