#include "sentinelcli/commands/context.h"

#include <unistd.h>

#include <ostream>
#include <span>

#include "sentinel/audit/ledger.h"
#include "sentinel/config/bootstrap.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/storage/store.h"

namespace sentinel::cli {

Result<config::LoadedConfig> LoadCliConfig(const GlobalOptions& global) {
  return config::LoadProgramConfig({global.config_file, {{"database.path", global.database}}});
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

std::unique_ptr<Progress> MakeProgress(const CommandContext& ctx, std::string label, std::string unit,
                                       bool streams_to_stdout) {
  const bool rows_on_screen = streams_to_stdout && ctx.term.is_tty;
  return std::make_unique<Progress>(Progress::Options{
      .fd = rows_on_screen ? -1 : ctx.progress_fd, .label = std::move(label), .unit = std::move(unit)});
}

namespace {

constexpr int64_t kAgentAuditTimeoutMs = 5000;

std::string AgentSocket(const CommandContext& ctx) {
  return ipc::SocketPath(ctx.config.config.ipc.socket_dir, ipc::kAgentSocket);
}

// Whether the ledger records a signing key (read-only; false when it cannot be read).
bool LedgerIsSigned(const CommandContext& ctx) {
  const auto& db = ctx.config.config.database;
  auto store = storage::OpenStore(storage::DatabaseKind::kAudit,
                                  {db.audit_path, storage::OpenMode::kReadOnly, db.busy_timeout_ms});
  if (!store.ok()) return false;
  auto key = audit::RecordedPublicKeyHex(**store);
  return key.ok() && !key->empty();
}

// One audit-append request to the agent.
Status AskAgent(const std::string& socket, const nlohmann::json& args) {
  auto reply = ipc::Call(socket, "audit-append", args, kAgentAuditTimeoutMs);
  if (!reply.ok()) return reply.status();
  if (!reply->value("ok", false)) {
    return FailedPreconditionError(reply->value("error", std::string("the agent refused the entry")));
  }
  return Status::Ok();
}

std::unique_ptr<audit::AuditTrail> ThroughAgent(const std::string& socket) {
  return audit::AuditTrail::Forwarding("sentinelcli", [socket](std::span<const audit::AuditEvent> batch) {
    nlohmann::json entries = nlohmann::json::array();
    for (const audit::AuditEvent& e : batch) {
      auto data = nlohmann::json::parse(e.event_data, nullptr, /*allow_exceptions=*/false);
      entries.push_back({{"action", e.action}, {"data", data.is_discarded() ? nlohmann::json() : data}});
    }
    return AskAgent(socket, {{"entries", entries}});
  });
}

}  // namespace

Status RequireCliAudit(const CommandContext& ctx) {
  const auto& db = ctx.config.config.database;
  if (::access(db.audit_path.c_str(), F_OK) != 0 || !LedgerIsSigned(ctx)) return Status::Ok();
  const std::string socket = AgentSocket(ctx);
  Status s = AskAgent(socket, {{"check", true}});
  if (s.ok()) return s;
  return FailedPreconditionError("audit ledger " + db.audit_path +
                                 " is signed, and sentinelcli records its actions there only through "
                                 "sentinelagent (" +
                                 socket + "): " + s.message() + "; nothing was done");
}

std::unique_ptr<audit::AuditTrail> OpenCliTrail(const CommandContext& ctx) {
  const auto& db = ctx.config.config.database;
  if (::access(db.audit_path.c_str(), F_OK) != 0) {
    return std::unique_ptr<audit::AuditTrail>();
  }
  const bool writable = ::access(db.audit_path.c_str(), W_OK) == 0;
  if (!writable || LedgerIsSigned(ctx)) {
    const std::string socket = AgentSocket(ctx);
    Status s = AskAgent(socket, {{"check", true}});
    if (s.ok()) return ThroughAgent(socket);
    *ctx.err << "sentinelcli: warning: audit ledger " << db.audit_path
             << (writable ? " is signed" : " is not writable by this user")
             << " and sentinelagent cannot record for this user (" << s.message()
             << "); this action is not recorded in it\n";
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
  const StatusCode code = status.code();
  return code == StatusCode::kInvalidArgument || code == StatusCode::kUnimplemented ? kExitUsage
                                                                                    : kExitRuntime;
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
