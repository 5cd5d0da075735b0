// Alert retention (SPEC §3 storage.alert_retention_days): the alert policy
// beside the alert store, apart from the event store's own history purge
// (storage::EventStore::ApplyRetention).
#pragma once

#include <cstdint>

#include "sentinel/base/status.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::alerting {

// Deletes alerts raised before now_ms - alert_retention_days, with their
// delivery attempts, in storage::DeleteInChunks' short transactions. Alerts
// still queued for delivery or in the dead-letter queue are kept. Returns
// how many alerts were deleted. InvalidArgument when alert_retention_days
// or chunk_rows is below 1.
Result<int64_t> ApplyAlertRetention(storage::Database& db, int64_t now_ms, int64_t alert_retention_days,
                                    int64_t chunk_rows = 2000);

}  // namespace sentinel::alerting
