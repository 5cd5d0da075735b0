#include "sentinelcli/commands/context.h"

#include <unistd.h>

#include <ostream>

#include "sentinel/storage/store.h"

namespace sentinel::cli {

Result<config::LoadedConfig> LoadCliConfig(const GlobalOptions& global) {
  config::LoadOptions opts;
  opts.optional_files = config::DefaultFiles();
  if (!global.config_file.empty()) opts.explicit_file = global.config_file;
  opts.environment = config::CurrentEnvironment();
  if (!global.database.empty()) opts.overrides.push_back({"database.path", global.database});
  return config::Load(opts);
}

Result<Format> ResolveFormat(const GlobalOptions& global, Format fallback, bool allow_jsonl) {
  if (global.json) return Format::kJson;
  if (global.format.empty()) return fallback;
  return ParseFormat(global.format, allow_jsonl);
}

Result<std::unique_ptr<storage::Database>> OpenEventsReadOnly(const CommandContext& ctx) {
  const auto& db = ctx.config.config.database;
  return storage::OpenStore(storage::DatabaseKind::kEvents,
                            {db.path, storage::OpenMode::kReadOnly, db.busy_timeout_ms});
}

std::unique_ptr<audit::AuditTrail> OpenCliTrail(const CommandContext& ctx) {
  const auto& db = ctx.config.config.database;
  if (::access(db.audit_path.c_str(), F_OK) != 0) {
    return std::unique_ptr<audit::AuditTrail>();
  }
  if (::access(db.audit_path.c_str(), W_OK) != 0) {
    *ctx.err << "sentinelcli: warning: audit ledger " << db.audit_path
             << " is not writable by this user; this action is not recorded in it\n";
    return std::unique_ptr<audit::AuditTrail>();
  }
  auto trail = audit::AuditTrail::Open("sentinelcli", {db.audit_path, db.busy_timeout_ms});
  if (!trail.ok()) {
    *ctx.err << "sentinelcli: warning: audit ledger: " << trail.status().message()
             << "; this action is not recorded in it\n";
    return std::unique_ptr<audit::AuditTrail>();
  }
  return std::move(*trail);
}

int Fail(const CommandContext& ctx, const Status& status) {
  *ctx.err << "sentinelcli: " << status.message() << "\n";
  ctx.err->flush();
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime;
}

int FailRuntime(const CommandContext& ctx, const Status& status) {
  Fail(ctx, status);
  return kExitRuntime;
}

std::vector<std::string> StatementColumns(storage::Statement& stmt) {
  std::vector<std::string> cols;
  for (int i = 0; i < stmt.ColumnCount(); ++i) cols.push_back(stmt.ColumnName(i));
  return cols;
}

Status WriteStatementRow(storage::Statement& stmt, RowWriter& writer) {
  thread_local std::vector<Cell> cells;
  const int n = stmt.ColumnCount();
  cells.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    sqlite3_stmt* raw = stmt.raw();
    switch (sqlite3_column_type(raw, i)) {
      case SQLITE_INTEGER: cells[static_cast<size_t>(i)] = Cell::Integer(sqlite3_column_int64(raw, i)); break;
      case SQLITE_FLOAT: cells[static_cast<size_t>(i)] = Cell::Real(sqlite3_column_double(raw, i)); break;
      case SQLITE_TEXT: cells[static_cast<size_t>(i)] = Cell::Text(stmt.ColumnTextView(i)); break;
      case SQLITE_BLOB: {
        const void* p = sqlite3_column_blob(raw, i);
        int len = sqlite3_column_bytes(raw, i);
        cells[static_cast<size_t>(i)] =
            Cell::Blob(std::string_view(static_cast<const char*>(p), static_cast<size_t>(len)));
        break;
      }
      default: cells[static_cast<size_t>(i)] = Cell::Null(); break;
    }
  }
  return writer.Row(cells);
}

}  // namespace sentinel::cli
