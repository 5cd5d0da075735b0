// Metrics in the Prometheus text exposition format (version 0.0.4), as
// served on GET /metrics (SPEC §10, docs/operations.md).
//
// MetricsBuilder collects one scrape: families of counters, gauges and
// histograms, each with HELP and TYPE lines and any number of labelled
// samples. Every family name gets the "sentinel_" prefix when it does not
// already carry it; names and label names are checked against the
// Prometheus grammar (a bad one is a programming error: the sample is
// dropped and counted in sentinel_metrics_invalid_total); label values and
// HELP text are escaped. Counters must end in "_total".
//
// Histogram accumulates observations (thread-safe) into fixed buckets for a
// builder to render.
//
// Thread-safety: MetricsBuilder is a value used by one thread; Histogram is
// thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sentinel::telemetry {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct HistogramSnapshot {
  std::vector<double> bounds;     // upper bounds, ascending, without +Inf
  std::vector<uint64_t> buckets;  // per bound, NOT cumulative; size bounds.size() + 1 (+Inf last)
  double sum = 0;
  uint64_t count = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  HistogramSnapshot Snapshot() const;

 private:
  mutable std::mutex mu_;
  HistogramSnapshot s_;
};

// Default buckets for durations in seconds (1 ms .. 60 s).
std::vector<double> DurationBuckets();

class MetricsBuilder {
 public:
  void Counter(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  void Gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  void Histogram(std::string_view name, std::string_view help, const HistogramSnapshot& h,
                 const Labels& labels = {});

  // The exposition text, families in the order first added.
  std::string Render() const;

  static bool ValidName(std::string_view name);
  static bool ValidLabelName(std::string_view name);
  static std::string EscapeLabelValue(std::string_view v);
  static std::string EscapeHelp(std::string_view v);
  static std::string FormatValue(double v);

 private:
  struct Family {
    std::string type, help;
    std::vector<std::string> lines;
  };
  Family* FamilyFor(std::string_view name, std::string_view type, std::string_view help, std::string* full);
  // False, counted as invalid, when a label name is not valid (or is "le",
  // which a histogram's buckets use).
  bool AcceptLabels(const Labels& labels, bool le_reserved);
  // One counter or gauge sample (`type`).
  void Sample(std::string_view name, std::string_view type, std::string_view help, double value,
              const Labels& labels);
  static std::string LabelText(const Labels& labels, const std::pair<std::string, std::string>* extra);

  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
  uint64_t invalid_ = 0;
};

}  // namespace sentinel::telemetry
