#include "sentinel/alerting/internal/formats.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <ctime>
#include <limits>

#include "sentinel/base/escape.h"
#include "sentinel/base/hex.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/models/severity.h"

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

// Attacker text for a line a person reads: the base output escaper, cut to
// `max` bytes with a marker.
std::string Line(std::string_view s, size_t max) {
  std::string out = EscapeText(s);
  if (out.size() <= max) return out;
  const std::string_view keep = Utf8Prefix(out, max);
  const size_t removed = out.size() - keep.size();
  out.resize(keep.size());
  out += "\xE2\x80\xA6[truncated " + std::to_string(removed) + " bytes]";
  return out;
}

std::string ValueText(const nlohmann::ordered_json& v, size_t max = 512) {
  if (v.is_string()) return Line(v.get_ref<const std::string&>(), max);
  if (v.is_null()) return "?";
  return Line(v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace), max);
}

using nlohmann::ordered_json;

std::string TruncationMarker(size_t removed) {
  return "\xE2\x80\xA6[truncated " + std::to_string(removed) + " bytes]";
}

// A copy of `j` with strings longer than `cap` bytes cut (with a marker) and
// arrays cut to `max_elements`.
ordered_json Capped(const ordered_json& j, size_t cap, size_t max_elements) {
  switch (j.type()) {
    case ordered_json::value_t::string: {
      const std::string& s = j.get_ref<const std::string&>();
      if (s.size() <= cap) return j;
      const std::string_view keep = Utf8Prefix(s, cap);
      return std::string(keep) + TruncationMarker(s.size() - keep.size());
    }
    case ordered_json::value_t::array: {
      ordered_json out = ordered_json::array();
      for (size_t i = 0; i < j.size() && i < max_elements; ++i)
        out.push_back(Capped(j[i], cap, max_elements));
      return out;
    }
    case ordered_json::value_t::object: {
      ordered_json out = ordered_json::object();
      for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = Capped(it.value(), cap, max_elements);
      return out;
    }
    default: return j;
  }
}

size_t LongestString(const ordered_json& j) {
  if (j.is_string()) return j.get_ref<const std::string&>().size();
  size_t longest = 0;
  if (j.is_array() || j.is_object()) {
    for (const auto& v : j) longest = std::max(longest, LongestString(v));
  }
  return longest;
}

std::string DumpHardened(const ordered_json& j) {
  return HardenJsonText(j.dump(-1, ' ', false, ordered_json::error_handler_t::replace));
}

