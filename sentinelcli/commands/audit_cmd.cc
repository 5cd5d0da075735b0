#include "sentinelcli/commands/audit_cmd.h"

#include <sqlite3.h>

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/audit/signer.h"
#include "sentinel/audit/verify.h"
#include "sentinel/base/features.h"
#include "sentinel/base/time.h"
#include "sentinel/storage/store.h"

namespace sentinel::cli {
namespace {

// A missing ledger is a runtime failure; say which file and which key.
Status LedgerOpenError(const std::string& path, const Status& s) {
  if (s.code() == StatusCode::kNotFound) {
    return NotFoundError("audit ledger not found: " + path + " (database.audit_path)");
  }
  return s;
}

nlohmann::ordered_json VerifyJson(const std::string& path, const audit::VerifyResult& r) {
  nlohmann::ordered_json j;
  j["path"] = path;
  j["status"] = r.intact() ? "intact" : "tampered";
  if (!r.intact()) {
    j["first_bad_sequence"] = r.first_bad_sequence;
    j["finding"] = std::string(audit::VerifyFindingName(r.finding));
    j["detail"] = r.detail;
  }
  j["entries_total"] = r.entries_total;
  j["entries_verified"] = r.entries_verified;
  j["first_sequence"] = r.first_sequence;
  j["last_sequence"] = r.last_sequence;
  j["last_entry_hash"] = r.last_entry_hash_hex;
  j["signatures_verified"] = r.signatures_verified;
  j["unsigned_entries"] = r.unsigned_entries;
  j["public_key"] = r.public_key_hex;
  j["signed_from"] = r.signed_from;
  return j;
}

void PrintVerifyText(std::ostream& out, const std::string& path, const audit::VerifyResult& r) {
  out << "audit ledger " << path << ": " << (r.intact() ? "intact" : "TAMPERED") << "\n";
  if (!r.intact()) {
    out << r.Summary() << "\n";
    out << "entries verified before it: " << r.entries_verified << " of " << r.entries_total << "\n";
    if (r.entries_verified > 0) {
      out << "last good entry: sequence " << r.last_sequence << ", entry_hash " << r.last_entry_hash_hex
          << "\n";
    }
    return;
  }
  if (r.entries_verified == 0) {
    out << "entries: 0 (empty ledger)\n";
  } else {
    out << "entries: " << r.entries_verified << " (sequences " << r.first_sequence << ".." << r.last_sequence
        << ")\n";
  }
  if (r.public_key_hex.empty()) {
    out << "signatures: not signed (no audit_public_key recorded)\n";
  } else {
    out << "signatures: " << r.signatures_verified << " verified with public key " << r.public_key_hex;
    if (r.unsigned_entries > 0)
      out << "; " << r.unsigned_entries << " unsigned entries before " << r.signed_from;
    out << "\n";
  }
  if (r.entries_verified > 0) {
    out << "last entry: sequence " << r.last_sequence << ", entry_hash " << r.last_entry_hash_hex << "\n";
    out << "note: removal of entries from the end is only detectable against a copy of the last entry kept "
           "elsewhere\n";
  }
}

}  // namespace

int RunAuditVerify(const CommandContext& ctx) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  const auto& dbc = ctx.config.config.database;
  auto progress = MakeProgress(ctx, "verifying audit ledger", "entries", /*streams_to_stdout=*/false);
  audit::VerifyOptions options;
  if (progress->active()) {
    options.on_progress = [&progress](int64_t done, int64_t total) {
      progress->SetTotal(total);
      progress->Update(done);
    };
  }
  auto result = audit::VerifyLedgerFile(dbc.audit_path, options, dbc.busy_timeout_ms);
  progress->Finish();
  if (!result.ok()) return FailRuntime(ctx, LedgerOpenError(dbc.audit_path, result.status()));
  const audit::VerifyResult& r = *result;
  if (*format == Format::kTable) {
    PrintVerifyText(*ctx.out, dbc.audit_path, r);
    ctx.out->flush();
    if (!ctx.out->good()) return FailRuntime(ctx, UnavailableError("writing output failed"));
  } else {
    Status s = WriteObject(*format, *ctx.out, VerifyJson(dbc.audit_path, r), ctx.term);
    if (!s.ok()) return FailRuntime(ctx, s);
  }
  if (!r.intact()) {
    // Also on stderr, so a script that discards stdout still sees why.
    *ctx.err << "sentinelcli: audit ledger " << dbc.audit_path << ": " << r.Summary() << "\n";
    ctx.err->flush();
    return kExitTampered;
  }
  return kExitOk;
}

