// What every sentinelcli subcommand receives: the global flags, the
// effective configuration and the terminal, plus the exit-code contract of
// SPEC §9 and helpers shared by the commands. Single-threaded.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include "sentinel/audit/trail.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/storage/sqlite.h"
#include "sentinelcli/output/command_line.h"
#include "sentinelcli/output/progress.h"
#include "sentinelcli/output/row_writer.h"

namespace sentinel::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;    // database missing, I/O
inline constexpr int kExitUsage = 2;      // bad usage, configuration, SQL or rule
inline constexpr int kExitTampered = 3;   // audit verify found tampering
inline constexpr int kExitUnhealthy = 4;  // health found a component unhealthy

struct CommandContext {
  GlobalOptions global;
  config::LoadedConfig config;
  TerminalInfo term;  // of stdout
  std::ostream* out;
  std::ostream* err;
  // Where a long command draws its progress line (MakeProgress): stderr,
  // which gets it only when it is a terminal.
  int progress_fd = STDERR_FILENO;
};

// Loads the layered configuration with the global flags applied
// (--database overrides database.path).
Result<config::LoadedConfig> LoadCliConfig(const GlobalOptions& global);

// The output format: --json, else --format, else `fallback`.
Result<Format> ResolveFormat(const GlobalOptions& global, Format fallback, bool allow_jsonl);

// Opens the event store read-only (never creates or changes it).
Result<std::unique_ptr<storage::Database>> OpenEventsReadOnly(const CommandContext& ctx);

// The audit trail of the CLI (actor "sentinelcli"): appends to the ledger
// at database.audit_path only when that file exists (the CLI never creates
// it). A signed ledger (audit_public_key recorded), or one the operator
// cannot write, is appended to through the running sentinelagent
// (agent.sock, "audit-append"): the agent signs the entry and records the
// caller's uid and pid from SO_PEERCRED. An unsigned ledger the operator
// cannot write and no agent gets one warning on stderr and no trail.
std::unique_ptr<audit::AuditTrail> OpenCliTrail(const CommandContext& ctx);

// Before an audited action (query, rules enable/disable/import, alerts dlq
// retry): when the ledger is signed, the agent must be able to append the
// entry, else the action is refused — FailedPrecondition naming the ledger,
// the socket and why (sentinelcli exits 1 and does nothing).
Status RequireCliAudit(const CommandContext& ctx);

// Prints "sentinelcli: <message>" on stderr and returns the exit code for it:
// InvalidArgument and Unimplemented (a feature this build lacks, named in the
// message) -> 2, anything else -> 1.
int Fail(const CommandContext& ctx, const Status& status);
// Same, but always exit code 1 (runtime failure), whatever the status code.
int FailRuntime(const CommandContext& ctx, const Status& status);

// The progress line of a long command (output/progress.h) on
// ctx.progress_fd, drawn only when that is a terminal. `streams_to_stdout`:
// the command prints its result while it works; when stdout is a terminal
// too, those rows are the progress and no line is drawn (it would mix with
// them). Never null; inactive() when nothing will be drawn.
std::unique_ptr<Progress> MakeProgress(const CommandContext& ctx, std::string label, std::string unit,
                                       bool streams_to_stdout);

// Feeds one result row of `stmt` to `writer` (cells point into the statement).
Status WriteStatementRow(storage::Statement& stmt, RowWriter& writer);
std::vector<std::string> StatementColumns(storage::Statement& stmt);

}  // namespace sentinel::cli
