#include "sentinel/audit/verify.h"

#include <sqlite3.h>

#include <optional>
#include <string>
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

namespace {

// What is wrong, at which sequence, in words.
struct Finding {
  VerifyFinding finding;
  int64_t sequence;
  std::string detail;
};
using Check = std::optional<Finding>;

Check Malformed(int64_t seq, std::string detail) {
  return Finding{VerifyFinding::kMalformed, seq, std::move(detail)};
}

// Types first: SQLite would silently convert (a TEXT timestamp '12abc' reads as 12).
Check CheckColumnTypes(sqlite3_stmt* raw, int64_t seq) {
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
    return Malformed(seq, std::string("malformed entry: ") + e.name + " is " + TypeName(t) + ", expected " +
                              TypeName(e.type) + (e.nullable ? " or NULL" : ""));
  }
  return std::nullopt;
}

Check CheckSequence(int64_t seq, int64_t expected) {
  if (seq > expected) {
    return Finding{VerifyFinding::kEntryMissing, expected,
                   seq == expected + 1
                       ? "entry missing: the ledger goes from " + std::to_string(expected - 1) + " to " +
                             std::to_string(seq)
                       : "entries missing: " + std::to_string(expected) + ".." + std::to_string(seq - 1) +
                             " are absent (next present entry is " + std::to_string(seq) + ")"};
  }
  if (seq < expected) {
    return Finding{VerifyFinding::kEntryUnexpected, seq,
                   "unexpected entry: sequence " + std::to_string(seq) + " where " +
                       std::to_string(expected) + " was expected (an inserted or duplicated entry)"};
  }
  return std::nullopt;
}

// One ledger row, its column types checked; valid until the next Step().
struct Row {
  int64_t seq = 0;
  int64_t ts = 0;
  std::string_view actor, action, data, payload_hash, entry_hash;
  std::optional<std::string_view> prev_hash, signature;
};

Row ReadRow(const storage::Statement& st) {
  Row row;
  row.seq = st.ColumnInt(kSeq);
  row.ts = st.ColumnInt(kTs);
  row.actor = st.ColumnTextView(kActor);
  row.action = st.ColumnTextView(kAction);
  // event_data may contain NUL bytes: take its length from SQLite, not strlen.
  row.data = st.ColumnTextView(kData);
  row.payload_hash = st.ColumnTextView(kPayload);
  row.entry_hash = st.ColumnTextView(kEntry);
  if (!st.IsNull(kPrev)) row.prev_hash = st.ColumnTextView(kPrev);
  if (!st.IsNull(kSig)) row.signature = st.ColumnTextView(kSig);
  return row;
}

Check CheckNames(const Row& row) {
  for (auto [name, v] :
       {std::pair<const char*, std::string_view>{"actor", row.actor}, {"action", row.action}}) {
    if (v.empty() || v.find('\0') != std::string_view::npos) {
      // A NUL would let bytes move between actor and action without
      // changing entry_hash; the writer never stores one.
      return Malformed(row.seq, std::string("malformed entry: ") + name +
                                    (v.empty() ? " is empty" : " contains a NUL byte"));
    }
  }
  return std::nullopt;
}

// Walks the ledger in sequence order and stops at the first finding.
class LedgerVerifier {
 public:
  explicit LedgerVerifier(const VerifyOptions& options) : options_(options) {}

  Result<VerifyResult> Run(storage::Database& db) {
    RETURN_IF_ERROR(ParseOptions());
    ReadSnapshot snapshot(db);
    ASSIGN_OR_RETURN(auto total, db.QueryInt("SELECT count(*) FROM audit_ledger"));
    r_.entries_total = total.value_or(0);
    ASSIGN_OR_RETURN(Check bad, LoadSignaturePolicy(db));
    if (!bad) {
      ASSIGN_OR_RETURN(bad, WalkChain(db));
    }
    if (!bad) bad = CheckNotTruncated();
    if (r_.entries_verified > 0) r_.last_entry_hash_hex = ToHex(prev_);
    if (bad) {
      r_.finding = bad->finding;
      r_.first_bad_sequence = bad->sequence;
      r_.detail = std::move(bad->detail);
    }
    return r_;
  }

 private:
  Status ParseOptions() {
    if (options_.anchor) {
      crypto::Blake3Digest d;
      if (options_.anchor->sequence < 1 || !ParseDigest(options_.anchor->entry_hash_hex, &d)) {
        return InvalidArgumentError("audit anchor must be a sequence >= 1 and 64 lowercase hex characters");
      }
      anchor_hash_ = d;
    }
    if (options_.trusted_public_key_hex && !ParsePublicKeyHex(*options_.trusted_public_key_hex, &trusted_)) {
      return InvalidArgumentError("trusted audit public key must be 64 lowercase hex characters");
    }
    return Status::Ok();
  }

