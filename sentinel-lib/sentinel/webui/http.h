// The web UI's HTTP vocabulary (SPEC §16, docs/web-ui.md): a request as the
// server parsed it, answers that always carry the security headers, JSON
// bodies that stay inert when opened directly, query parameters checked one
// by one (a bad one is a 400 that names it), and the Host check that keeps
// other web sites out (DNS rebinding).
//
// Every answer, whatever its status, carries:
//   Content-Security-Policy: kContentSecurityPolicy (no inline script or
//     style, nothing from another origin, no framing, no form submission)
//   X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer,
//   X-Frame-Options: DENY, Cross-Origin-Opener-Policy and
//   Cross-Origin-Resource-Policy: same-origin, Cache-Control (no-store
//   unless the answer says otherwise), a Content-Type with its charset.
//
// Pure functions and a value type; thread-safe.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sentinel::webui {

inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

inline constexpr std::string_view kJsonType = "application/json; charset=utf-8";
inline constexpr std::string_view kTextType = "text/plain; charset=utf-8";

struct HttpRequest {
  std::string method;  // GET or HEAD (the server answers others itself)
  std::string path;    // the target before '?', as sent (not decoded)
  std::string query;   // after '?', raw
  std::string host;    // the Host header, "" when absent
};

struct HttpResponse {
  int code = 200;
  std::string content_type = std::string(kTextType);
  std::string body;
  std::string cache_control = "no-store";
  std::vector<std::pair<std::string, std::string>> headers;  // more, e.g. Allow
};

// "Not Found" for 404, ...; "Unknown" for a code without one here.
std::string_view ReasonPhrase(int code);

// The bytes on the wire: status line, the security headers, Content-Length,
// Connection: close, then the body (left out for HEAD; Content-Length stays
// the body's).
std::string SerializeResponse(const HttpResponse& r, bool head_only);

HttpResponse TextResponse(int code, std::string body);
// `j` as SafeJsonText, application/json; charset=utf-8.
HttpResponse JsonResponse(int code, const nlohmann::ordered_json& j);
// {"error": message} plus {"parameter": name} when one is named.
HttpResponse JsonError(int code, std::string_view message, std::string_view parameter = "");

// JSON text that stays data wherever it lands: invalid UTF-8 replaced
// (U+FFFD), every unsafe code point (base/escape.h) as \uXXXX, and '<', '>',
// '&' inside strings as \u003c, \u003e, \u0026, so a browser that is told it
// is HTML anyway, or a log, finds no markup in it. The JSON value is unchanged.
std::string SafeJsonText(const nlohmann::ordered_json& j);

// True when a Host header names this machine the way a person or script
// does: an IP literal (v4, [v6]), "localhost" or a name under ".localhost",
// the machine's hostname, or one of `extra_names` (the configured listen
// host), each with an optional port. A browser that reaches the endpoint
// through a hostile name rebound to 127.0.0.1 sends that name: refused, so
// another web site cannot read alerts through the visitor's browser. An
// absent Host (HTTP/1.0 tools) is allowed: browsers always send it.
bool IsAllowedHost(std::string_view host_header, std::initializer_list<std::string_view> extra_names = {});

// The host of a listen address ("127.0.0.1:9464" -> "127.0.0.1", "[::1]:1" -> "::1").
std::string ListenHost(std::string_view listen);

// 403 for a request whose Host IsAllowedHost refused: JSON under /api/, text elsewhere.
HttpResponse HostRefused(const HttpRequest& req);

struct ParamError {
  std::string parameter;
  std::string message;  // starts with the parameter's name
};

// The query string of a GET (application/x-www-form-urlencoded). Refused as
// a whole (error() names the parameter): a name not in `known`, a name given
// twice, a bad %-escape, a value that is not UTF-8 or holds a control
// character, more than kMaxQueryBytes. An empty value counts as absent (a
// form's unset filter). The typed readers record the first bad value as the
// error and return nullopt; read every parameter, then check ok().
class QueryParams {
 public:
  static constexpr size_t kMaxQueryBytes = 2048;

  QueryParams(std::string_view raw, std::initializer_list<std::string_view> known);

  bool ok() const { return !error_.has_value(); }
  const ParamError& error() const { return *error_; }
  // JsonError(400) of error().
  HttpResponse ErrorResponse() const;

  // The decoded value; nullopt when absent or empty, or when longer than
  // `max_bytes` (an error).
  std::optional<std::string> Text(std::string_view name, size_t max_bytes);
  // A decimal integer in [min, max].
  std::optional<int64_t> Int(std::string_view name, int64_t min, int64_t max);
  // A time as the CLI takes it (base/time.h ParseTimePoint: ISO-8601,
  // relative 15m/2h/7d, epoch ms), in ms since the epoch.
  std::optional<int64_t> Time(std::string_view name, int64_t now_ms);
  // One of `values`, exactly.
  std::optional<std::string> OneOf(std::string_view name, std::initializer_list<std::string_view> values);
  // Records an error for `name` (the first error wins).
  void Fail(std::string_view name, std::string message);

 private:
  std::map<std::string, std::string, std::less<>> values_;
  std::optional<ParamError> error_;
};

}  // namespace sentinel::webui
