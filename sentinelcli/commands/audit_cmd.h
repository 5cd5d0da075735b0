// `sentinelcli audit verify` and `sentinelcli audit list [--limit N]`.
//
// Both open the audit ledger (database.audit_path) read-only and never
// create or change it.
#pragma once

#include <cstdint>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

// Recomputes the whole chain (sentinel/audit/verify.h). Prints a summary
// (table: text lines; json/csv: one object). Exit codes: kExitOk when intact,
// kExitTampered with "first bad sequence N: reason" when not, kExitRuntime
// when the ledger is missing or unreadable, kExitUsage for a bad --format.
int RunAuditVerify(const CommandContext& ctx);

// Lists the most recent `limit` entries in sequence order (0: all entries;
// negative: usage error), streaming. Columns: sequence, timestamp (ms), time
// (ISO-8601), actor, action, event_data, signed (0/1), entry_hash.
int RunAuditList(const CommandContext& ctx, int64_t limit);

// Creates an Ed25519 signing key file (mode 0600, refuses to overwrite) and
// prints its public key. Components sign with it when
// database.audit_signing_key names it.
int RunAuditKeygen(const CommandContext& ctx, const std::string& path);

}  // namespace sentinel::cli
