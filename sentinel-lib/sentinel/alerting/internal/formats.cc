#include "sentinel/alerting/internal/formats.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <ctime>
#include <limits>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"

namespace sentinel::alerting::internal {
namespace {

constexpr std::array<std::string_view, 24> kFacilities = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog", "lpr",    "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "audit",  "alert",  "clock",
    "local0", "local1", "local2",   "local3", "local4", "local5", "local6", "local7"};

// RFC 5424 header fields are printable US-ASCII without spaces.
std::string HeaderField(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    out += (c > 32 && c < 127) ? c : '_';
  }
  return out.empty() ? "-" : out;
}

// PARAM-VALUE: '"', '\' and ']' are escaped with a backslash.
std::string SdValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
  return out;
}

std::string ValueText(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "?";
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string Rfc5322Date(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return buf;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// A header value: as is when printable ASCII, else an RFC 2047 encoded word.
std::string HeaderText(std::string_view s) {
  bool ascii = true;
  for (unsigned char c : s) ascii = ascii && c >= 32 && c < 127;
  if (ascii) return std::string(s);
  return "=?UTF-8?B?" + Base64(s) + "?=";
}

}  // namespace

std::optional<int> SyslogFacilityCode(std::string_view name) {
  for (size_t i = 0; i < kFacilities.size(); ++i) {
    if (kFacilities[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

int SyslogSeverityCode(detection::Severity s) {
  switch (s) {
    case detection::Severity::kCritical: return 2;
    case detection::Severity::kHigh: return 3;
    case detection::Severity::kMedium: return 4;
    case detection::Severity::kLow: return 5;
  }
  return 4;
}

std::string FormatRfc5424(const Alert& alert, const std::string& json, int facility,
                          std::string_view hostname, int64_t procid) {
  const int pri = facility * 8 + SyslogSeverityCode(alert.severity);
  std::string msg = "<" + std::to_string(pri) + ">1 " + FormatIso8601Ms(alert.alert_time) + " " +
                    HeaderField(hostname, 255) + " sentineld " + std::to_string(procid) + " alert ";
  msg += "[alert@32473 id=\"" + std::to_string(alert.id) + "\" rule=\"" + SdValue(alert.rule_id) +
         "\" severity=\"" + std::string(detection::SeverityName(alert.severity)) + "\"] ";
  msg += "\xEF\xBB\xBF";  // BOM: MSG is UTF-8 (RFC 5424 §6.4)
  msg += json;
  return msg;
}

std::string OctetCounted(const std::string& message) {
  return std::to_string(message.size()) + " " + message;
}

std::string EnvelopeAddress(const std::string& address) {
  size_t open = address.rfind('<');
  size_t close = address.rfind('>');
  if (open != std::string::npos && close != std::string::npos && close > open) {
    return address.substr(open, close - open + 1);
  }
  return "<" + std::string(Trim(address)) + ">";
}

std::string EmailSubject(const Alert& alert) {
  return Printable("[SentinelD] " + ToUpper(detection::SeverityName(alert.severity)) + " " + alert.rule_id +
                   ": " + alert.title + " (alert #" + std::to_string(alert.id) + ")");
}

std::string QuotedPrintable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  size_t line = 0;
  auto put = [&](std::string_view piece) {
    if (line + piece.size() > 75) {
      out += "=\r\n";
      line = 0;
    }
    out += piece;
    line += piece.size();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      out += "\r\n";
      line = 0;
      ++i;
      continue;
    }
    if (c == '\n') {
      out += "\r\n";
      line = 0;
      continue;
    }
    const bool at_line_end = i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
    const bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_line_end);
    // A leading dot is encoded too, so no line ever looks like the SMTP end of data.
    if (plain && !(c == '.' && line == 0)) {
      char ch = static_cast<char>(c);
      put(std::string_view(&ch, 1));
    } else {
      char enc[3] = {'=', kHex[c >> 4], kHex[c & 15]};
      put(std::string_view(enc, 3));
    }
  }
  return out;
}

std::string BuildEmail(const Alert& alert, const std::string& json, const std::string& from,
                       const std::vector<std::string>& to, int64_t now_ms, std::string_view hostname,
                       std::string_view sink_name) {
  std::string host = HeaderField(hostname, 200);
  std::string h;
  h += "Date: " + Rfc5322Date(now_ms) + "\r\n";
  h += "From: " + from + "\r\n";
  h += "To: " + Join(to, ", ") + "\r\n";
  h += "Subject: " + HeaderText(EmailSubject(alert)) + "\r\n";
  h += "Message-ID: <sentineld.alert-" + std::to_string(alert.id) + "." + HeaderField(sink_name, 64) + "." +
       std::to_string(now_ms) + "@" + host + ">\r\n";
  h += "X-Sentinel-Alert-Id: " + std::to_string(alert.id) + "\r\n";
  h += "X-Sentinel-Severity: " + std::string(detection::SeverityName(alert.severity)) + "\r\n";
  h += "MIME-Version: 1.0\r\n";
  h += "Content-Type: text/plain; charset=utf-8\r\n";
  h += "Content-Transfer-Encoding: quoted-printable\r\n";
  h += "\r\n";

  std::string b;
  b += "SentinelD raised an alert on " + host + ".\n\n";
  b += "Rule:        " + alert.rule_id + " (version " + std::to_string(alert.rule_version) + ")\n";
  b += "Title:       " + alert.title + "\n";
  b += "Severity:    " + std::string(detection::SeverityName(alert.severity)) + "\n";
  b += "Time:        " + FormatIso8601Ms(alert.alert_time) + "\n";
  b += "Alert id:    " + std::to_string(alert.id) + "\n";
  if (!alert.description.empty()) b += "\n" + alert.description + "\n";
  b += "\nAffected processes (" + std::to_string(alert.process_count) + "):\n";
  for (const auto& p : alert.affected_processes) {
    b += "  - pid " + ValueText(p.value("pid", nlohmann::ordered_json())) + "  " +
         ValueText(p.value("name", nlohmann::ordered_json())) + "  " +
         ValueText(p.value("exe_path", nlohmann::ordered_json())) + "\n";
  }
  b += "\nInspect it with: sentinelcli alerts show " + std::to_string(alert.id) + "\n";
  b += "\nThe alert as JSON:\n" + json + "\n";
  return h + QuotedPrintable(b);
}

Result<std::string> HmacSha256Hex(std::string_view key, std::string_view body) {
  if (key.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return InvalidArgumentError("HMAC-SHA256: the key is larger than 2 GiB");
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // NULL on failure (e.g. no provider offers HMAC or SHA-256); a signature header built from the
  // untouched buffer would be empty or garbage, so the attempt fails instead.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len) == nullptr ||
      len == 0) {
    const unsigned long err = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
    char text[256] = "no OpenSSL error queued";
    if (err != 0) ERR_error_string_n(err, text, sizeof text);
    ERR_clear_error();
    return InternalError(std::string("HMAC-SHA256 of the body failed: ") + text);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

}  // namespace sentinel::alerting::internal
