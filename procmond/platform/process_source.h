// The collector's view of the operating system: something that can list the
// processes running now. Linux reads /proc (platform/linux); other platforms
// plug in here without touching the collector, storage or detection.
//
// A source is used by one thread at a time. Enumerate() fails only when the
// process table itself cannot be listed; a process that vanishes or cannot be
// read is recorded in ScanErrors and skipped or stored with NULL fields.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/models/process.h"

namespace sentinel::procmond {

struct ScanErrors {
  int64_t count = 0;
  std::map<std::string, int64_t> by_reason;  // "exe: Permission denied" -> 3
  void Add(const std::string& reason) {
    ++count;
    ++by_reason[reason];
  }
};

// Executable-hash cache counters of one Enumerate() (scan_metadata
// hash_cache_hits/misses). hits: hashes that came from a cache without
// reading the file; misses: files actually read and hashed.
struct HashCounters {
  int64_t hits = 0;
  int64_t misses = 0;
};

class ProcessSource {
 public:
  virtual ~ProcessSource() = default;
  virtual Status Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) = 0;
  // Like Enumerate, but `out` holds a previous scan's records (handed back
  // once written) whose storage may be reused: on success it holds exactly
  // this scan's records. The default clears it and appends.
  virtual Status EnumerateReusing(std::vector<models::ProcessRecord>* out, ScanErrors* errors) {
    out->clear();
    return Enumerate(out, errors);
  }
  // Counters of the last Enumerate(); zero for sources that do not hash.
  virtual HashCounters LastHashCounters() const { return {}; }
};

}  // namespace sentinel::procmond