  // The key signatures are checked against: the trusted one (which the
  // ledger must record), else the one the ledger records, if any.
  Result<Check> LoadSignaturePolicy(storage::Database& db) {
    ASSIGN_OR_RETURN(storage::Statement meta, db.Prepare("SELECT value FROM system_metadata WHERE key = ?1"));
    auto read_meta = [&meta](std::string_view key) -> Result<std::optional<std::string>> {
      RETURN_IF_ERROR(meta.BindText(1, key));
      ASSIGN_OR_RETURN(bool row, meta.Step());
      std::optional<std::string> v;
      if (row) v = meta.ColumnText(0);
      meta.Reset();
      return v;
    };
    ASSIGN_OR_RETURN(std::optional<std::string> recorded_key, read_meta(kPublicKeyMetadataKey));
    ASSIGN_OR_RETURN(std::optional<std::string> recorded_from, read_meta(kSignedFromMetadataKey));
    Check bad;
    if (options_.trusted_public_key_hex) {
      bad = UseTrustedKey(recorded_key);
    } else if (recorded_key) {
      bad = UseRecordedKey(*recorded_key, recorded_from);
    }
    if (!bad && check_signatures_) r_.public_key_hex = ToHex(key_);
    return bad;
  }

  Check UseTrustedKey(const std::optional<std::string>& recorded_key) {
    if (!recorded_key || *recorded_key != *options_.trusted_public_key_hex) {
      return Finding{VerifyFinding::kKeyMismatch, 0,
                     "the ledger records " +
                         (recorded_key ? "audit_public_key " + QuoteForMessage(*recorded_key)
                                       : std::string("no audit_public_key")) +
                         ", expected the trusted key " + *options_.trusted_public_key_hex};
    }
    key_ = trusted_;
    check_signatures_ = true;
    r_.signed_from = 1;  // a trusted key means: signed from the start
    return std::nullopt;
  }

  Check UseRecordedKey(const std::string& recorded_key, const std::optional<std::string>& recorded_from) {
    if (!ParsePublicKeyHex(recorded_key, &key_)) {
      return Malformed(0, "audit_public_key in system_metadata is not 64 lowercase hex characters");
    }
    check_signatures_ = true;
    r_.signed_from = 1;
    if (recorded_from) {
      auto from = ParseInt64(*recorded_from);
      if (!from || *from < 1)
        return Malformed(0, "audit_signed_from in system_metadata is not a sequence number");
      r_.signed_from = *from;
    }
    return std::nullopt;
  }

  void ReportProgress(int64_t walked) const {
    if (options_.on_progress) options_.on_progress(walked, r_.entries_total);
  }

