// The health of one write path (a store a daemon appends to: scan batches,
// real-time event batches, alert records, delivery records). docs/operations.md:
// a path is failing while its most recent write attempt failed; the next
// successful write on it clears that. Failures are counted for metrics.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace sentinel {

struct WritePathState {
  uint64_t ok = 0;         // writes that succeeded
  uint64_t failed = 0;     // write attempts that failed (a retried write counts each time)
  bool failing = false;    // the most recent attempt failed
  std::string last_error;  // of the most recent failure
};

class WriteHealth {
 public:
  void Ok() {
    std::lock_guard lock(mu_);
    ++s_.ok;
    s_.failing = false;
  }
  void Failed(std::string error) {
    std::lock_guard lock(mu_);
    ++s_.failed;
    s_.failing = true;
    s_.last_error = std::move(error);
  }
  WritePathState Get() const {
    std::lock_guard lock(mu_);
    return s_;
  }

 private:
  mutable std::mutex mu_;
  WritePathState s_;
};

}  // namespace sentinel
