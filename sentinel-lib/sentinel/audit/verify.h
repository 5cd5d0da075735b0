// Verification of the audit ledger: one streaming pass in sequence order
// (a single prepared SELECT, constant memory) that recomputes every hash and
// signature and stops at the first entry that does not hold.
//
// Checks per entry, in this order (the first failing one is reported):
//   malformed        a column has the wrong type, actor/action empty or with
//                    a NUL byte, a hash or signature not in lowercase hex
//   entry_missing    the sequence skips numbers (a deleted entry); the
//                    reported sequence is the first missing one
//   entry_unexpected a sequence below the expected one (e.g. an inserted
//                    entry 0 or a negative sequence)
//   payload_changed  payload_hash != BLAKE3(event_data)
//   chain_broken     prev_hash != entry_hash of the previous entry (an entry
//                    inserted, removed or reordered before this one, or the
//                    previous entry rewritten with a recomputed hash)
//   entry_changed    entry_hash != the hash of the stored fields (sequence,
//                    timestamp, actor or action changed, or entry_hash itself)
//   bad_signature    a signature that does not verify under the public key
//   missing_signature no signature where the policy below requires one
// and, after the last entry, against an optional external anchor:
//   anchor_mismatch  the anchored sequence exists with another entry_hash
//   truncated        the ledger ends before the anchored sequence
// plus key_mismatch when a trusted public key is given and the database
// records another (or none).
//
// Signature policy: with `audit_public_key` in system_metadata, every entry
// from `audit_signed_from` (default 1) on must carry a valid signature, and a
// signature on an earlier entry must also be valid. Without a recorded key
// signatures are not checked. Since the key lives in the same file, someone
// who can rewrite the file can also remove it: pass trusted_public_key to
// verify against a key kept elsewhere, which then requires a valid signature
// on every entry.
//
// Without an anchor, removing entries from the end and (unsigned ledger)
// rewriting the chain to its end go unnoticed: docs/audit-format.md.
//
// Thread-safety: VerifyLedger uses the given connection from the calling
// thread only. Errors (Status) are for I/O and SQL failures; tampering is
// reported in the result, never as an error.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "sentinel/base/status.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::audit {

enum class VerifyFinding {
  kOk,
  kMalformed,
  kEntryMissing,
  kEntryUnexpected,
  kPayloadChanged,
  kChainBroken,
  kEntryChanged,
  kBadSignature,
  kMissingSignature,
  kAnchorMismatch,
  kTruncated,
  kKeyMismatch,
};

// "ok", "malformed", "entry_missing", ... (stable, for JSON output).
std::string_view VerifyFindingName(VerifyFinding finding);

struct Anchor {
  int64_t sequence = 0;
  std::string entry_hash_hex;  // lowercase hex of the entry_hash recorded elsewhere
};

struct VerifyOptions {
  std::optional<std::string> trusted_public_key_hex;
  std::optional<Anchor> anchor;
  // Called on the verifying thread with (entries checked so far, entries in
  // the ledger) every kVerifyProgressEvery entries and once at the end of
  // the walk (sentinelcli's progress line). Optional.
  std::function<void(int64_t done, int64_t total)> on_progress;
};
inline constexpr int64_t kVerifyProgressEvery = 256;

struct VerifyResult {
  VerifyFinding finding = VerifyFinding::kOk;
  int64_t first_bad_sequence = 0;  // meaningful when !intact() (0 for kKeyMismatch)
  std::string detail;              // human explanation of the finding

  int64_t entries_total = 0;     // rows in audit_ledger
  int64_t entries_verified = 0;  // entries that passed every check, in order
  int64_t signatures_verified = 0;
  int64_t unsigned_entries = 0;  // verified entries without a signature
  int64_t first_sequence = 0;    // of the verified prefix (0 when empty)
  int64_t last_sequence = 0;
  std::string last_entry_hash_hex;  // of the last verified entry: an anchor to keep elsewhere

  std::string public_key_hex;  // the key signatures were checked with, if any
  int64_t signed_from = 0;     // first sequence that must be signed (0: none required)

  bool intact() const { return finding == VerifyFinding::kOk; }
  // "first bad sequence N: <reason>" or "intact".
  std::string Summary() const;
};

// Verifies the ledger in `db` (an audit database, read-only is enough).
Result<VerifyResult> VerifyLedger(storage::Database& db, const VerifyOptions& options = {});

// Opens `path` read-only (never creating or changing it) and verifies it.
// NotFound when the file is missing.
Result<VerifyResult> VerifyLedgerFile(const std::string& path, const VerifyOptions& options = {},
                                      int64_t busy_timeout_ms = 5000);

}  // namespace sentinel::audit
