#include "procmond/bpf_support.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#ifdef SENTINEL_HAVE_EBPF
#include <bpf/libbpf.h>
#endif

namespace sentinel::procmond {

namespace {

// Loads happen on one thread at a time; the last warning of that thread is
// what explains its failure.
thread_local std::string g_libbpf_last_error;

#ifdef SENTINEL_HAVE_EBPF
int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  std::string line(buf, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  if (!line.empty()) g_libbpf_last_error = line;
  return 0;
}
#endif

}  // namespace

bool BpfSupportBuilt() {
#ifdef SENTINEL_HAVE_EBPF
  return true;
#else
  return false;
#endif
}

void CaptureLibbpfMessages() {
#ifdef SENTINEL_HAVE_EBPF
  libbpf_set_print(LibbpfPrint);
#endif
  g_libbpf_last_error.clear();
}

std::string BpfFailure(const char* what, int err) {
  std::string m = std::string(what) + ": " + std::strerror(err < 0 ? -err : err);
  if (err == -EPERM || err == EPERM || err == -EACCES || err == EACCES)
    m += " (needs root: CAP_BPF and CAP_PERFMON)";
  if (!g_libbpf_last_error.empty()) m += " [libbpf: " + g_libbpf_last_error + "]";
  return m;
}

}  // namespace sentinel::procmond
