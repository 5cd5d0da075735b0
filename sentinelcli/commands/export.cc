#include "sentinelcli/commands/export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
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

// --format, else --json / the global --format; jsonl when none is given.
Result<Format> ExportFormat(const CommandContext& ctx, const ExportArgs& args) {
  std::string fmt_name = !args.format.empty() ? args.format : (ctx.global.json ? "json" : ctx.global.format);
  if (fmt_name.empty()) return Format::kJsonl;
  if (fmt_name == "table") return InvalidArgumentError("export formats are jsonl, csv and json");
  return ParseFormat(fmt_name, /*allow_jsonl=*/true);
}

// [since, until) in epoch ms; unbounded ends when not given.
struct TimeRange {
  int64_t since = INT64_MIN;
  int64_t until = INT64_MAX;
};

Result<TimeRange> ParseRange(const ExportArgs& args) {
  const int64_t now = NowMs();
  TimeRange range;
  if (!args.since.empty()) {
    auto t = ParseTimePoint(args.since, now);
    if (!t.ok()) return t.status().WithContext("--since");
    range.since = *t;
  }
  if (!args.until.empty()) {
    auto t = ParseTimePoint(args.until, now);
    if (!t.ok()) return t.status().WithContext("--until");
    range.until = *t;
  }
  if (range.since > range.until) return InvalidArgumentError("--since is after --until");
  return range;
}

Result<storage::Statement> PrepareExport(storage::Database& db, const storage::ExportSpec& spec,
                                         const TimeRange& range) {
  std::string sql = "SELECT * FROM " + std::string(spec.table) + " WHERE " + std::string(spec.time_column) +
                    " >= ?1 AND " + std::string(spec.time_column) + " < ?2 ORDER BY " +
                    std::string(spec.order_by);
  ASSIGN_OR_RETURN(auto st, db.Prepare(sql));
  RETURN_IF_ERROR(st.BindInt(1, range.since));
  RETURN_IF_ERROR(st.BindInt(2, range.until));
  return st;
}

// --output FILE: written to a temporary file beside FILE and renamed over it
// by Commit, so a failed export never leaves a truncated file under the
// requested name. Not committed: the temporary file is removed.
class OutputFile {
 public:
  explicit OutputFile(std::string target)
      : target_(std::move(target)), tmp_(target_ + ".tmp-" + std::to_string(getpid())) {}
  ~OutputFile() {
    if (!open_) return;
    file_.close();
    ::unlink(tmp_.c_str());
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  Status Open() {
    int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) return ErrnoError(errno, "--output " + target_);
    ::close(fd);
    file_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!file_) {
      ::unlink(tmp_.c_str());
      return UnavailableError("--output " + target_ + ": cannot open for writing");
    }
    open_ = true;
    return Status::Ok();
  }
  std::ostream& stream() { return file_; }
  Status Commit() {
    open_ = false;
    file_.flush();
    file_.close();
    if (file_.fail() || ::rename(tmp_.c_str(), target_.c_str()) != 0) {
      Status err = ErrnoError(errno, "--output " + target_);
      ::unlink(tmp_.c_str());
      return err;
    }
    return Status::Ok();
  }

 private:
  const std::string target_;
  const std::string tmp_;
  std::ofstream file_;
  bool open_ = false;
};

// Every row of `st` through a writer of `format` (never coloured).
Status WriteRows(storage::Statement& st, Format format, std::ostream& out, Progress& progress,
                 int64_t* rows) {
  TerminalInfo plain;  // exports never carry colour
  auto writer = MakeRowWriter(format, out, plain);
  RETURN_IF_ERROR(writer->Begin(StatementColumns(st)));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    RETURN_IF_ERROR(WriteStatementRow(st, *writer));
    progress.Update(++*rows);
  }
  return writer->End();
}

// The rows an export will write, for its progress line (asked only when one
// is drawn). The process views are one row per process per scan over the
// incremental tables: counting them costs as much as reading them, so their
// total is the scans' process counts (an estimate the progress line drops if
// the export goes past it). Other tables are counted over their time index.
std::optional<int64_t> ExportTotal(storage::Database& db, const storage::ExportSpec& spec,
                                   const TimeRange& range) {
  const std::string_view table = spec.table;
  std::string sql;
  if (table == "processes") {
    sql =
        "SELECT process_count FROM scan_metadata WHERE status = 'completed' AND started_at_ms >= ?1 AND "
        "started_at_ms < ?2 ORDER BY scan_id DESC LIMIT 1";
  } else if (table == "process_snapshots") {
    sql =
        "SELECT sum(process_count) FROM scan_metadata WHERE status = 'completed' AND started_at_ms >= ?1 "
        "AND started_at_ms < ?2";
  } else {
    sql = "SELECT count(*) FROM " + std::string(table) + " WHERE " + std::string(spec.time_column) +
          " >= ?1 AND " + std::string(spec.time_column) + " < ?2";
  }
  auto st = db.Prepare(sql);
  if (!st.ok() || !st->BindInt(1, range.since).ok() || !st->BindInt(2, range.until).ok()) return std::nullopt;
  auto row = st->Step();
  if (!row.ok() || !*row) return std::nullopt;
  return st->ColumnInt(0);
}

// What an export reads: the table's rows of the range, from `st`.
struct ExportSource {
  storage::Database& db;
  const storage::ExportSpec& spec;
  const TimeRange& range;
  storage::Statement& st;
};

// The rows into `out`, with a progress line on a terminal's stderr unless
// the rows themselves go to the terminal.
Status Export(const CommandContext& ctx, const ExportSource& src, Format format, std::ostream& out,
              bool to_stdout, int64_t* rows) {
  auto progress = MakeProgress(ctx, "export " + std::string(src.spec.table), "rows", to_stdout);
  if (progress->active()) {
    if (auto total = ExportTotal(src.db, src.spec, src.range)) progress->SetTotal(*total);
  }
  Status s = WriteRows(src.st, format, out, *progress, rows);
  progress->Finish();
  return s;
}

}  // namespace

int RunExport(const CommandContext& ctx, const ExportArgs& args) {
  const storage::ExportSpec* spec = storage::FindExportable(args.table);
  if (!spec) {
    return Fail(ctx, InvalidArgumentError("unknown table " + QuoteForMessage(args.table) +
                                          " (expected one of: " + KnownTables() + ")"));
  }
  auto format = ExportFormat(ctx, args);
  if (!format.ok()) return Fail(ctx, format.status());
  auto range = ParseRange(args);
  if (!range.ok()) return Fail(ctx, range.status());

  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());
  auto st = PrepareExport(**db, *spec, *range);
  if (!st.ok()) return FailRuntime(ctx, st.status());

  int64_t rows = 0;
  const ExportSource source{**db, *spec, *range, *st};
  if (args.output.empty()) {
    Status s = Export(ctx, source, *format, *ctx.out, /*to_stdout=*/true, &rows);
    return s.ok() ? kExitOk : FailRuntime(ctx, s);
  }
  OutputFile file(args.output);
  Status s = file.Open();
  if (s.ok()) s = Export(ctx, source, *format, file.stream(), /*to_stdout=*/false, &rows);
  if (s.ok()) s = file.Commit();
  if (!s.ok()) return FailRuntime(ctx, s);
  *ctx.err << "sentinelcli: exported " << rows << " rows from " << spec->table << " to " << args.output
           << "\n";
  return kExitOk;
}

}  // namespace sentinel::cli
