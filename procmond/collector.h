// One scan: enumerate processes through a ProcessSource and write them as a
// single scan to the event store. Used by procmond's loop and --once.
// Not thread-safe (except Recycle); owned by the collector thread.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "procmond/platform/process_source.h"
#include "sentinel/base/status.h"
#include "sentinel/storage/store.h"

namespace sentinel::procmond {

struct ScanSummary {
  int64_t scan_id = 0;
  int64_t processes = 0;
  int64_t errors = 0;
  int64_t hash_cache_hits = 0;    // see HashCounters
  int64_t hash_cache_misses = 0;  // executables read and hashed by this scan
  int64_t duration_ms = 0;
};

class Collector {
 public:
  Collector(ProcessSource& source, storage::EventStore& store);
  // Enumerates one scan without writing it (procmond's loop hands it to the
  // BatchWriter). Fails only when the process table cannot be listed.
  Result<models::ScanRecord> Collect();
  // Collect() and write it synchronously (tests, benchmarks).
  Result<ScanSummary> RunScan();
  // Hands back a scan that has been written: the next Collect() overwrites
  // its records in place instead of allocating new ones. Any thread (the
  // BatchWriter's).
  void Recycle(models::ScanRecord&& written);

 private:
  std::mutex spare_mu_;
  std::optional<std::vector<models::ProcessRecord>> spare_;
  uint64_t scans_ = 0;
  ProcessSource& source_;
  storage::EventStore& store_;
  std::string hostname_;
};

}  // namespace sentinel::procmond