  Result<Check> WalkChain(storage::Database& db) {
    ASSIGN_OR_RETURN(
        storage::Statement st,
        db.Prepare("SELECT sequence, timestamp, actor, action, event_data, payload_hash, prev_hash,"
                   " entry_hash, signature FROM audit_ledger ORDER BY sequence"));
    int64_t expected = 1;
    int64_t walked = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) {
        ReportProgress(walked);
        return Check();
      }
      const int64_t seq = st.ColumnInt(kSeq);
      Check bad = CheckColumnTypes(st.raw(), seq);
      if (!bad) bad = CheckSequence(seq, expected);
      if (!bad) bad = VerifyRow(ReadRow(st));
      if (bad) return bad;
      expected = seq + 1;
      if (++walked % kVerifyProgressEvery == 0) ReportProgress(walked);
    }
  }

  // One entry in its place: names, hashes, chain link, signature, anchor.
  Check VerifyRow(const Row& row) {
    if (Check bad = CheckNames(row)) return bad;
    crypto::Blake3Digest entry;
    if (Check bad = CheckHashes(row, &entry)) return bad;
    if (Check bad = CheckSignature(row, entry)) return bad;
    if (anchor_hash_ && row.seq == options_.anchor->sequence && entry != *anchor_hash_) {
      return Finding{VerifyFinding::kAnchorMismatch, row.seq,
                     "anchor mismatch: entry_hash differs from the externally recorded " +
                         options_.anchor->entry_hash_hex};
    }
    if (r_.entries_verified == 0) r_.first_sequence = row.seq;
    ++r_.entries_verified;
    r_.last_sequence = row.seq;
    prev_ = entry;
    return std::nullopt;
  }

  // payload_hash over event_data, the link to the previous entry, and
  // entry_hash over the fields (returned in *entry).
  Check CheckHashes(const Row& row, crypto::Blake3Digest* entry) {
    crypto::Blake3Digest stored_payload, stored_entry;
    if (!ParseDigest(row.payload_hash, &stored_payload)) {
      return Malformed(row.seq, "malformed entry: payload_hash is not 64 lowercase hex characters");
    }
    if (!ParseDigest(row.entry_hash, &stored_entry)) {
      return Malformed(row.seq, "malformed entry: entry_hash is not 64 lowercase hex characters");
    }
    const crypto::Blake3Digest payload = PayloadHash(row.data);
    if (payload != stored_payload) {
      return Finding{VerifyFinding::kPayloadChanged, row.seq,
                     "payload changed: payload_hash does not match event_data"};
    }
    if (Check bad = CheckPrev(row)) return bad;
    *entry = EntryHash(row.seq, row.ts, row.actor, row.action, payload, prev_);
    if (*entry != stored_entry) {
      return Finding{
          VerifyFinding::kEntryChanged, row.seq,
          "field changed: entry_hash does not match the entry's sequence, timestamp, actor and action"};
    }
    return std::nullopt;
  }

  Check CheckPrev(const Row& row) const {
    if (!row.prev_hash) {
      if (row.seq == 1) return std::nullopt;
      return Finding{VerifyFinding::kChainBroken, row.seq,
                     "chain broken: prev_hash is NULL (only entry 1 may have no prev_hash)"};
    }
    crypto::Blake3Digest stored_prev;
    if (!ParseDigest(*row.prev_hash, &stored_prev)) {
      return Malformed(row.seq, "malformed entry: prev_hash is not 64 lowercase hex characters");
    }
    if (stored_prev == prev_) return std::nullopt;
    return Finding{VerifyFinding::kChainBroken, row.seq,
                   row.seq == 1
                       ? std::string("chain broken: entry 1 must have a NULL or all-zero prev_hash")
                       : "chain broken: prev_hash does not match entry " + std::to_string(row.seq - 1) +
                             " (an entry was inserted, removed or reordered here, or entry " +
                             std::to_string(row.seq - 1) + " was rewritten)"};
  }

  Check CheckSignature(const Row& row, const crypto::Blake3Digest& entry) {
    if (!row.signature) {
      if (check_signatures_ && row.seq >= r_.signed_from) {
        return Finding{VerifyFinding::kMissingSignature, row.seq,
                       "missing signature: entries from " + std::to_string(r_.signed_from) +
                           " on must be signed by " + r_.public_key_hex};
      }
      ++r_.unsigned_entries;
      return std::nullopt;
    }
    if (!check_signatures_) return std::nullopt;
    Signature sig;
    if (!ParseSignatureHex(*row.signature, &sig)) {
      return Finding{VerifyFinding::kBadSignature, row.seq,
                     "bad signature: not 128 lowercase hex characters"};
    }
    if (!VerifySignature(key_, entry, sig)) {
      return Finding{VerifyFinding::kBadSignature, row.seq,
                     "bad signature: the signature does not verify under public key " + r_.public_key_hex};
    }
    ++r_.signatures_verified;
    return std::nullopt;
  }

  Check CheckNotTruncated() const {
    if (!anchor_hash_ || r_.last_sequence >= options_.anchor->sequence) return std::nullopt;
    return Finding{VerifyFinding::kTruncated, r_.last_sequence + 1,
                   "truncated: the ledger ends at " + std::to_string(r_.last_sequence) +
                       " but the external anchor records entry " + std::to_string(options_.anchor->sequence)};
  }

  const VerifyOptions& options_;
  VerifyResult r_;
  crypto::Blake3Digest prev_{};  // entry_hash of the last verified entry; 32 zero bytes before sequence 1
  std::optional<crypto::Blake3Digest> anchor_hash_;
  PublicKey trusted_{};
  PublicKey key_{};
  bool check_signatures_ = false;
};

}  // namespace

Result<VerifyResult> VerifyLedger(storage::Database& db, const VerifyOptions& options) {
  return LedgerVerifier(options).Run(db);
}

Result<VerifyResult> VerifyLedgerFile(const std::string& path, const VerifyOptions& options,
                                      int64_t busy_timeout_ms) {
  ASSIGN_OR_RETURN(auto db, storage::OpenStore(storage::DatabaseKind::kAudit,
                                               {path, storage::OpenMode::kReadOnly, busy_timeout_ms}));
  return VerifyLedger(*db, options);
}

}  // namespace sentinel::audit
