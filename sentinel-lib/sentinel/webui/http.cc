#include "sentinel/webui/http.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"

namespace sentinel::webui {

std::string_view ReasonPhrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string SerializeResponse(const HttpResponse& r, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(r.code) + " " + std::string(ReasonPhrase(r.code)) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Content-Security-Policy: ";
  out += kContentSecurityPolicy;
  out += "\r\n";
  out += "X-Content-Type-Options: nosniff\r\n";
  out += "Referrer-Policy: no-referrer\r\n";
  out += "X-Frame-Options: DENY\r\n";
  out += "Cross-Origin-Opener-Policy: same-origin\r\n";
  out += "Cross-Origin-Resource-Policy: same-origin\r\n";
  out += "Cache-Control: " + r.cache_control + "\r\n";
  for (const auto& [name, value] : r.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  if (!head_only) out += r.body;
  return out;
}

HttpResponse TextResponse(int code, std::string body) {
  HttpResponse r;
  r.code = code;
  r.body = std::move(body);
  return r;
}

std::string SafeJsonText(const nlohmann::ordered_json& j) {
  const std::string hardened =
      HardenJsonText(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  // Outside strings valid JSON holds none of < > &: replacing them everywhere
  // only touches string contents.
  std::string out;
  out.reserve(hardened.size() + 16);
  for (char ch : hardened) {
    switch (ch) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += ch;
    }
  }
  out += '\n';
  return out;
}

HttpResponse JsonResponse(int code, const nlohmann::ordered_json& j) {
  HttpResponse r;
  r.code = code;
  r.content_type = std::string(kJsonType);
  r.body = SafeJsonText(j);
  return r;
}

HttpResponse JsonError(int code, std::string_view message, std::string_view parameter) {
  nlohmann::ordered_json j;
  j["error"] = std::string(message);
  if (!parameter.empty()) j["parameter"] = std::string(parameter);
  return JsonResponse(code, j);
}

namespace {

// The host part of a Host header: "[::1]:9464" -> "::1", "a.b:80" -> "a.b".
std::string_view HostPart(std::string_view h) {
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    return close == std::string_view::npos ? std::string_view() : h.substr(1, close - 1);
  }
  const size_t colon = h.rfind(':');
  return colon == std::string_view::npos ? h : h.substr(0, colon);
}

bool IsIpLiteral(std::string_view host) {
  const std::string s(host);
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, s.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, s.c_str(), buf.data()) == 1;
}

std::string MachineName() {
  std::array<char, HOST_NAME_MAX + 1> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "";
  return std::string(name.data());
}

}  // namespace

bool IsAllowedHost(std::string_view host_header, std::initializer_list<std::string_view> extra_names) {
  if (host_header.empty()) return true;
  std::string host = ToLower(HostPart(host_header));
  if (!host.empty() && host.back() == '.') host.pop_back();  // "localhost." is localhost
  if (host.empty()) return false;
  if (IsIpLiteral(host) || host == "localhost" || EndsWith(host, ".localhost")) return true;
  if (EqualsIgnoreCase(host, MachineName())) return true;
  return std::any_of(extra_names.begin(), extra_names.end(),
                     [&](std::string_view n) { return !n.empty() && EqualsIgnoreCase(host, n); });
}

std::string ListenHost(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  std::string_view host = colon == std::string_view::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::string(host);
}

HttpResponse HostRefused(const HttpRequest& req) {
  constexpr std::string_view kWhy =
      "the Host header does not name this machine (docs/web-ui.md \"Host check\")";
  if (StartsWith(req.path, "/api/")) return JsonError(403, kWhy);
  return TextResponse(403, std::string(kWhy) + "\n");
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Form decoding: '+' is a space, %XX a byte. nullopt for a bad escape.
std::optional<std::string> FormDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] != '%') {
      out += s[i];
    } else {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace

QueryParams::QueryParams(std::string_view raw, std::initializer_list<std::string_view> known) {
  if (raw.size() > kMaxQueryBytes) {
    Fail("query", "query: longer than " + std::to_string(kMaxQueryBytes) + " bytes");
    return;
  }
  for (const std::string& pair : Split(raw, '&')) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto name = FormDecode(std::string_view(pair).substr(0, eq));
    const std::string shown = name ? *name : pair.substr(0, eq);
    if (!name || !IsValidUtf8(*name) || HasControl(*name)) {
      Fail("query", "query: bad parameter name " + QuoteForMessage(shown));
      return;
    }
    if (std::find(known.begin(), known.end(), *name) == known.end()) {
      Fail(*name, *name + ": unknown parameter");
      return;
    }
    auto value =
        FormDecode(eq == std::string::npos ? std::string_view() : std::string_view(pair).substr(eq + 1));
    if (!value || !IsValidUtf8(*value) || HasControl(*value)) {
      Fail(*name, *name + ": bad encoding (a %-escape, UTF-8, or a control character)");
      return;
    }
    if (!values_.emplace(*name, std::move(*value)).second) {
      Fail(*name, *name + ": given more than once");
      return;
    }
  }
}

HttpResponse QueryParams::ErrorResponse() const {
  return JsonError(400, error_->message, error_->parameter);
}

void QueryParams::Fail(std::string_view name, std::string message) {
  if (!error_) error_ = ParamError{std::string(name), std::move(message)};
}

std::optional<std::string> QueryParams::Text(std::string_view name, size_t max_bytes) {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  if (it->second.size() > max_bytes) {
    Fail(name, std::string(name) + ": longer than " + std::to_string(max_bytes) + " bytes");
    return std::nullopt;
  }
  return it->second;
}

std::optional<int64_t> QueryParams::Int(std::string_view name, int64_t min, int64_t max) {
  auto text = Text(name, 32);
  if (!text) return std::nullopt;
  auto v = ParseInt64(*text);
  if (!v || *v < min || *v > max) {
    Fail(name, std::string(name) + ": expected an integer from " + std::to_string(min) + " to " +
                   std::to_string(max) + ", got " + QuoteForMessage(*text));
    return std::nullopt;
  }
  return v;
}

std::optional<int64_t> QueryParams::Time(std::string_view name, int64_t now_ms) {
  auto text = Text(name, 64);
  if (!text) return std::nullopt;
  auto t = ParseTimePoint(*text, now_ms);
  if (!t.ok()) {
    Fail(name, std::string(name) + ": " + t.status().message());
    return std::nullopt;
  }
  return *t;
}

std::optional<std::string> QueryParams::OneOf(std::string_view name,
                                              std::initializer_list<std::string_view> values) {
  auto text = Text(name, 64);
  if (!text) return std::nullopt;
  if (std::find(values.begin(), values.end(), *text) != values.end()) return text;
  std::vector<std::string> names(values.begin(), values.end());
  Fail(name,
       std::string(name) + ": expected one of " + Join(names, ", ") + ", got " + QuoteForMessage(*text));
  return std::nullopt;
}

}  // namespace sentinel::webui
