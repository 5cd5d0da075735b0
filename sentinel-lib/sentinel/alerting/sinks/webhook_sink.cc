// webhook: HTTP POST of the alert JSON with libcurl.
//
// TLS verification is on unless tls_verify is false; only http and https
// are spoken and redirects are not followed (a redirect is a configuration
// error, reported as such). Every request carries X-Sentinel-Alert-Id,
// X-Sentinel-Delivery-Id (stable across attempts, for receivers that drop
// duplicates) and X-Sentinel-Attempt, and with a secret the signature
// header "sha256=<hex HMAC-SHA256 of the body>".
//
// 2xx is success. 408, 425, 429 and 5xx are retried; other statuses are
// permanent failures (the alert goes straight to the dead-letter queue). A
// response body is never interpreted: at most 512 bytes of it, made
// printable, go into the recorded error.
//
// The body is the alert JSON (format: ocsf, the OCSF Detection Finding, ocsf.h) with unsafe code points
// \u-escaped, cut to max_message_bytes (default 1 MiB; FitAlertJson marks it "truncated": true) and the
// signature covers exactly the body sent. The URL may carry a token (userinfo, query, a Slack/Discord-style
// path): errors name it only as scheme://host:port/… (base RedactUrl), and curl's own text is scrubbed.
#include <atomic>

#include "sentinel/alerting/internal/curl.h"
#include "sentinel/alerting/internal/formats.h"
#include "sentinel/alerting/sinks/sinks.h"
#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"

namespace sentinel::alerting::sinks {
namespace {

constexpr size_t kMaxBodyKept = 512;

size_t KeepSome(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  size_t len = size * n;
  if (out->size() < kMaxBodyKept) out->append(data, std::min(len, kMaxBodyKept - out->size()));
  return len;  // the rest is read and dropped
}

std::string PrintableSnippet(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += (c >= 32 && c < 127) ? static_cast<char>(c) : '.';
  return out;
}

class WebhookSink final : public AlertSink {
 public:
  WebhookSink(const config::SinkConfig& cfg, std::string secret, internal::CurlHandle curl, size_t max_bytes,
              std::optional<OcsfSource> ocsf)
      : AlertSink(cfg.name),
        cfg_(cfg),
        ocsf_(std::move(ocsf)),
        shown_url_(RedactUrl(cfg.url)),
        secret_(std::move(secret)),
        curl_(std::move(curl)),
        max_bytes_(max_bytes) {
    curl_.InstallCancel(&cancelled_);
  }
  std::string_view type() const override { return "webhook"; }
  int MaxBatch() const override { return 1; }
  void Cancel() override { cancelled_ = true; }

  DeliveryResult Deliver(const DeliveryRequest& req) override {
    CURL* h = curl_.get();
    const std::string payload = internal::FitAlertJson(PayloadOf(req, ocsf_), max_bytes_);
    internal::CurlList headers;
    std::vector<std::string> lines = {"Content-Type: application/json",
                                      "Expect:",
                                      "User-Agent: sentineld/0.1",
                                      "X-Sentinel-Alert-Id: " + std::to_string(req.alert.id),
                                      "X-Sentinel-Delivery-Id: " + req.delivery_key,
                                      "X-Sentinel-Attempt: " + std::to_string(req.attempt)};
    for (const auto& [name, value] : cfg_.headers) lines.push_back(name + ": " + value);
    if (!secret_.empty()) {
      Result<std::string> mac = internal::HmacSha256Hex(secret_, payload);
      if (!mac.ok()) return {Status(mac.status().code(), "signing the body: " + mac.status().message())};
      lines.push_back(cfg_.signature_header + ": sha256=" + *mac);
    }
    for (const auto& l : lines) {
      if (Status s = headers.Append(l); !s.ok()) return {s};
    }
    std::string body;
    char errbuf[CURL_ERROR_SIZE] = {};
    internal::SetTransferOptions(h, cfg_.url, "http,https", cfg_, errbuf);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &KeepSome);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    DeliveryResult r{internal::TransferStatus(rc, errbuf, "POST " + shown_url_, cfg_.url)};
    if (rc != CURLE_OK) {
      r.outcome_unknown = rc == CURLE_ABORTED_BY_CALLBACK;
      return r;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    r.http_status = static_cast<int>(code);
    if (code >= 200 && code < 300) return r;
    std::string msg = "POST " + shown_url_ + ": HTTP " + std::to_string(code);
    if (!body.empty()) msg += ": " + ScrubUrl(PrintableSnippet(body), cfg_.url);
    r.status = UnavailableError(msg);
    r.permanent = !(code == 408 || code == 425 || code == 429 || code >= 500);
    return r;
  }

 private:
  config::SinkConfig cfg_;
  std::optional<OcsfSource> ocsf_;  // set: format ocsf
  std::string shown_url_;           // cfg_.url for messages: scheme://host:port/…
  std::string secret_;
  internal::CurlHandle curl_;
  size_t max_bytes_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

Result<std::unique_ptr<AlertSink>> MakeWebhookSink(const config::SinkConfig& cfg,
                                                   const SinkEnvironment& env) {
  std::string secret;
  if (!cfg.hmac_secret_env.empty()) {
    auto v = env.getenv ? env.getenv(cfg.hmac_secret_env) : std::nullopt;
    if (!v || v->empty()) {
      return InvalidArgumentError("hmac_secret_env: environment variable " + cfg.hmac_secret_env +
                                  " is not set or empty");
    }
    secret = *v;
  } else if (!cfg.hmac_secret_file.empty()) {
    auto v = internal::ReadSecretFile(cfg.hmac_secret_file);
    if (!v.ok()) return InvalidArgumentError("hmac_secret_file: " + v.status().message());
    secret = *v;
  }
  ASSIGN_OR_RETURN(size_t max_bytes, MaxMessageBytes(cfg, internal::kDefaultLargeMessageBytes));
  ASSIGN_OR_RETURN(internal::CurlHandle curl, internal::CurlHandle::Create());
  return std::unique_ptr<AlertSink>(std::make_unique<WebhookSink>(
      cfg, std::move(secret), std::move(curl), max_bytes,
      cfg.format == "ocsf" ? std::optional<OcsfSource>(OcsfSourceOf(env)) : std::nullopt));
}

}  // namespace sentinel::alerting::sinks
