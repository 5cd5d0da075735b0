// email: one message per alert over SMTP with libcurl (smtp:// with optional
// required STARTTLS, or smtps://), certificate verification as configured,
// optional SMTP AUTH with the password from an environment variable.
// A 4xx/5xx reply or a connection failure is a failed attempt; the
// dispatcher retries it.
//
// The message is at most max_message_bytes (default 1 MiB; the alert JSON in
// it is cut to fit, BuildEmail). smtp_url may hold user:password: errors
// name it only as scheme://host:port/… (base RedactUrl).
#include <atomic>
#include <cstring>

#include "sentinel/alerting/internal/curl.h"
#include "sentinel/alerting/internal/formats.h"
#include "sentinel/alerting/sinks/sinks.h"
#include "sentinel/base/escape.h"
#include "sentinel/base/time.h"

namespace sentinel::alerting::sinks {
namespace {

struct Upload {
  std::string_view rest;
};

size_t ReadMessage(char* buf, size_t size, size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t len = std::min(size * n, up->rest.size());
  std::memcpy(buf, up->rest.data(), len);
  up->rest.remove_prefix(len);
  return len;
}

class EmailSink final : public AlertSink {
 public:
  EmailSink(const config::SinkConfig& cfg, std::string password, std::string hostname,
            internal::CurlHandle curl, size_t max_bytes)
      : AlertSink(cfg.name),
        cfg_(cfg),
        shown_url_(RedactUrl(cfg.smtp_url)),
        max_bytes_(max_bytes),
        password_(std::move(password)),
        hostname_(std::move(hostname)),
        curl_(std::move(curl)) {
    curl_.InstallCancel(&cancelled_);
  }
  std::string_view type() const override { return "email"; }
  int MaxBatch() const override { return 1; }
  void Cancel() override { cancelled_ = true; }

  DeliveryResult Deliver(const DeliveryRequest& req) override {
    const std::string message =
        internal::BuildEmail(req.alert, req.json, cfg_.from, cfg_.to, NowMs(), hostname_, name(), max_bytes_);
    CURL* h = curl_.get();
    internal::CurlList rcpt;
    for (const auto& to : cfg_.to) {
      if (Status s = rcpt.Append(internal::EnvelopeAddress(to)); !s.ok()) return {s};
    }
    const std::string from = internal::EnvelopeAddress(cfg_.from);
    Upload up{message};
    char errbuf[CURL_ERROR_SIZE] = {};
    internal::SetTransferOptions(h, cfg_.smtp_url, "smtp,smtps", cfg_, errbuf);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.get());
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &ReadMessage);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     cfg_.starttls ? static_cast<long>(CURLUSESSL_ALL) : static_cast<long>(CURLUSESSL_NONE));
    if (!cfg_.username.empty()) {
      curl_easy_setopt(h, CURLOPT_USERNAME, cfg_.username.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, password_.c_str());
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    DeliveryResult r{internal::TransferStatus(rc, errbuf, "SMTP " + shown_url_, cfg_.smtp_url, password_)};
    r.outcome_unknown = rc == CURLE_ABORTED_BY_CALLBACK;
    return r;
  }

 private:
  config::SinkConfig cfg_;
  std::string shown_url_;  // cfg_.smtp_url for messages: scheme://host:port/…
  size_t max_bytes_;
  std::string password_;
  std::string hostname_;
  internal::CurlHandle curl_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

Result<std::unique_ptr<AlertSink>> MakeEmailSink(const config::SinkConfig& cfg, const SinkEnvironment& env) {
  if (cfg.to.empty()) return InvalidArgumentError("to: at least one recipient is required");
  std::string password;
  if (!cfg.password_env.empty()) {
    auto v = env.getenv ? env.getenv(cfg.password_env) : std::nullopt;
    if (!v)
      return InvalidArgumentError("password_env: environment variable " + cfg.password_env + " is not set");
    password = *v;
  }
  ASSIGN_OR_RETURN(size_t max_bytes, MaxMessageBytes(cfg, internal::kDefaultLargeMessageBytes));
  ASSIGN_OR_RETURN(internal::CurlHandle curl, internal::CurlHandle::Create());
  return std::unique_ptr<AlertSink>(
      std::make_unique<EmailSink>(cfg, std::move(password), env.hostname.empty() ? "localhost" : env.hostname,
                                  std::move(curl), max_bytes));
}

}  // namespace sentinel::alerting::sinks
