// One scan: enumerate processes through a ProcessSource and write them as a
// single scan to the event store. Used by procmond's loop and --once.
// Not thread-safe; owned by the collector thread.
#pragma once

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

 private:
  ProcessSource& source_;
  storage::EventStore& store_;
  std::string hostname_;
};

}  // namespace sentinel::procmond
