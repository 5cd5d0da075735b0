#include "sentinelagent/store_stats.h"

#include "sentinel/storage/store.h"

namespace sentinel::agent {
namespace {

int64_t CountOrZero(storage::Database& db, const char* sql) {
  auto v = db.QueryInt(sql);
  return v.ok() ? v->value_or(0) : 0;
}

std::optional<LastScanStats> ReadLastScan(storage::Database& db) {
  auto st = db.Prepare(
      "SELECT completed_at_ms, duration_ms, process_count, hash_cache_hits, hash_cache_misses FROM "
      "scan_metadata WHERE status = 'completed' ORDER BY scan_id DESC LIMIT 1");
  if (!st.ok()) return std::nullopt;
  auto row = st->Step();
  if (!row.ok() || !*row) return std::nullopt;
  return LastScanStats{st->ColumnInt(0), st->ColumnInt(1), st->ColumnInt(2), st->ColumnInt(3),
                       st->ColumnInt(4)};
}

std::map<std::string, int64_t> ReadAlertsBySeverity(storage::Database& db) {
  std::map<std::string, int64_t> out;
  auto st = db.Prepare("SELECT severity, COUNT(*) FROM alerts GROUP BY severity");
  if (!st.ok()) return out;
  for (auto row = st->Step(); row.ok() && *row; row = st->Step()) out[st->ColumnText(0)] = st->ColumnInt(1);
  return out;
}

std::vector<DeliveryAttemptCount> ReadDeliveryAttempts(storage::Database& db) {
  std::vector<DeliveryAttemptCount> out;
  auto st = db.Prepare("SELECT sink_name, status, COUNT(*) FROM alert_deliveries GROUP BY 1, 2");
  if (!st.ok()) return out;
  for (auto row = st->Step(); row.ok() && *row; row = st->Step()) {
    out.push_back({st->ColumnText(0), st->ColumnText(1), st->ColumnInt(2)});
  }
  return out;
}

}  // namespace

std::optional<StoreStats> ReadStoreStats(const config::DatabaseConfig& cfg) {
  auto db = storage::OpenStore(storage::DatabaseKind::kEvents,
                               {cfg.path, storage::OpenMode::kReadOnly, cfg.busy_timeout_ms});
  if (!db.ok()) return std::nullopt;
  StoreStats s;
  s.scans_stored = CountOrZero(**db, "SELECT COUNT(*) FROM scan_metadata WHERE status = 'completed'");
  s.last_scan = ReadLastScan(**db);
  s.alerts_by_severity = ReadAlertsBySeverity(**db);
  s.delivery_attempts = ReadDeliveryAttempts(**db);
  s.dlq_size = CountOrZero(**db, "SELECT COUNT(*) FROM dead_letter_queue");
  return s;
}

StoreProgress ReadStoreProgress(storage::Database& db) {
  StoreProgress p;
  auto st = db.Prepare(
      "SELECT scan_id, process_count FROM scan_metadata WHERE status = 'completed' ORDER BY scan_id DESC "
      "LIMIT 1");
  if (st.ok()) {
    auto row = st->Step();
    if (row.ok() && *row) {
      p.last_scan_id = st->ColumnInt(0);
      p.last_scan_processes = st->ColumnInt(1);
    }
  }
  p.last_event_id = CountOrZero(db, "SELECT coalesce(max(id), 0) FROM process_events");
  return p;
}

}  // namespace sentinel::agent
