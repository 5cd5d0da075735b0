#include "sentinel/alertstore/retention.h"

#include <string>

#include "sentinel/storage/store.h"

namespace sentinel::alerting {

Result<int64_t> ApplyAlertRetention(storage::Database& db, int64_t now_ms, int64_t alert_retention_days,
                                    int64_t chunk_rows) {
  if (alert_retention_days < 1) return InvalidArgumentError("alert retention must be >= 1 day");
  const int64_t cutoff = now_ms - alert_retention_days * 86'400'000;
  // Alerts still waiting for delivery or in the dead-letter queue are kept.
  const std::string old_alerts =
      "SELECT id FROM alerts WHERE alert_time < ?1 AND id NOT IN (SELECT alert_id FROM dead_letter_queue)"
      " AND id NOT IN (SELECT alert_id FROM delivery_queue)";
  RETURN_IF_ERROR(storage::DeleteInChunks(db,
                                          "DELETE FROM alert_deliveries WHERE id IN (SELECT d.id FROM "
                                          "alert_deliveries d WHERE d.alert_id IN (" +
                                              old_alerts + ") LIMIT ?2)",
                                          cutoff, chunk_rows)
                      .status());
  return storage::DeleteInChunks(db, "DELETE FROM alerts WHERE id IN (" + old_alerts + " LIMIT ?2)", cutoff,
                                 chunk_rows);
}

}  // namespace sentinel::alerting
