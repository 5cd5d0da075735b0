#include "sentinel/alerting/internal/curl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "sentinel/base/escape.h"
#include "sentinel/base/files.h"

namespace sentinel::alerting::internal {
namespace {

int CancelCallback(void* data, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(data);
  return cancel->load() ? 1 : 0;
}

}  // namespace

Status CurlList::Append(const std::string& item) {
  curl_slist* next = curl_slist_append(list_, item.c_str());
  if (next == nullptr) return ResourceExhaustedError("curl_slist_append failed");
  list_ = next;
  return Status::Ok();
}

Result<CurlHandle> CurlHandle::Create() {
  static std::once_flag once;
  static CURLcode init = CURLE_OK;
  std::call_once(once, [] { init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK) return InternalError(std::string("curl_global_init: ") + curl_easy_strerror(init));
  CURL* h = curl_easy_init();
  if (h == nullptr) return InternalError("curl_easy_init failed");
  return CurlHandle(h);
}

CurlHandle::~CurlHandle() {
  if (h_ != nullptr) curl_easy_cleanup(h_);
}

void CurlHandle::InstallCancel(const std::atomic<bool>* cancel) {
  curl_easy_setopt(h_, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h_, CURLOPT_XFERINFOFUNCTION, &CancelCallback);
  curl_easy_setopt(h_, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));
}

Status CurlError(CURLcode code, const char* errbuf, std::string_view what) {
  std::string msg = std::string(what) + ": " + curl_easy_strerror(code);
  if (errbuf != nullptr && errbuf[0] != '\0') msg += " (" + std::string(errbuf) + ")";
  if (code == CURLE_OPERATION_TIMEDOUT) return DeadlineExceededError(msg);
  return UnavailableError(msg);
}

void SetTransferOptions(CURL* h, const std::string& url, const char* protocols, const config::SinkConfig& cfg,
                        char* errbuf) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg.timeout_ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg.timeout_ms));
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, cfg.tls_verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, cfg.tls_verify ? 2L : 0L);
  if (!cfg.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, cfg.ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
}

Status TransferStatus(CURLcode code, const char* errbuf, std::string_view what, std::string_view url,
                      std::string_view secret) {
  if (code == CURLE_OK) return Status::Ok();
  if (code == CURLE_ABORTED_BY_CALLBACK)
    return UnavailableError(std::string(what) + ": cancelled (agent stopping)");
  std::string detail = ScrubUrl(errbuf, url);
  if (secret.size() > 3) {
    for (size_t at = detail.find(secret); at != std::string::npos; at = detail.find(secret, at)) {
      detail.replace(at, secret.size(), "***");
    }
  }
  return CurlError(code, detail.c_str(), what);
}

Result<std::string> ReadSecretFile(const std::string& path) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "reading secret file " + path);
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "reading secret file " + path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 65536) return InvalidArgumentError("secret file " + path + " is larger than 64 KiB");
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) return InvalidArgumentError("secret file " + path + " is empty");
  return out;
}

}  // namespace sentinel::alerting::internal
