#include "sentinel/audit/ledger.h"

#include <optional>
#include <utility>

#include "sentinel/base/hex.h"
#include "sentinel/base/strings.h"
#include "sentinel/storage/store.h"

namespace sentinel::audit {
namespace {

void PutBe64(uint8_t* p, int64_t value) {
  // Two's complement for the (never expected) negative timestamp.
  const uint64_t v = static_cast<uint64_t>(value);
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}

}  // namespace

crypto::Blake3Digest PayloadHash(std::string_view event_data) {
  return crypto::Blake3(event_data);
}

std::string EntryPreimage(int64_t sequence, int64_t timestamp_ms, std::string_view actor,
                          std::string_view action, const crypto::Blake3Digest& payload_hash,
                          const crypto::Blake3Digest& prev) {
  std::string out;
  out.reserve(16 + actor.size() + action.size() + 2 + payload_hash.size() + prev.size());
  uint8_t header[16];
  PutBe64(header, sequence);
  PutBe64(header + 8, timestamp_ms);
  out.append(reinterpret_cast<const char*>(header), sizeof header);
  out.append(actor);
  out.push_back('\0');
  out.append(action);
  out.push_back('\0');
  out.append(reinterpret_cast<const char*>(payload_hash.data()), payload_hash.size());
  out.append(reinterpret_cast<const char*>(prev.data()), prev.size());
  return out;
}

crypto::Blake3Digest EntryHash(int64_t sequence, int64_t timestamp_ms, std::string_view actor,
                               std::string_view action, const crypto::Blake3Digest& payload_hash,
                               const crypto::Blake3Digest& prev) {
  // Same bytes as EntryPreimage, fed piecewise so the verifier's hot loop
  // does not allocate.
  static constexpr char kNul = '\0';
  uint8_t header[16];
  PutBe64(header, sequence);
  PutBe64(header + 8, timestamp_ms);
  crypto::Blake3Hasher h;
  h.Update(header, sizeof header);
  h.Update(actor);
  h.Update(&kNul, 1);
  h.Update(action);
  h.Update(&kNul, 1);
  h.Update(payload_hash.data(), payload_hash.size());
  h.Update(prev.data(), prev.size());
  return h.Finalize();
}

Status ValidateEntryFields(std::string_view actor, std::string_view action, std::string_view event_data) {
  auto check_name = [](std::string_view what, std::string_view v) -> Status {
    if (v.empty()) return InvalidArgumentError(std::string("audit entry ") + std::string(what) + " is empty");
    if (v.find('\0') != std::string_view::npos) {
      return InvalidArgumentError(std::string("audit entry ") + std::string(what) + " contains a NUL byte");
    }
    if (!IsValidUtf8(v)) {
      return InvalidArgumentError(std::string("audit entry ") + std::string(what) + " is not valid UTF-8");
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(check_name("actor", actor));
  RETURN_IF_ERROR(check_name("action", action));
  if (!IsValidUtf8(event_data)) return InvalidArgumentError("audit entry event_data is not valid UTF-8");
  return Status::Ok();
}

Result<std::string> CanonicalEventData(const nlohmann::json& data) {
  try {
    return data.dump();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("audit event data cannot be encoded as JSON: ") + e.what());
  }
}

struct AuditLedger::Statements {
  storage::Statement get_key;
  storage::Statement tail;
  storage::Statement insert;
  storage::Statement put_meta;
};

AuditLedger::AuditLedger(std::unique_ptr<storage::Database> db, const LedgerOptions& options)
    : db_(std::move(db)),
      clock_(options.clock ? options.clock : &Clock::Real()),
      signer_(options.signer),
      st_(std::make_unique<Statements>()) {
  if (signer_) public_key_hex_ = signer_->PublicKeyHex();
}

AuditLedger::~AuditLedger() = default;

Result<std::unique_ptr<AuditLedger>> AuditLedger::Open(const LedgerOptions& options) {
  ASSIGN_OR_RETURN(
      auto db, storage::OpenStore(storage::DatabaseKind::kAudit,
                                  {options.path, storage::OpenMode::kReadWrite, options.busy_timeout_ms}));
  std::unique_ptr<AuditLedger> ledger(new AuditLedger(std::move(db), options));
  RETURN_IF_ERROR(ledger->Prepare());
  if (ledger->signer_) RETURN_IF_ERROR(ledger->RegisterPublicKey().WithContext(options.path));
  return ledger;
}

Status AuditLedger::Prepare() {
  ASSIGN_OR_RETURN(st_->get_key, db_->Prepare("SELECT value FROM system_metadata WHERE key = ?1"));
  RETURN_IF_ERROR(st_->get_key.BindText(1, kPublicKeyMetadataKey));
  ASSIGN_OR_RETURN(
      st_->tail,
      db_->Prepare("SELECT sequence, entry_hash FROM audit_ledger ORDER BY sequence DESC LIMIT 1"));
  ASSIGN_OR_RETURN(
      st_->insert,
      db_->Prepare("INSERT INTO audit_ledger(sequence, timestamp, actor, action, event_data, payload_hash,"
                   " prev_hash, entry_hash, signature) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  ASSIGN_OR_RETURN(st_->put_meta,
                   db_->Prepare("INSERT INTO system_metadata(key, value, updated_at_ms) VALUES(?1, ?2, ?3)"
                                " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                                " updated_at_ms = excluded.updated_at_ms"));
  return Status::Ok();
}

namespace {

// Reads the recorded public key (inside the caller's transaction). The bound
// key parameter survives sqlite3_reset, so the statement is only reset here.
Result<std::optional<std::string>> ReadPublicKey(storage::Statement& get_key) {
  auto row = get_key.Step();
  if (!row.ok()) return row.status();
  std::optional<std::string> value;
  if (*row) value = get_key.ColumnText(0);
  sqlite3_reset(get_key.raw());
  return value;
}

}  // namespace

Status AuditLedger::RegisterPublicKey() {
  ASSIGN_OR_RETURN(storage::Transaction tx, storage::Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(std::optional<std::string> recorded, ReadPublicKey(st_->get_key));
  if (recorded) {
    if (*recorded != public_key_hex_) {
      return FailedPreconditionError("the audit ledger is signed with another key (audit_public_key " +
                                     QuoteForMessage(*recorded) + ", this signing key's public key " +
                                     public_key_hex_ + ")");
    }
    return Status::Ok();  // nothing written; the transaction rolls back
  }
  ASSIGN_OR_RETURN(bool has_tail, st_->tail.Step());
  const int64_t signed_from = has_tail ? st_->tail.ColumnInt(0) + 1 : 1;
  st_->tail.Reset();
  const int64_t now = clock_->NowMs();
  auto put = [&](std::string_view key, std::string_view value) -> Status {
    RETURN_IF_ERROR(st_->put_meta.BindText(1, key));
    RETURN_IF_ERROR(st_->put_meta.BindText(2, value));
    RETURN_IF_ERROR(st_->put_meta.BindInt(3, now));
    return st_->put_meta.Run();
  };
  RETURN_IF_ERROR(put(kPublicKeyMetadataKey, public_key_hex_));
  RETURN_IF_ERROR(put(kSignedFromMetadataKey, std::to_string(signed_from)));
  return tx.Commit();
}

Result<Appended> AuditLedger::Append(std::string_view actor, std::string_view action,
                                     const nlohmann::json& data) {
  ASSIGN_OR_RETURN(std::string event_data, CanonicalEventData(data));
  return AppendRaw(actor, action, event_data);
}

Result<Appended> AuditLedger::AppendRaw(std::string_view actor, std::string_view action,
                                        std::string_view event_data) {
  RETURN_IF_ERROR(ValidateEntryFields(actor, action, event_data));
  AuditEvent e{std::string(actor), std::string(action), std::string(event_data)};
  return AppendValidated(std::span<const AuditEvent>(&e, 1));
}

Result<Appended> AuditLedger::AppendBatch(std::span<const AuditEvent> events) {
  if (events.empty()) return InvalidArgumentError("empty audit batch");
  for (size_t i = 0; i < events.size(); ++i) {
    Status s = ValidateEntryFields(events[i].actor, events[i].action, events[i].event_data);
    if (!s.ok()) return s.WithContext("audit batch entry " + std::to_string(i));
  }
  return AppendValidated(events);
}

Result<Appended> AuditLedger::AppendValidated(std::span<const AuditEvent> events) {
  // BEGIN IMMEDIATE takes the write lock before the tail is read, so no other
  // writer can take the same sequence; it waits up to the busy timeout.
  auto tx_or = storage::Transaction::Begin(*db_);
  if (!tx_or.ok()) return tx_or.status().WithContext("appending to audit ledger " + db_->path());
  storage::Transaction tx = std::move(tx_or).value();

  ASSIGN_OR_RETURN(std::optional<std::string> recorded, ReadPublicKey(st_->get_key));
  if (recorded && !signer_) {
    return FailedPreconditionError(db_->path() +
                                   ": the audit ledger is signed (audit_public_key is set) but no "
                                   "signing key was given; refusing to append unsigned entries");
  }
  if (recorded && *recorded != public_key_hex_) {
    return FailedPreconditionError(db_->path() +
                                   ": the audit ledger is signed with another key (audit_public_key " +
                                   QuoteForMessage(*recorded) + "); refusing to append");
  }

  ASSIGN_OR_RETURN(bool has_tail, st_->tail.Step());
  int64_t sequence = 0;
  crypto::Blake3Digest prev{};  // 32 zero bytes before sequence 1
  if (has_tail) {
    sequence = st_->tail.ColumnInt(0);
    const bool parsed = FromLowerHex(st_->tail.ColumnTextView(1), prev);
    st_->tail.Reset();
    if (!parsed) {
      return DataLossError(
          db_->path() + ": audit ledger entry " + std::to_string(sequence) +
          " has a malformed entry_hash; nothing can be chained to it (run sentinelcli audit verify)");
    }
  } else {
    st_->tail.Reset();
  }

  Appended out;
  out.timestamp_ms = clock_->NowMs();
  out.first_sequence = sequence + 1;
  storage::Statement& ins = st_->insert;
  for (const AuditEvent& e : events) {
    ++sequence;
    const crypto::Blake3Digest payload = PayloadHash(e.event_data);
    const crypto::Blake3Digest entry =
        EntryHash(sequence, out.timestamp_ms, e.actor, e.action, payload, prev);
    RETURN_IF_ERROR(ins.BindInt(1, sequence));
    RETURN_IF_ERROR(ins.BindInt(2, out.timestamp_ms));
    RETURN_IF_ERROR(ins.BindText(3, e.actor));
    RETURN_IF_ERROR(ins.BindText(4, e.action));
    RETURN_IF_ERROR(ins.BindText(5, e.event_data));
    RETURN_IF_ERROR(ins.BindText(6, ToHex(payload)));
    if (sequence == 1) {
      RETURN_IF_ERROR(ins.BindNull(7));
    } else {
      RETURN_IF_ERROR(ins.BindText(7, ToHex(prev)));
    }
    RETURN_IF_ERROR(ins.BindText(8, ToHex(entry)));
    if (signer_) {
      RETURN_IF_ERROR(ins.BindText(9, ToHex(signer_->Sign(entry))));
    } else {
      RETURN_IF_ERROR(ins.BindNull(9));
    }
    Status s = ins.Run();
    if (!s.ok())
      return s.WithContext("appending audit entry " + std::to_string(sequence) + " to " + db_->path());
    prev = entry;
  }
  Status s = tx.Commit();
  if (!s.ok()) return s.WithContext("committing audit entries to " + db_->path());
  out.last_sequence = sequence;
  out.last_entry_hash = prev;
  return out;
}

Result<std::string> RecordedPublicKeyHex(storage::Database& db) {
  ASSIGN_OR_RETURN(storage::Statement st, db.Prepare("SELECT value FROM system_metadata WHERE key = ?1"));
  RETURN_IF_ERROR(st.BindText(1, kPublicKeyMetadataKey));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::string();
  return st.ColumnText(0);
}

}  // namespace sentinel::audit
