// The tamper-evident audit ledger (SPEC §8): an append-only, hash-chained
// table `audit_ledger` in the audit database, written by every component.
//
// Each entry is (sequence, timestamp ms, actor, action, event_data) plus:
//   payload_hash = BLAKE3(event_data as UTF-8 bytes)
//   prev         = entry_hash of sequence-1, or 32 zero bytes for sequence 1
//   entry_hash   = BLAKE3(u64_be(sequence) || u64_be(timestamp) || actor || 0x00
//                         || action || 0x00 || payload_hash || prev)
//   signature    = optional Ed25519 over entry_hash (signer.h)
// Hashes and signatures are stored as lowercase hex TEXT (the column types of
// the audit schema, migration 1); prev_hash is NULL for sequence 1. The byte
// layout is written up in docs/audit-format.md.
//
// Sequences start at 1 and increase by exactly 1 across every writer, in
// every process: each append runs in one BEGIN IMMEDIATE transaction that
// reads the tail and inserts after it, waiting for other writers up to the
// busy timeout.
//
// Signing: when the ledger is opened with a Signer and the database has no
// `audit_public_key` yet, the key is recorded together with
// `audit_signed_from` (the first sequence that must be signed). Once a key is
// recorded, appends without that key's Signer are refused, so the chain is
// never extended with entries that verification would reject.
//
// Thread-safety: an AuditLedger (one SQLite connection) is used by one thread
// at a time; any number of AuditLedger objects, in any number of threads or
// processes, may append to the same file concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/audit/signer.h"
#include "sentinel/base/status.h"
#include "sentinel/base/time.h"
#include "sentinel/crypto/blake3.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::audit {

// system_metadata keys of the audit database.
inline constexpr std::string_view kPublicKeyMetadataKey = "audit_public_key";
inline constexpr std::string_view kSignedFromMetadataKey = "audit_signed_from";

// --- the canonical format (pure functions, thread-safe) ---------------------

crypto::Blake3Digest PayloadHash(std::string_view event_data);

// The bytes entry_hash is the BLAKE3 of. actor and action must not contain a
// NUL byte (their terminator); callers check with ValidateEntryFields.
std::string EntryPreimage(int64_t sequence, int64_t timestamp_ms, std::string_view actor,
                          std::string_view action, const crypto::Blake3Digest& payload_hash,
                          const crypto::Blake3Digest& prev);
crypto::Blake3Digest EntryHash(int64_t sequence, int64_t timestamp_ms, std::string_view actor,
                               std::string_view action, const crypto::Blake3Digest& payload_hash,
                               const crypto::Blake3Digest& prev);

// InvalidArgument unless actor and action are non-empty, valid UTF-8 without
// NUL bytes (a NUL would make the actor/action split ambiguous) and
// event_data is valid UTF-8.
Status ValidateEntryFields(std::string_view actor, std::string_view action, std::string_view event_data);

// Canonical event_data for a JSON value: compact, object keys sorted
// (nlohmann::json keeps objects sorted), non-ASCII as UTF-8. InvalidArgument
// when a string in `data` is not valid UTF-8.
Result<std::string> CanonicalEventData(const nlohmann::json& data);

// The audit_public_key recorded in an audit database ("" when the ledger is
// not signed). Read-only.
Result<std::string> RecordedPublicKeyHex(storage::Database& db);

// --- appending --------------------------------------------------------------

struct LedgerOptions {
  std::string path;                      // the audit database (database.audit_path); created if missing
  int64_t busy_timeout_ms = 5000;        // how long an append waits for other writers
  const Clock* clock = nullptr;          // timestamps; nullptr = the real clock; must outlive the ledger
  std::shared_ptr<const Signer> signer;  // optional: sign every entry (shared: Sign is thread-safe)
};

// One entry to append; event_data is the canonical JSON text.
struct AuditEvent {
  std::string actor;
  std::string action;
  std::string event_data;
};

struct Appended {
  int64_t first_sequence = 0;
  int64_t last_sequence = 0;
  int64_t timestamp_ms = 0;  // shared by all entries of one call
  crypto::Blake3Digest last_entry_hash{};
};

class AuditLedger {
 public:
  // Opens (creating and migrating if needed) the audit database read-write.
  // Errors: those of storage::OpenStore; FailedPrecondition when `signer`
  // does not match the public key already recorded in the database.
  static Result<std::unique_ptr<AuditLedger>> Open(const LedgerOptions& options);
  ~AuditLedger();
  AuditLedger(const AuditLedger&) = delete;
  AuditLedger& operator=(const AuditLedger&) = delete;

  // Appends one entry with event_data = CanonicalEventData(data).
  Result<Appended> Append(std::string_view actor, std::string_view action, const nlohmann::json& data);
  // Appends one entry whose event_data (JSON text by convention) is taken as is.
  Result<Appended> AppendRaw(std::string_view actor, std::string_view action, std::string_view event_data);
  // Appends all events with consecutive sequences in one transaction: all or
  // nothing. An empty batch is InvalidArgument.
  Result<Appended> AppendBatch(std::span<const AuditEvent> events);

  // Errors of the append calls: InvalidArgument (fields, see
  // ValidateEntryFields), Unavailable (another writer held the lock for the
  // whole busy timeout), FailedPrecondition (the ledger is signed and this
  // ledger has no or another key), DataLoss (the tail entry's entry_hash is
  // unreadable, so nothing can be chained to it), other storage errors.

  storage::Database& db() { return *db_; }

 private:
  struct Statements;
  AuditLedger(std::unique_ptr<storage::Database> db, const LedgerOptions& options);
  Status Prepare();
  Status RegisterPublicKey();
  Result<Appended> AppendValidated(std::span<const AuditEvent> events);

  std::unique_ptr<storage::Database> db_;
  const Clock* clock_;
  std::shared_ptr<const Signer> signer_;
  std::string public_key_hex_;  // of signer_, if any
  std::unique_ptr<Statements> st_;
};

}  // namespace sentinel::audit
