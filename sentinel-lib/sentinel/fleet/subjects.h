// The names every fleet participant agrees on (SPEC §14, PLAN19): JetStream streams, their
// subjects, the key-value buckets and the query subjects. Header-only constants and small pure
// helpers; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace sentinel::fleet {

// Streams and the subjects they hold.
inline constexpr std::string_view kAlertsStream = "SENTINELD_ALERTS";
inline constexpr std::string_view kAlertsSubjects = "sentineld.alerts.>";
inline constexpr std::string_view kEventsStream = "SENTINELD_EVENTS";
inline constexpr std::string_view kEventsSubjects = "sentineld.events.>";
inline constexpr std::string_view kScansStream = "SENTINELD_SCANS";
inline constexpr std::string_view kScansSubjects = "sentineld.scans.>";
// The streams' duplicate window (Nats-Msg-Id deduplication), the server's default.
inline constexpr int64_t kDefaultDuplicateWindowSecs = 120;

// Key-value buckets.
inline constexpr std::string_view kHostsBucket = "sentineld_hosts";  // key = host_id, value = heartbeat JSON
inline constexpr std::string_view kRulesBucket = "sentineld_rules";  // key kRulesBundleKey
inline constexpr std::string_view kRulesBundleKey = "bundle";        // value = the signed bundle envelope

// Query subjects: one host, or every host.
inline constexpr std::string_view kQueryPrefix = "sentineld.query.";
inline constexpr std::string_view kQueryAllSubject = "sentineld.query.all";

// The durable consumer of sentinelfleet serve on kAlertsStream.
inline constexpr std::string_view kConsoleDurable = "sentinelfleet";

// How often hosts put their heartbeat (SPEC §14).
inline constexpr int64_t kHeartbeatSecs = 30;
// A host whose last heartbeat was sent longer ago (two periods) is stale:
// `query --hosts all` does not wait for it; `hosts` and the web UI mark it.
inline constexpr int64_t kLiveHeartbeatSecs = 2 * kHeartbeatSecs;

inline std::string AlertSubject(std::string_view host_id) {
  return "sentineld.alerts." + std::string(host_id);
}
inline std::string EventSubject(std::string_view host_id) {
  return "sentineld.events." + std::string(host_id);
}
inline std::string ScanSubject(std::string_view host_id) {
  return "sentineld.scans." + std::string(host_id);
}
inline std::string QuerySubject(std::string_view host_id) {
  return std::string(kQueryPrefix) + std::string(host_id);
}
// Nats-Msg-Id of an alert: the same for every retry, so JetStream stores it once.
inline std::string AlertMsgId(std::string_view host_id, int64_t alert_id) {
  return std::string(host_id) + ":" + std::to_string(alert_id);
}

// True when `host_id` is one NATS subject token a host id may be: [A-Za-z0-9_-]{1,64}.
inline bool IsValidHostId(std::string_view host_id) {
  if (host_id.empty() || host_id.size() > 64) return false;
  for (char c : host_id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace sentinel::fleet
