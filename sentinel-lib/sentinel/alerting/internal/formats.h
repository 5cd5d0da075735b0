// Wire formats of the sinks, as pure functions so tests can check them byte
// for byte (docs/alert-delivery.md). Private to the alerting module.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/status.h"
#include "sentinel/models/severity.h"

namespace sentinel::alerting::internal {

// Default and floor of a sink's max_message_bytes (config::SinkConfig).
inline constexpr size_t kDefaultSyslogMessageBytes = 8096;    // rsyslog's default maxMessageSize
inline constexpr size_t kDefaultLargeMessageBytes = 1048576;  // webhook body, whole email
inline constexpr size_t kMinMessageBytes = 1024;
inline constexpr size_t kMaxUdpPayload = 65507;  // IPv4 UDP datagram payload

// Facility code of a syslog facility name ("auth" -> 4), nullopt if unknown.
std::optional<int> SyslogFacilityCode(std::string_view name);
// RFC 5424 severity of an alert severity: critical 2, high 3, medium 4, low 5.
int SyslogSeverityCode(models::Severity s);

// One RFC 5424 message (no transport framing):
//   <PRI>1 TIMESTAMP HOSTNAME sentineld PROCID alert [alert@32473 id="…" rule="…" severity="…"] BOM JSON
std::string FormatRfc5424(const Alert& alert, const std::string& json, int facility,
                          std::string_view hostname, int64_t procid);
// RFC 6587 octet-counting framing: "LEN SP MSG".
std::string OctetCounted(const std::string& message);

// The email of one alert (RFC 5322, CRLF line ends, quoted-printable UTF-8
// body): readable subject and body, the alert JSON at the end.
// Attacker-controlled text (title, description, process names and paths) is
// passed through the base output escaper, each text line is capped, the
// process list shows at most 20 processes, and the whole message is at most
// `max_bytes` (the JSON is cut with FitAlertJson). No line exceeds 998 bytes.
std::string BuildEmail(const Alert& alert, const std::string& json, const std::string& from,
                       const std::vector<std::string>& to, int64_t now_ms, std::string_view hostname,
                       std::string_view sink_name, size_t max_bytes = kDefaultLargeMessageBytes);
// "Name <a@b>" -> "<a@b>"; "a@b" -> "<a@b>" (SMTP envelope form).
std::string EnvelopeAddress(const std::string& address);
std::string Base64Encode(std::string_view bytes);    // RFC 4648 §4, padded (OpenSSL's EVP_EncodeBlock)
std::string QuotedPrintable(std::string_view text);  // CRLF line breaks kept, soft breaks at 76
std::string EmailSubject(const Alert& alert);        // escaped, at most 200 bytes, before header encoding

// The alert JSON (compact, as Alert::ToJson().dump()) hardened for people
// (base HardenJsonText) and, when that is longer than `max_bytes`, cut to
// fit: the longest strings (command lines, raw rows, paths) are shortened at
// a UTF-8 boundary and end in "…[truncated N bytes]", then if needed arrays
// keep only their first elements (process_count still tells how many there
// were), at last only the top-level scalars are kept. A cut alert carries
// "truncated": true and is always valid JSON. The id, rule_id, severity and
// timestamps survive any cut that max_bytes >= kMinMessageBytes allows.
std::string FitAlertJson(const std::string& json, size_t max_bytes);

// Lowercase hex HMAC-SHA256 of `body` under `key`. InternalError naming OpenSSL's reason when
// OpenSSL fails (no provider for HMAC or SHA-256); InvalidArgument for a key over 2 GiB.
Result<std::string> HmacSha256Hex(std::string_view key, std::string_view body);

}  // namespace sentinel::alerting::internal
