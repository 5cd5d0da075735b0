#include "sentinelcli/output/internal/writers.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <unordered_set>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinelcli/output/internal/value_format.h"

namespace sentinel::cli::internal {

Status OutputError(int err) {
  switch (err) {
    case 0: return UnavailableError("writing output failed");
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EIO:
      // The reader gets a truncated document: say so loudly.
      return DataLossError(std::string("writing output: ") + std::strerror(err));
    default: return UnavailableError(std::string("writing output: ") + std::strerror(err));
  }
}

template <typename F>
Status StreamRowWriter::Run(F&& body) {
  if (!error_.ok()) return error_;
  // errno is only meaningful if the stream fails during this call.
  errno = 0;
  try {
    body();
  } catch (const std::bad_alloc&) {
    error_ = ResourceExhaustedError("writing output: out of memory");
    return error_;
  } catch (const std::exception& e) {
    // std::ios_base::failure if the caller enabled stream exceptions.
    const int err = errno;
    error_ = out_.fail() ? OutputError(err) : InternalError(std::string("writing output: ") + e.what());
    return error_;
  }
  if (out_.fail()) error_ = OutputError(errno);
  return error_;
}

Status StreamRowWriter::Begin(const std::vector<std::string>& columns) {
  if (state_ != State::kNew) return FailedPreconditionError("RowWriter::Begin called twice");
  state_ = State::kOpen;
  column_count_ = columns.size();
  return Run([&] { DoBegin(columns); });
}

Status StreamRowWriter::Row(const std::vector<Cell>& cells) {
  if (state_ != State::kOpen) return FailedPreconditionError("RowWriter::Row called outside Begin..End");
  if (cells.size() != column_count_) {
    return InvalidArgumentError("row has " + std::to_string(cells.size()) + " values for " +
                                std::to_string(column_count_) + " columns");
  }
  return Run([&] { DoRow(cells); });
}

Status StreamRowWriter::End() {
  if (state_ != State::kOpen) return FailedPreconditionError("RowWriter::End called before Begin or twice");
  state_ = State::kDone;
  return Run([&] {
    DoEnd();
    out_.flush();
  });
}

namespace {

// JSON keys must be unique for every consumer to see every column: the 2nd
// "a" becomes "a:1" (SQLite's own spelling for duplicate result columns).
std::vector<std::string> UniqueKeys(const std::vector<std::string>& columns) {
  std::unordered_set<std::string> seen;
  std::vector<std::string> keys;
  keys.reserve(columns.size());
  for (const std::string& column : columns) {
    std::string base = SanitizeUtf8(column);
    std::string key = base;
    for (int n = 1; seen.count(key) != 0; ++n) key = base + ":" + std::to_string(n);
    seen.insert(key);
    keys.push_back(std::move(key));
  }
  return keys;
}

void AppendJsonValue(std::string& out, const Cell& cell) {
  switch (cell.type) {
    case CellType::kNull: out += "null"; return;
    case CellType::kInteger: AppendInteger(out, cell.integer); return;
    case CellType::kReal: AppendJsonReal(out, cell.real); return;
    case CellType::kText: AppendJsonString(out, cell.text); return;
    case CellType::kBlob:
      out += '"';
      AppendHex(out, cell.text);
      out += '"';
      return;
  }
  out += "null";
}

class JsonWriter final : public StreamRowWriter {
 public:
  JsonWriter(std::ostream& out, bool lines) : StreamRowWriter(out), lines_(lines) {}

 private:
  void DoBegin(const std::vector<std::string>& columns) override {
    for (const std::string& key : UniqueKeys(columns)) {
      std::string quoted;
      AppendJsonString(quoted, key);
      quoted += ':';
      keys_.push_back(std::move(quoted));
    }
    if (!lines_) Emit("[");
  }

  void DoRow(const std::vector<Cell>& cells) override {
    line_.clear();  // keeps its capacity: one allocation for the whole stream
    if (!lines_) line_ += rows_ == 0 ? "\n" : ",\n";
    line_ += '{';
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i != 0) line_ += ',';
      line_ += keys_[i];
      AppendJsonValue(line_, cells[i]);
    }
    line_ += '}';
    if (lines_) line_ += '\n';
    Emit(line_);
    ++rows_;
  }

  void DoEnd() override {
    if (!lines_) Emit(rows_ == 0 ? "]\n" : "\n]\n");
  }

  const bool lines_;
  std::vector<std::string> keys_;  // "\"name\":"
  std::string line_;
  size_t rows_ = 0;
};

// A CSV field (RFC 4180). Text cells are first escaped with the one output
// escaper (base EscapeText: control characters, C1, bidi and invisible code
// points, invalid UTF-8 bytes) and then neutralised against spreadsheet
// formula injection as OWASP recommends: a cell starting with = + - @, TAB or
// CR gets a leading ' and is quoted. Quotes are doubled. Quoting happens when
// RFC 4180 requires it (comma, quote, CR, LF), for a neutralised cell and for
// an empty one (so that "" differs from NULL).
void AppendCsvText(std::string& out, std::string_view raw, std::string& scratch) {
  scratch.clear();
  const bool formula = CsvCellNeedsNeutralising(raw);
  if (formula) scratch += '\'';
  AppendEscapedText(scratch, raw);
  const bool neutralise = formula || CsvCellNeedsNeutralising(scratch);
  if (neutralise && !formula) scratch.insert(scratch.begin(), '\'');
  if (!neutralise && !scratch.empty() && scratch.find_first_of(",\"\r\n") == std::string::npos) {
    out += scratch;
    return;
  }
  out += '"';
  for (char c : scratch) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

class CsvWriter final : public StreamRowWriter {
 public:
  explicit CsvWriter(std::ostream& out) : StreamRowWriter(out) {}

 private:
  void DoBegin(const std::vector<std::string>& columns) override {
    line_.clear();
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i != 0) line_ += ',';
      AppendCsvText(line_, columns[i], scratch_);
    }
    line_ += '\n';
    Emit(line_);
  }

  void DoRow(const std::vector<Cell>& cells) override {
    line_.clear();
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i != 0) line_ += ',';
      const Cell& cell = cells[i];
      switch (cell.type) {
        case CellType::kNull: break;
        case CellType::kInteger: AppendInteger(line_, cell.integer); break;
        case CellType::kReal: AppendReal(line_, cell.real); break;
        case CellType::kText: AppendCsvText(line_, cell.text, scratch_); break;
        case CellType::kBlob:  // lowercase hex: never starts with a formula character
          if (cell.text.empty()) {
            line_ += "\"\"";
          } else {
            AppendHex(line_, cell.text);
          }
          break;
      }
    }
    line_ += '\n';
    Emit(line_);
  }

  void DoEnd() override {}

  std::string line_;
  std::string scratch_;
};

}  // namespace

std::unique_ptr<RowWriter> MakeJsonWriter(std::ostream& out, bool lines) {
  return std::make_unique<JsonWriter>(out, lines);
}

std::unique_ptr<RowWriter> MakeCsvWriter(std::ostream& out) {
  return std::make_unique<CsvWriter>(out);
}

}  // namespace sentinel::cli::internal
