// RAII over libcurl for the webhook and email sinks. Private to the
// alerting module. A CurlHandle belongs to one thread at a time; the
// process-wide curl_global_init runs once, on first use.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <string>
#include <vector>

#include "sentinel/base/status.h"

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

// Reads a secret from a file: at most 64 KiB, trailing CR/LF removed, not empty.
Result<std::string> ReadSecretFile(const std::string& path);

}  // namespace sentinel::alerting::internal
