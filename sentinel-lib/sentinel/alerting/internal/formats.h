// Wire formats of the sinks, as pure functions so tests can check them byte
// for byte (docs/alert-delivery.md). Private to the alerting module.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/alerting/alert_store.h"
#include "sentinel/base/status.h"

namespace sentinel::alerting::internal {

// Facility code of a syslog facility name ("auth" -> 4), nullopt if unknown.
std::optional<int> SyslogFacilityCode(std::string_view name);
// RFC 5424 severity of an alert severity: critical 2, high 3, medium 4, low 5.
int SyslogSeverityCode(detection::Severity s);

// One RFC 5424 message (no transport framing):
//   <PRI>1 TIMESTAMP HOSTNAME sentineld PROCID alert [alert@32473 id="…" rule="…" severity="…"] BOM JSON
std::string FormatRfc5424(const Alert& alert, const std::string& json, int facility,
                          std::string_view hostname, int64_t procid);
// RFC 6587 octet-counting framing: "LEN SP MSG".
std::string OctetCounted(const std::string& message);

// The email of one alert (RFC 5322, CRLF line ends, quoted-printable UTF-8
// body): readable subject and body, the alert JSON at the end.
std::string BuildEmail(const Alert& alert, const std::string& json, const std::string& from,
                       const std::vector<std::string>& to, int64_t now_ms, std::string_view hostname,
                       std::string_view sink_name);
// "Name <a@b>" -> "<a@b>"; "a@b" -> "<a@b>" (SMTP envelope form).
std::string EnvelopeAddress(const std::string& address);
std::string QuotedPrintable(std::string_view text);  // CRLF line breaks kept, soft breaks at 76
std::string EmailSubject(const Alert& alert);        // before header encoding

// Lowercase hex HMAC-SHA256 of `body` under `key`. InternalError naming OpenSSL's reason when
// OpenSSL fails (no provider for HMAC or SHA-256); InvalidArgument for a key over 2 GiB.
Result<std::string> HmacSha256Hex(std::string_view key, std::string_view body);

}  // namespace sentinel::alerting::internal
