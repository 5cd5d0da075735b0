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
Status WriteRows(storage::Statement& st, Format format, std::ostream& out, int64_t* rows) {
  TerminalInfo plain;  // exports never carry colour
  auto writer = MakeRowWriter(format, out, plain);
  RETURN_IF_ERROR(writer->Begin(StatementColumns(st)));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    RETURN_IF_ERROR(WriteStatementRow(st, *writer));
    ++*rows;
  }
  return writer->End();
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
  if (args.output.empty()) {
    Status s = WriteRows(*st, *format, *ctx.out, &rows);
    return s.ok() ? kExitOk : FailRuntime(ctx, s);
  }
  OutputFile file(args.output);
  Status s = file.Open();
  if (s.ok()) s = WriteRows(*st, *format, file.stream(), &rows);
  if (s.ok()) s = file.Commit();
  if (!s.ok()) return FailRuntime(ctx, s);
  *ctx.err << "sentinelcli: exported " << rows << " rows from " << spec->table << " to " << args.output
           << "\n";
  return kExitOk;
}

}  // namespace sentinel::cli