// The cut of `base` with the longest strings that fits in max_bytes, keeping
// at least `min_cap` bytes of each string; "" if none fits.
std::string FitStrings(const ordered_json& base, size_t max_elements, size_t min_cap, size_t max_bytes) {
  auto attempt = [&](size_t cap) {
    ordered_json c = Capped(base, cap, max_elements);
    c["truncated"] = true;
    return DumpHardened(c);
  };
  const size_t longest = LongestString(base);
  min_cap = std::min(min_cap, longest);
  std::string best = attempt(min_cap);
  if (best.size() > max_bytes) return "";
  size_t lo = min_cap, hi = longest;  // attempt(lo) fits
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    std::string out = attempt(mid);
    if (out.size() <= max_bytes) {
      lo = mid;
      best = std::move(out);
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

std::string Rfc5322Date(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return buf;
}

// A header value: as is when printable ASCII, else an RFC 2047 encoded word.
std::string HeaderText(std::string_view s) {
  bool ascii = true;
  for (unsigned char c : s) ascii = ascii && c >= 32 && c < 127;
  if (ascii) return std::string(s);
  // Encoded words of at most 75 characters (RFC 2047 §2), folded onto
  // continuation lines, never split inside a UTF-8 sequence.
  std::string out;
  while (!s.empty()) {
    std::string_view piece = Utf8Prefix(s, 45);
    if (piece.empty()) piece = s.substr(0, 1);
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64Encode(piece) + "?=";
    s.remove_prefix(piece.size());
  }
  return out;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  // EVP_EncodeBlock takes an int length: whole 3-byte groups at a time, so
  // only the last chunk is padded.
  constexpr size_t kChunk = 3 * 16 * 1024;
  std::string out;
  out.reserve(4 * ((bytes.size() + 2) / 3));
  std::array<unsigned char, 4 * kChunk / 3 + 1> buf{};  // +1: EVP_EncodeBlock's NUL
  for (size_t at = 0; at < bytes.size(); at += kChunk) {
    const std::string_view piece = bytes.substr(at, kChunk);
    const int n = EVP_EncodeBlock(buf.data(), reinterpret_cast<const unsigned char*>(piece.data()),
                                  static_cast<int>(piece.size()));
    out.append(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n));
  }
  return out;
}

std::optional<int> SyslogFacilityCode(std::string_view name) {
  for (size_t i = 0; i < kFacilities.size(); ++i) {
    if (kFacilities[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

int SyslogSeverityCode(models::Severity s) {
  switch (s) {
    case models::Severity::kCritical: return 2;
    case models::Severity::kHigh: return 3;
    case models::Severity::kMedium: return 4;
    case models::Severity::kLow: return 5;
  }
  return 4;
}

std::string FormatRfc5424(const Alert& alert, const std::string& json, int facility,
                          std::string_view hostname, int64_t procid) {
  const int pri = facility * 8 + SyslogSeverityCode(alert.severity);
  std::string msg = "<" + std::to_string(pri) + ">1 " + FormatIso8601Ms(alert.alert_time) + " " +
                    HeaderField(hostname, 255) + " sentineld " + std::to_string(procid) + " alert ";
  msg += "[alert@32473 id=\"" + std::to_string(alert.id) + "\" rule=\"" + SdValue(alert.rule_id) +
         "\" severity=\"" + std::string(models::SeverityName(alert.severity)) + "\"] ";
  msg += "\xEF\xBB\xBF";  // BOM: MSG is UTF-8 (RFC 5424 §6.4)
  msg += json;
  return msg;
}

std::string FitAlertJson(const std::string& json, size_t max_bytes) {
  std::string hardened = HardenJsonText(json);
  if (hardened.size() <= max_bytes) return hardened;
  ordered_json j = ordered_json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) j = ordered_json{{"raw", json}};
  // Long strings first (keeping at least 64 bytes of each), then fewer array elements.
  for (size_t elements :
       {std::numeric_limits<size_t>::max(), size_t{100}, size_t{20}, size_t{5}, size_t{1}}) {
    std::string out = FitStrings(j, elements, 64, max_bytes);
    if (!out.empty()) return out;
  }
  // Only the top-level scalars (id, rule_id, severity, title, times, counts).
  ordered_json scalars = ordered_json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_structured()) scalars[it.key()] = it.value();
  }
  std::string out = FitStrings(scalars, 0, 0, max_bytes);
  if (!out.empty()) return out;
  ordered_json last = {{"id", j.value("id", ordered_json())}, {"truncated", true}};
  return DumpHardened(last);
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
  return "[SentinelD] " + ToUpper(models::SeverityName(alert.severity)) + " " + Line(alert.rule_id, 64) +
         ": " + Line(alert.title, 120) + " (alert #" + std::to_string(alert.id) + ")";
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

namespace {

std::string EmailBody(const Alert& alert, const std::string& json, const std::string& host) {
  std::string b;
  b += "SentinelD raised an alert on " + host + ".\n\n";
  b += "Rule:        " + Line(alert.rule_id, 256) + " (version " + std::to_string(alert.rule_version) + ")\n";
  b += "Title:       " + Line(alert.title, 512) + "\n";
  b += "Severity:    " + std::string(models::SeverityName(alert.severity)) + "\n";
  b += "Time:        " + FormatIso8601Ms(alert.alert_time) + "\n";
  b += "Alert id:    " + std::to_string(alert.id) + "\n";
  if (!alert.description.empty()) b += "\n" + Line(alert.description, 4096) + "\n";
  b += "\nAffected processes (" + std::to_string(alert.process_count) + "):\n";
  constexpr size_t kMaxListed = 20;
  size_t listed = 0;
  for (const auto& p : alert.affected_processes) {
    if (listed++ == kMaxListed) {
      b += "  ... and " + std::to_string(alert.affected_processes.size() - kMaxListed) + " more\n";
      break;
    }
    b += "  - pid " + ValueText(p.value("pid", nlohmann::ordered_json()), 32) + "  " +
         ValueText(p.value("name", nlohmann::ordered_json()), 256) + "  " +
         ValueText(p.value("exe_path", nlohmann::ordered_json()), 512) + "\n";
  }
  b += "\nInspect it with: sentinelcli alerts show " + std::to_string(alert.id) + "\n";
  b += "\nThe alert as JSON:\n" + json + "\n";
  return b;
}

}  // namespace

std::string BuildEmail(const Alert& alert, const std::string& json, const std::string& from,
                       const std::vector<std::string>& to, int64_t now_ms, std::string_view hostname,
                       std::string_view sink_name, size_t max_bytes) {
  std::string host = HeaderField(hostname, 200);
  std::string h;
  h += "Date: " + Rfc5322Date(now_ms) + "\r\n";
  h += "From: " + from + "\r\n";
  h += "To: " + Join(to, ", ") + "\r\n";
  h += "Subject: " + HeaderText(EmailSubject(alert)) + "\r\n";
  h += "Message-ID: <sentineld.alert-" + std::to_string(alert.id) + "." + HeaderField(sink_name, 64) + "." +
       std::to_string(now_ms) + "@" + host + ">\r\n";
  h += "X-Sentinel-Alert-Id: " + std::to_string(alert.id) + "\r\n";
  h += "X-Sentinel-Severity: " + std::string(models::SeverityName(alert.severity)) + "\r\n";
  h += "MIME-Version: 1.0\r\n";
  h += "Content-Type: text/plain; charset=utf-8\r\n";
  h += "Content-Transfer-Encoding: quoted-printable\r\n";
  h += "\r\n";

  std::string message = h + QuotedPrintable(EmailBody(alert, HardenJsonText(json), host));
  if (message.size() <= max_bytes) return message;
  // Too large: cut the JSON until the encoded message fits.
  const size_t fixed = (h + QuotedPrintable(EmailBody(alert, "", host))).size();
  size_t budget = max_bytes > fixed ? max_bytes - fixed : 0;
  for (int round = 0; round < 16; ++round) {
    message = h + QuotedPrintable(EmailBody(alert, FitAlertJson(json, budget), host));
    if (message.size() <= max_bytes || budget == 0) break;
    const size_t over = message.size() - max_bytes;
    budget = budget > over + 16 ? budget - over - 16 : 0;
  }
  return message;
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
  return ToHex(std::span<const uint8_t>(mac, len));
}

}  // namespace sentinel::alerting::internal
