#include "procmond/collector.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <malloc.h>
#include <unistd.h>
#endif

#include <nlohmann/json.hpp>

#include "sentinel/base/time.h"
#include "sentinel/base/version.h"

namespace sentinel::procmond {
namespace {

std::string HostName() {
  char host[256] = {};
#ifdef _WIN32
  DWORD size = sizeof host - 1;
  if (::GetComputerNameExA(ComputerNameDnsHostname, host, &size)) return host;
#else
  if (gethostname(host, sizeof host - 1) == 0) return host;
#endif
  return "";
}

void TrimHeap() {
#ifndef _WIN32
  ::malloc_trim(0);
#endif
}

}  // namespace

Collector::Collector(ProcessSource& source, storage::EventStore& store)
    : source_(source), store_(store), hostname_(HostName()) {}

Result<models::ScanRecord> Collector::Collect() {
  // Free memory inside the heap that glibc keeps resident (JSON of new
  // instances, file buffers, a scan that could not be recycled) goes back
  // once per refresh cycle: trimming every scan cost ~3 % of a steady scan,
  // plus the page faults of touching the returned pages again.
  if (scans_++ % 20 == 0) TrimHeap();
  models::ScanRecord scan;
  {
    std::lock_guard lock(spare_mu_);
    if (spare_) {
      scan.processes = std::move(*spare_);
      spare_.reset();
    }
  }
  scan.started_at_ms = NowMs();
  const int64_t t0 = MonotonicMs();
  ScanErrors errors;
  RETURN_IF_ERROR(source_.EnumerateReusing(&scan.processes, &errors).WithContext("enumerating processes"));
  scan.completed_at_ms = scan.started_at_ms + (MonotonicMs() - t0);
  scan.errors = errors.count;
  const HashCounters hashes = source_.LastHashCounters();
  scan.hash_cache_hits = hashes.hits;
  scan.hash_cache_misses = hashes.misses;
  nlohmann::json summary = nlohmann::json::object();
  for (const auto& [reason, n] : errors.by_reason) summary[reason] = n;
  scan.error_summary = summary.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  scan.hostname = hostname_;
  scan.collector_version = kVersion;
  return scan;
}

Result<ScanSummary> Collector::RunScan() {
  const int64_t t0 = MonotonicMs();
  ASSIGN_OR_RETURN(models::ScanRecord scan, Collect());
  ASSIGN_OR_RETURN(int64_t scan_id, store_.WriteScan(scan));
  ScanSummary s;
  struct RecycleAtEnd {
    Collector* c;
    models::ScanRecord* scan;
    ~RecycleAtEnd() { c->Recycle(std::move(*scan)); }
  } recycle{this, &scan};
  s.scan_id = scan_id;
  s.processes = static_cast<int64_t>(scan.processes.size());
  s.errors = scan.errors;
  s.hash_cache_hits = scan.hash_cache_hits;
  s.hash_cache_misses = scan.hash_cache_misses;
  s.duration_ms = MonotonicMs() - t0;
  return s;
}

void Collector::Recycle(models::ScanRecord&& written) {
  std::lock_guard lock(spare_mu_);
  spare_ = std::move(written.processes);
}

}  // namespace sentinel::procmond
