#include "sentinel/webui/alert_query.h"

#include <algorithm>

#include "sentinel/base/strings.h"

namespace sentinel::webui {
namespace {

constexpr size_t kMaxRuleIdBytes = 128;
constexpr size_t kMaxHostIdBytes = 128;

// Rule ids are [a-z0-9][a-z0-9._-]* (detection/rule.cc); a host id is
// [A-Za-z0-9_-]+ (fleet/subjects.h). Checked here so a bad value is named,
// not silently matched against nothing.
bool IsRuleId(std::string_view s) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  };
  return !s.empty() && s.front() != '.' && s.front() != '_' && s.front() != '-' &&
         std::all_of(s.begin(), s.end(), ok);
}

bool IsHostId(std::string_view s) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  };
  return !s.empty() && std::all_of(s.begin(), s.end(), ok);
}

}  // namespace

ParsedAlertQuery ParseAlertQuery(std::string_view raw_query, bool with_host, int64_t now_ms) {
  ParsedAlertQuery out;
  QueryParams params =
      with_host
          ? QueryParams(raw_query,
                        {"severity", "rule", "status", "since", "until", "q", "limit", "offset", "host"})
          : QueryParams(raw_query, {"severity", "rule", "status", "since", "until", "q", "limit", "offset"});
  AlertQuery& q = out.query;
  if (auto sev = params.OneOf("severity", {"low", "medium", "high", "critical"})) {
    q.min_severity = models::ParseSeverity(*sev);
  }
  q.rule = params.Text("rule", kMaxRuleIdBytes);
  if (q.rule && !IsRuleId(*q.rule)) {
    params.Fail("rule", "rule: expected a rule id ([a-z0-9][a-z0-9._-]*), got " + QuoteForMessage(*q.rule));
  }
  q.status = params.OneOf("status", {"open", "acknowledged", "closed"});
  q.since_ms = params.Time("since", now_ms);
  q.until_ms = params.Time("until", now_ms);
  if (q.since_ms && q.until_ms && *q.since_ms > *q.until_ms)
    params.Fail("until", "until: earlier than since");
  q.text = params.Text("q", kMaxSearchBytes);
  q.limit = params.Int("limit", 1, kMaxAlertLimit).value_or(kDefaultAlertLimit);
  q.offset = params.Int("offset", 0, kMaxAlertOffset).value_or(0);
  if (with_host) {
    q.host = params.Text("host", kMaxHostIdBytes);
    if (q.host && !IsHostId(*q.host)) {
      params.Fail("host", "host: expected a host id ([A-Za-z0-9_-]+), got " + QuoteForMessage(*q.host));
    }
  }
  if (!params.ok()) out.error = params.error();
  return out;
}

std::vector<std::string> SeveritiesFrom(models::Severity min) {
  std::vector<std::string> out;
  for (auto s : {models::Severity::kLow, models::Severity::kMedium, models::Severity::kHigh,
                 models::Severity::kCritical}) {
    if (static_cast<int>(s) >= static_cast<int>(min)) out.emplace_back(models::SeverityName(s));
  }
  return out;
}

std::string ContainsPattern(std::string_view text) {
  std::string out = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  out += '%';
  return out;
}

std::optional<AlertPath> MatchAlertPath(std::string_view path) {
  constexpr std::string_view kPrefix = "/api/alerts/";
  if (!StartsWith(path, kPrefix)) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  const size_t slash = rest.find('/');
  AlertPath out;
  out.id_text = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) out.rest = std::string(rest.substr(slash));
  if (out.id_text.empty()) return std::nullopt;
  return out;
}

}  // namespace sentinel::webui
