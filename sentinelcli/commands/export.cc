#include "sentinelcli/commands/export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <ostream>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/storage/tables.h"

namespace sentinel::cli {
namespace {

std::string KnownTables() {
  std::vector<std::string> names;
  for (const auto& e : storage::ExportableTables()) names.emplace_back(e.table);
  return Join(names, ", ");
}

}  // namespace

int RunExport(const CommandContext& ctx, const ExportArgs& args) {
  const storage::ExportSpec* spec = storage::FindExportable(args.table);
  if (!spec) {
    return Fail(ctx, InvalidArgumentError("unknown table " + QuoteForMessage(args.table) +
                                          " (expected one of: " + KnownTables() + ")"));
  }
  Format format = Format::kJsonl;
  std::string fmt_name = !args.format.empty() ? args.format : (ctx.global.json ? "json" : ctx.global.format);
  if (!fmt_name.empty()) {
    if (fmt_name == "table") return Fail(ctx, InvalidArgumentError("export formats are jsonl, csv and json"));
    auto f = ParseFormat(fmt_name, /*allow_jsonl=*/true);
    if (!f.ok()) return Fail(ctx, f.status());
    format = *f;
  }
  const int64_t now = NowMs();
  int64_t since = INT64_MIN, until = INT64_MAX;
  if (!args.since.empty()) {
    auto t = ParseTimePoint(args.since, now);
    if (!t.ok()) return Fail(ctx, t.status().WithContext("--since"));
    since = *t;
  }
  if (!args.until.empty()) {
    auto t = ParseTimePoint(args.until, now);
    if (!t.ok()) return Fail(ctx, t.status().WithContext("--until"));
    until = *t;
  }
  if (since > until) return Fail(ctx, InvalidArgumentError("--since is after --until"));

  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());
  std::string sql = "SELECT * FROM " + std::string(spec->table) + " WHERE " + std::string(spec->time_column) +
                    " >= ?1 AND " + std::string(spec->time_column) + " < ?2 ORDER BY " +
                    std::string(spec->order_by);
  auto st = (*db)->Prepare(sql);
  if (!st.ok()) return FailRuntime(ctx, st.status());
  if (Status s = st->BindInt(1, since); !s.ok()) return FailRuntime(ctx, s);
  if (Status s = st->BindInt(2, until); !s.ok()) return FailRuntime(ctx, s);

  // Write to a temporary file beside the target and rename on success, so a
  // failed export never leaves a truncated file under the requested name.
  std::ofstream file;
  std::string tmp;
  std::ostream* out = ctx.out;
  if (!args.output.empty()) {
    tmp = args.output + ".tmp-" + std::to_string(getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) return FailRuntime(ctx, ErrnoError(errno, "--output " + args.output));
    ::close(fd);
    file.open(tmp, std::ios::binary | std::ios::trunc);
    if (!file) {
      ::unlink(tmp.c_str());
      return FailRuntime(ctx, UnavailableError("--output " + args.output + ": cannot open for writing"));
    }
    out = &file;
  }
  auto cleanup = [&] {
    if (!tmp.empty()) {
      file.close();
      ::unlink(tmp.c_str());
    }
  };
  TerminalInfo plain;  // exports never carry colour
  auto writer = MakeRowWriter(format, *out, plain);
  Status s = writer->Begin(StatementColumns(*st));
  int64_t rows = 0;
  while (s.ok()) {
    auto row = st->Step();
    if (!row.ok()) {
      s = row.status();
      break;
    }
    if (!*row) break;
    s = WriteStatementRow(*st, *writer);
    ++rows;
  }
  if (s.ok()) s = writer->End();
  if (!s.ok()) {
    cleanup();
    return FailRuntime(ctx, s);
  }
  if (!tmp.empty()) {
    file.flush();
    file.close();
    if (file.fail() || ::rename(tmp.c_str(), args.output.c_str()) != 0) {
      Status err = ErrnoError(errno, "--output " + args.output);
      ::unlink(tmp.c_str());
      return FailRuntime(ctx, err);
    }
    *ctx.err << "sentinelcli: exported " << rows << " rows from " << spec->table << " to " << args.output
             << "\n";
  }
  return kExitOk;
}

}  // namespace sentinel::cli