int RunAuditList(const CommandContext& ctx, int64_t limit) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  if (limit < 0) return Fail(ctx, InvalidArgumentError("--limit must be >= 0 (0 lists every entry)"));
  const auto& dbc = ctx.config.config.database;
  auto db = storage::OpenStore(storage::DatabaseKind::kAudit,
                               {dbc.audit_path, storage::OpenMode::kReadOnly, dbc.busy_timeout_ms});
  if (!db.ok()) return FailRuntime(ctx, LedgerOpenError(dbc.audit_path, db.status()));
  auto st = (*db)->Prepare(
      "SELECT sequence, timestamp, actor, action, event_data, signature IS NOT NULL, entry_hash FROM"
      " (SELECT * FROM audit_ledger ORDER BY sequence DESC LIMIT ?1) ORDER BY sequence");
  if (!st.ok()) return FailRuntime(ctx, st.status());
  Status s = st->BindInt(1, limit == 0 ? -1 : limit);
  if (!s.ok()) return FailRuntime(ctx, s);

  auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
  s = writer->Begin(
      {"sequence", "timestamp", "time", "actor", "action", "event_data", "signed", "entry_hash"});
  if (!s.ok()) return FailRuntime(ctx, s);
  std::vector<Cell> cells(8);
  std::string time;
  while (true) {
    auto row = st->Step();
    if (!row.ok()) {
      writer->End().IgnoreError();
      return FailRuntime(ctx, row.status());
    }
    if (!*row) break;
    // Values come from a file anyone with write access could edit: cells
    // keep their SQL type, and the writer escapes text for the terminal.
    auto cell = [&](int i) {
      switch (st->ColumnType(i)) {
        case SQLITE_INTEGER: return Cell::Integer(st->ColumnInt(i));
        case SQLITE_FLOAT: return Cell::Real(st->ColumnDouble(i));
        case SQLITE_NULL: return Cell::Null();
        case SQLITE_BLOB: return Cell::Blob(st->ColumnTextView(i));
        default: return Cell::Text(st->ColumnTextView(i));
      }
    };
    cells[0] = cell(0);
    cells[1] = cell(1);
    if (st->ColumnType(1) == SQLITE_INTEGER) {
      time = FormatIso8601Ms(st->ColumnInt(1));
      cells[2] = Cell::Text(time);
    } else {
      cells[2] = Cell::Null();
    }
    for (int i = 2; i <= 6; ++i) cells[static_cast<size_t>(i) + 1] = cell(i);
    s = writer->Row(cells);
    if (!s.ok()) return FailRuntime(ctx, s);
  }
  s = writer->End();
  if (!s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

int RunAuditKeygen(const CommandContext& ctx, const std::string& path) {
  // The signer may be built for the fleet alone; audit keys are the audit-signing feature's.
  if (!Built(Feature::kAuditSigning)) {
    return Fail(ctx, UnimplementedError("audit keygen: " + NotBuiltReason(Feature::kAuditSigning)));
  }
  auto pub = audit::GenerateSigningKeyFile(path);
  if (!pub.ok()) {
    const StatusCode c = pub.status().code();
    if (c == StatusCode::kUnimplemented) return Fail(ctx, pub.status());  // built without audit signing
    return c == StatusCode::kAlreadyExists || c == StatusCode::kInvalidArgument
               ? Fail(ctx, InvalidArgumentError(pub.status().message()))
               : FailRuntime(ctx, pub.status());
  }
  *ctx.out << "signing key written to " << path << " (mode 0600)\n"
           << "public key: " << *pub << "\n"
           << "set database.audit_signing_key: " << path
           << " for procmond and sentinelagent; keep a copy of the public key elsewhere to verify with\n";
  return kExitOk;
}

}  // namespace sentinel::cli
