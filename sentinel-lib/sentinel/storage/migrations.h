// Numbered schema migrations for the two SentinelD databases.
//
// Each database kind has an ordered list of migrations. Applying them
// records each one in `schema_migrations` (version, name, applied_at_ms,
// checksum of its SQL) and sets PRAGMA user_version, in one transaction per
// migration. A database whose recorded version is newer than the binary
// knows is refused; a file whose application_id is not ours is refused as
// a foreign database. Formats are documented in docs/storage.md.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "sentinel/base/status.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::storage {

// The event store and audit ledger of a host, and sentinelfleet's console store.
enum class DatabaseKind { kEvents, kAudit, kFleet };
inline constexpr DatabaseKind kAllDatabaseKinds[] = {DatabaseKind::kEvents, DatabaseKind::kAudit,
                                                     DatabaseKind::kFleet};

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

std::span<const Migration> MigrationsFor(DatabaseKind kind);
int LatestSchemaVersion(DatabaseKind kind);
uint32_t ApplicationId(DatabaseKind kind);
std::string_view KindName(DatabaseKind kind);  // "event store" / "audit ledger" / "fleet console store"

// Checks that `db` is a SentinelD database of `kind` (or an empty file) and
// returns its schema version (0 for an empty file). Refuses foreign files
// and schemas newer than this binary.
Result<int> InspectSchema(Database& db, DatabaseKind kind);

// Brings a read-write database up to the latest version.
Status Migrate(Database& db, DatabaseKind kind);

}  // namespace sentinel::storage
