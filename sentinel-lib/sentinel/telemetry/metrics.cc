#include "sentinel/telemetry/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace sentinel::telemetry {

namespace {
constexpr std::string_view kPrefix = "sentinel_";

bool NameChar(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon_ok && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  s_.bounds = std::move(bounds);
  s_.buckets.assign(s_.bounds.size() + 1, 0);
}

void Histogram::Observe(double value) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = std::lower_bound(s_.bounds.begin(), s_.bounds.end(), value) - s_.bounds.begin();
  s_.buckets[i]++;
  s_.sum += value;
  s_.count++;
}

HistogramSnapshot Histogram::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

std::vector<double> DurationBuckets() {
  return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

bool MetricsBuilder::ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!NameChar(name[i], i == 0, true)) return false;
  return true;
}

bool MetricsBuilder::ValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!NameChar(name[i], i == 0, false)) return false;
  return true;
}

namespace {

// The exposition format's escapes: backslash and line feed always, the
// double quote inside label values.
std::string EscapeExposition(std::string_view v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || (quote && c == '"')) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string MetricsBuilder::EscapeLabelValue(std::string_view v) {
  return EscapeExposition(v, /*quote=*/true);
}

std::string MetricsBuilder::EscapeHelp(std::string_view v) {
  return EscapeExposition(v, /*quote=*/false);
}

std::string MetricsBuilder::FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  // Shortest text that reads back as the same double (timestamps keep
  // their milliseconds).
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

std::string MetricsBuilder::LabelText(const Labels& labels,
                                      const std::pair<std::string, std::string>* extra) {
  if (labels.empty() && extra == nullptr) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  };
  for (const auto& [k, v] : labels) add(k, v);
  if (extra) add(extra->first, extra->second);
  return out + "}";
}

MetricsBuilder::Family* MetricsBuilder::FamilyFor(std::string_view name, std::string_view type,
                                                  std::string_view help, std::string* full) {
  *full = name.starts_with(kPrefix) ? std::string(name) : std::string(kPrefix) + std::string(name);
  if (!ValidName(*full) || (type == "counter" && !full->ends_with("_total"))) {
    ++invalid_;
    return nullptr;
  }
  auto it = families_.find(*full);
  if (it == families_.end()) {
    order_.push_back(*full);
    it = families_.emplace(*full, Family{std::string(type), std::string(help), {}}).first;
  } else if (it->second.type != type) {
    ++invalid_;
    return nullptr;
  }
  return &it->second;
}

void MetricsBuilder::Counter(std::string_view name, std::string_view help, double value,
                             const Labels& labels) {
  Sample(name, "counter", help, value, labels);
}

void MetricsBuilder::Gauge(std::string_view name, std::string_view help, double value, const Labels& labels) {
  Sample(name, "gauge", help, value, labels);
}

void MetricsBuilder::Sample(std::string_view name, std::string_view type, std::string_view help, double value,
                            const Labels& labels) {
  std::string full;
  Family* f = FamilyFor(name, type, help, &full);
  if (!f || !AcceptLabels(labels, /*le_reserved=*/false)) return;
  f->lines.push_back(full + LabelText(labels, nullptr) + " " + FormatValue(value));
}

bool MetricsBuilder::AcceptLabels(const Labels& labels, bool le_reserved) {
  for (const auto& l : labels) {
    if (!ValidLabelName(l.first) || (le_reserved && l.first == "le")) {
      ++invalid_;
      return false;
    }
  }
  return true;
}

void MetricsBuilder::Histogram(std::string_view name, std::string_view help, const HistogramSnapshot& h,
                               const Labels& labels) {
  std::string full;
  Family* f = FamilyFor(name, "histogram", help, &full);
  if (!f || !AcceptLabels(labels, /*le_reserved=*/true)) return;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= h.bounds.size() && i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    std::pair<std::string, std::string> le{"le", i < h.bounds.size() ? FormatValue(h.bounds[i]) : "+Inf"};
    f->lines.push_back(full + "_bucket" + LabelText(labels, &le) + " " + FormatValue(double(cumulative)));
  }
  f->lines.push_back(full + "_sum" + LabelText(labels, nullptr) + " " + FormatValue(h.sum));
  f->lines.push_back(full + "_count" + LabelText(labels, nullptr) + " " + FormatValue(double(h.count)));
}

std::string MetricsBuilder::Render() const {
  std::string out;
  for (const auto& name : order_) {
    const Family& f = families_.at(name);
    out += "# HELP " + name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& l : f.lines) out += l + "\n";
  }
  out += "# HELP sentinel_metrics_invalid_total Samples dropped because of a bad metric or label name.\n";
  out += "# TYPE sentinel_metrics_invalid_total counter\n";
  out += "sentinel_metrics_invalid_total " + FormatValue(double(invalid_)) + "\n";
  return out;
}

}  // namespace sentinel::telemetry
