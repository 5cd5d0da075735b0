#include "sentinel/audit/verify.h"

#include <sqlite3.h>

#include <utility>

#include "sentinel/audit/ledger.h"
#include "sentinel/audit/signer.h"
#include "sentinel/base/hex.h"
#include "sentinel/base/strings.h"
#include "sentinel/storage/store.h"

namespace sentinel::audit {
namespace {

enum Col { kSeq, kTs, kActor, kAction, kData, kPayload, kPrev, kEntry, kSig };

const char* TypeName(int type) {
  switch (type) {
    case SQLITE_INTEGER: return "INTEGER";
    case SQLITE_FLOAT: return "REAL";
    case SQLITE_TEXT: return "TEXT";
    case SQLITE_BLOB: return "BLOB";
    default: return "NULL";
  }
}

bool ParseDigest(std::string_view hex, crypto::Blake3Digest* out) {
  return FromLowerHex(hex, *out);
}

// Keeps the count and the scan on one snapshot while writers append.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(storage::Database& db) : db_(db) {
    if (sqlite3_get_autocommit(db_.raw())) active_ = db_.Exec("BEGIN").ok();
  }
  ~ReadSnapshot() {
    if (active_) db_.Exec("COMMIT").IgnoreError();
  }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

 private:
  storage::Database& db_;
  bool active_ = false;
};

}  // namespace

std::string_view VerifyFindingName(VerifyFinding finding) {
  switch (finding) {
    case VerifyFinding::kOk: return "ok";
    case VerifyFinding::kMalformed: return "malformed";
    case VerifyFinding::kEntryMissing: return "entry_missing";
    case VerifyFinding::kEntryUnexpected: return "entry_unexpected";
    case VerifyFinding::kPayloadChanged: return "payload_changed";
    case VerifyFinding::kChainBroken: return "chain_broken";
    case VerifyFinding::kEntryChanged: return "entry_changed";
    case VerifyFinding::kBadSignature: return "bad_signature";
    case VerifyFinding::kMissingSignature: return "missing_signature";
    case VerifyFinding::kAnchorMismatch: return "anchor_mismatch";
    case VerifyFinding::kTruncated: return "truncated";
    case VerifyFinding::kKeyMismatch: return "key_mismatch";
  }
  return "unknown";
}

std::string VerifyResult::Summary() const {
  if (intact()) {
    if (entries_verified == 0) return "intact (empty ledger)";
    return "intact: " + std::to_string(entries_verified) + " entries (sequences " +
           std::to_string(first_sequence) + ".." + std::to_string(last_sequence) + ")";
  }
  if (finding == VerifyFinding::kKeyMismatch) return "public key mismatch: " + detail;
  return "first bad sequence " + std::to_string(first_bad_sequence) + ": " + detail;
}

