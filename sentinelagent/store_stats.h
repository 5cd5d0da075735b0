// What GET /metrics reports from the event store itself: counts read on a
// short-lived read-only connection (one per scrape), never written; and the
// few values the agent's summary log line reads on its own connection.
//
// Thread-safety: free functions without shared state; ReadStoreProgress
// uses the given connection from the calling thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/config/config.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::agent {

// The latest completed scan (scan_metadata).
struct LastScanStats {
  int64_t completed_at_ms = 0;
  int64_t duration_ms = 0;
  int64_t process_count = 0;
  int64_t hash_cache_hits = 0;
  int64_t hash_cache_misses = 0;
};

// One row of alert_deliveries grouped by sink and status.
struct DeliveryAttemptCount {
  std::string sink;
  std::string status;
  int64_t count = 0;
};

struct StoreStats {
  int64_t scans_stored = 0;  // completed scans
  std::optional<LastScanStats> last_scan;
  std::map<std::string, int64_t> alerts_by_severity;  // only the severities stored
  std::vector<DeliveryAttemptCount> delivery_attempts;
  int64_t dlq_size = 0;
};

// Reads the counts; nullopt when the store does not open read-only with a
// current schema. A query that fails counts as 0 (or no rows).
std::optional<StoreStats> ReadStoreStats(const config::DatabaseConfig& db);

// How far collection has got, for the summary line: three indexed lookups.
struct StoreProgress {
  int64_t last_scan_id = 0;         // highest completed scan (ids only grow)
  int64_t last_scan_processes = 0;  // processes of that scan
  int64_t last_event_id = 0;        // highest process_events id (AUTOINCREMENT: never reused)
};
// A query that fails leaves its value 0.
StoreProgress ReadStoreProgress(storage::Database& db);

}  // namespace sentinel::agent
