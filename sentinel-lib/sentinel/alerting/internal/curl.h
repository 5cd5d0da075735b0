// RAII over libcurl for the webhook and email sinks. Private to the
// alerting module. A CurlHandle belongs to one thread at a time; the
// process-wide curl_global_init runs once, on first use.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <string>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/config/config.h"

namespace sentinel::alerting::internal {

class CurlList {
 public:
  CurlList() = default;
  ~CurlList() { curl_slist_free_all(list_); }
  CurlList(const CurlList&) = delete;
  CurlList& operator=(const CurlList&) = delete;
  Status Append(const std::string& item);
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

class CurlHandle {
 public:
  // Fails only if libcurl cannot initialise.
  static Result<CurlHandle> Create();
  ~CurlHandle();
  CurlHandle(CurlHandle&& other) noexcept : h_(other.h_) { other.h_ = nullptr; }
  CurlHandle& operator=(CurlHandle&&) = delete;
  CurlHandle(const CurlHandle&) = delete;
  CurlHandle& operator=(const CurlHandle&) = delete;
  CURL* get() const { return h_; }

  // Aborts transfers when *cancel turns true (checked about every 100 ms).
  void InstallCancel(const std::atomic<bool>* cancel);

 private:
  explicit CurlHandle(CURL* h) : h_(h) {}
  CURL* h_;
};

// "what: curl message (detail)" as an Unavailable / DeadlineExceeded status.
Status CurlError(CURLcode code, const char* errbuf, std::string_view what);

// The options every sink's transfer sets alike: the URL and the protocols
// allowed for it, no signals, cfg's timeout for connecting and for the whole
// transfer, TLS verification and CA file as configured, and curl's error
// text into `errbuf` (CURL_ERROR_SIZE bytes; unset it after the transfer).
void SetTransferOptions(CURL* h, const std::string& url, const char* protocols, const config::SinkConfig& cfg,
                        char* errbuf);

// A finished transfer as a status: OK; "<what>: cancelled (agent stopping)"
// when the cancel flag cut it short (CURLE_ABORTED_BY_CALLBACK: the outcome
// is unknown); else CurlError with curl's text scrubbed of `url`'s secret
// parts (ScrubUrl) and of `secret` when longer than 3 bytes.
Status TransferStatus(CURLcode code, const char* errbuf, std::string_view what, std::string_view url,
                      std::string_view secret = {});

// Reads a secret from a file: at most 64 KiB, trailing CR/LF removed, not empty.
Result<std::string> ReadSecretFile(const std::string& path);

}  // namespace sentinel::alerting::internal