Result<VerifyResult> VerifyLedger(storage::Database& db, const VerifyOptions& options) {
  VerifyResult r;
  crypto::Blake3Digest prev{};  // entry_hash of the last verified entry; 32 zero bytes before sequence 1
  auto fail = [&r, &prev](VerifyFinding finding, int64_t sequence,
                          std::string detail) -> Result<VerifyResult> {
    if (r.entries_verified > 0) r.last_entry_hash_hex = ToHex(prev);
    r.finding = finding;
    r.first_bad_sequence = sequence;
    r.detail = std::move(detail);
    return r;
  };

  std::optional<crypto::Blake3Digest> anchor_hash;
  if (options.anchor) {
    crypto::Blake3Digest d;
    if (options.anchor->sequence < 1 || !ParseDigest(options.anchor->entry_hash_hex, &d)) {
      return InvalidArgumentError("audit anchor must be a sequence >= 1 and 64 lowercase hex characters");
    }
    anchor_hash = d;
  }
  PublicKey trusted{};
  if (options.trusted_public_key_hex && !ParsePublicKeyHex(*options.trusted_public_key_hex, &trusted)) {
    return InvalidArgumentError("trusted audit public key must be 64 lowercase hex characters");
  }

  ReadSnapshot snapshot(db);
  ASSIGN_OR_RETURN(auto total, db.QueryInt("SELECT count(*) FROM audit_ledger"));
  r.entries_total = total.value_or(0);

  // --- signature policy ---
  ASSIGN_OR_RETURN(storage::Statement meta, db.Prepare("SELECT value FROM system_metadata WHERE key = ?1"));
  auto read_meta = [&](std::string_view key) -> Result<std::optional<std::string>> {
    RETURN_IF_ERROR(meta.BindText(1, key));
    ASSIGN_OR_RETURN(bool row, meta.Step());
    std::optional<std::string> v;
    if (row) v = meta.ColumnText(0);
    meta.Reset();
    return v;
  };
  ASSIGN_OR_RETURN(std::optional<std::string> recorded_key, read_meta(kPublicKeyMetadataKey));
  ASSIGN_OR_RETURN(std::optional<std::string> recorded_from, read_meta(kSignedFromMetadataKey));
  PublicKey key{};
  bool check_signatures = false;
  if (options.trusted_public_key_hex) {
    if (!recorded_key || *recorded_key != *options.trusted_public_key_hex) {
      return fail(VerifyFinding::kKeyMismatch, 0,
                  "the ledger records " +
                      (recorded_key ? "audit_public_key " + QuoteForMessage(*recorded_key)
                                    : std::string("no audit_public_key")) +
                      ", expected the trusted key " + *options.trusted_public_key_hex);
    }
    key = trusted;
    check_signatures = true;
    r.signed_from = 1;  // a trusted key means: signed from the start
  } else if (recorded_key) {
    if (!ParsePublicKeyHex(*recorded_key, &key)) {
      return fail(VerifyFinding::kMalformed, 0,
                  "audit_public_key in system_metadata is not 64 lowercase hex characters");
    }
    check_signatures = true;
    r.signed_from = 1;
    if (recorded_from) {
      auto from = ParseInt64(*recorded_from);
      if (!from || *from < 1) {
        return fail(VerifyFinding::kMalformed, 0,
                    "audit_signed_from in system_metadata is not a sequence number");
      }
      r.signed_from = *from;
    }
  }
  if (check_signatures) r.public_key_hex = ToHex(key);

  // --- the chain ---
  ASSIGN_OR_RETURN(
      storage::Statement st,
      db.Prepare("SELECT sequence, timestamp, actor, action, event_data, payload_hash, prev_hash,"
                 " entry_hash, signature FROM audit_ledger ORDER BY sequence"));
  int64_t expected = 1;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    sqlite3_stmt* raw = st.raw();
    const int64_t seq = st.ColumnInt(kSeq);

    // Types first: SQLite would silently convert (a TEXT timestamp '12abc' reads as 12).
    struct Expect {
      Col col;
      const char* name;
      bool nullable;
      int type;
    };
    static constexpr Expect kTypes[] = {
        {kSeq, "sequence", false, SQLITE_INTEGER}, {kTs, "timestamp", false, SQLITE_INTEGER},
        {kActor, "actor", false, SQLITE_TEXT},     {kAction, "action", false, SQLITE_TEXT},
        {kData, "event_data", false, SQLITE_TEXT}, {kPayload, "payload_hash", false, SQLITE_TEXT},
        {kPrev, "prev_hash", true, SQLITE_TEXT},   {kEntry, "entry_hash", false, SQLITE_TEXT},
        {kSig, "signature", true, SQLITE_TEXT},
    };
    for (const Expect& e : kTypes) {
      const int t = sqlite3_column_type(raw, e.col);
      if (t == e.type || (e.nullable && t == SQLITE_NULL)) continue;
      return fail(VerifyFinding::kMalformed, seq,
                  std::string("malformed entry: ") + e.name + " is " + TypeName(t) + ", expected " +
                      TypeName(e.type) + (e.nullable ? " or NULL" : ""));
    }

    if (seq > expected) {
      return fail(VerifyFinding::kEntryMissing, expected,
                  seq == expected + 1
                      ? "entry missing: the ledger goes from " + std::to_string(expected - 1) + " to " +
                            std::to_string(seq)
                      : "entries missing: " + std::to_string(expected) + ".." + std::to_string(seq - 1) +
                            " are absent (next present entry is " + std::to_string(seq) + ")");
    }
    if (seq < expected) {
      return fail(VerifyFinding::kEntryUnexpected, seq,
                  "unexpected entry: sequence " + std::to_string(seq) + " where " + std::to_string(expected) +
                      " was expected (an inserted or duplicated entry)");
    }

    const int64_t ts = st.ColumnInt(kTs);
    const std::string_view actor = st.ColumnTextView(kActor);
    const std::string_view action = st.ColumnTextView(kAction);
    // event_data may contain NUL bytes: take its length from SQLite, not strlen.
    const std::string_view data = st.ColumnTextView(kData);
    for (auto [name, v] : {std::pair<const char*, std::string_view>{"actor", actor}, {"action", action}}) {
      if (v.empty() || v.find('\0') != std::string_view::npos) {
        // A NUL would let bytes move between actor and action without
        // changing entry_hash; the writer never stores one.
        return fail(
            VerifyFinding::kMalformed, seq,
            std::string("malformed entry: ") + name + (v.empty() ? " is empty" : " contains a NUL byte"));
      }
    }

    crypto::Blake3Digest stored_payload, stored_entry;
    if (!ParseDigest(st.ColumnTextView(kPayload), &stored_payload)) {
      return fail(VerifyFinding::kMalformed, seq,
                  "malformed entry: payload_hash is not 64 lowercase hex characters");
    }
    if (!ParseDigest(st.ColumnTextView(kEntry), &stored_entry)) {
      return fail(VerifyFinding::kMalformed, seq,
                  "malformed entry: entry_hash is not 64 lowercase hex characters");
    }

    const crypto::Blake3Digest payload = PayloadHash(data);
    if (payload != stored_payload) {
      return fail(VerifyFinding::kPayloadChanged, seq,
                  "payload changed: payload_hash does not match event_data");
    }

    if (st.IsNull(kPrev)) {
      if (seq != 1) {
        return fail(VerifyFinding::kChainBroken, seq,
                    "chain broken: prev_hash is NULL (only entry 1 may have no prev_hash)");
      }
    } else {
      const std::string_view prev_text = st.ColumnTextView(kPrev);
      crypto::Blake3Digest stored_prev;
      if (!ParseDigest(prev_text, &stored_prev)) {
        return fail(VerifyFinding::kMalformed, seq,
                    "malformed entry: prev_hash is not 64 lowercase hex characters");
      }
      if (stored_prev != prev) {
        return fail(VerifyFinding::kChainBroken, seq,
                    seq == 1 ? std::string("chain broken: entry 1 must have a NULL or all-zero prev_hash")
                             : "chain broken: prev_hash does not match entry " + std::to_string(seq - 1) +
                                   " (an entry was inserted, removed or reordered here, or entry " +
                                   std::to_string(seq - 1) + " was rewritten)");
      }
    }

    const crypto::Blake3Digest entry = EntryHash(seq, ts, actor, action, payload, prev);
    if (entry != stored_entry) {
      return fail(
          VerifyFinding::kEntryChanged, seq,
          "field changed: entry_hash does not match the entry's sequence, timestamp, actor and action");
    }

    if (st.IsNull(kSig)) {
      if (check_signatures && seq >= r.signed_from) {
        return fail(VerifyFinding::kMissingSignature, seq,
                    "missing signature: entries from " + std::to_string(r.signed_from) +
                        " on must be signed by " + r.public_key_hex);
      }
      ++r.unsigned_entries;
    } else if (check_signatures) {
      Signature sig;
      if (!ParseSignatureHex(st.ColumnTextView(kSig), &sig)) {
        return fail(VerifyFinding::kBadSignature, seq, "bad signature: not 128 lowercase hex characters");
      }
      if (!VerifySignature(key, entry, sig)) {
        return fail(VerifyFinding::kBadSignature, seq,
                    "bad signature: the signature does not verify under public key " + r.public_key_hex);
      }
      ++r.signatures_verified;
    }

    if (anchor_hash && seq == options.anchor->sequence && entry != *anchor_hash) {
      return fail(VerifyFinding::kAnchorMismatch, seq,
                  "anchor mismatch: entry_hash differs from the externally recorded " +
                      options.anchor->entry_hash_hex);
    }

    if (r.entries_verified == 0) r.first_sequence = seq;
    ++r.entries_verified;
    r.last_sequence = seq;
    prev = entry;
    expected = seq + 1;
  }
  if (r.entries_verified > 0) r.last_entry_hash_hex = ToHex(prev);
  if (anchor_hash && r.last_sequence < options.anchor->sequence) {
    return fail(VerifyFinding::kTruncated, r.last_sequence + 1,
                "truncated: the ledger ends at " + std::to_string(r.last_sequence) +
                    " but the external anchor records entry " + std::to_string(options.anchor->sequence));
  }
  return r;
}

Result<VerifyResult> VerifyLedgerFile(const std::string& path, const VerifyOptions& options,
                                      int64_t busy_timeout_ms) {
  ASSIGN_OR_RETURN(auto db, storage::OpenStore(storage::DatabaseKind::kAudit,
                                               {path, storage::OpenMode::kReadOnly, busy_timeout_ms}));
  return VerifyLedger(*db, options);
}

}  // namespace sentinel::audit
