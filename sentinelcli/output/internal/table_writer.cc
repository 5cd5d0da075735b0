// The human-readable table. See MakeRowWriter in row_writer.h for the
// contract; this file only explains how.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "sentinelcli/output/internal/value_format.h"
#include "sentinelcli/output/internal/writers.h"

namespace sentinel::cli::internal {

namespace {

// Narrower than this a column shows too little to be worth it; a table that
// cannot keep every column this wide is printed as records instead.
constexpr size_t kMinColumnWidth = 5;
constexpr std::string_view kSeparator = " | ";
constexpr std::string_view kRuleJoint = "-+-";
constexpr std::string_view kKeySeparator = " | ";  // record mode: "key | value"
constexpr std::string_view kBold = "\x1b[1m";
constexpr std::string_view kDim = "\x1b[2m";
constexpr std::string_view kReset = "\x1b[0m";

struct DisplayCell {
  DisplayText text;
  bool is_null = false;
  bool right_aligned = false;
};

DisplayCell ToDisplay(const Cell& cell, size_t max_width) {
  DisplayCell d;
  switch (cell.type) {
    case CellType::kNull:
      d.text.text = "NULL";
      d.is_null = true;
      break;
    case CellType::kInteger:
      AppendInteger(d.text.text, cell.integer);
      d.right_aligned = true;
      break;
    case CellType::kReal:
      AppendReal(d.text.text, cell.real);
      d.right_aligned = true;
      break;
    case CellType::kText: d.text = EscapeForTerminal(cell.text, max_width); return d;
    case CellType::kBlob:
      // SQLite's blob literal, so a blob never looks like text.
      d.text.text = "x'";
      AppendHex(d.text.text, cell.text, max_width);
      d.text.text += '\'';
      break;
  }
  d.text.width = d.text.text.size();  // ASCII
  TruncateToWidth(d.text, max_width);
  return d;
}

class TableWriter final : public StreamRowWriter {
 public:
  TableWriter(std::ostream& out, const TerminalInfo& term, bool trailer)
      : StreamRowWriter(out),
        max_line_(term.width > 0 ? static_cast<size_t>(term.width) : 0),
        color_(term.color),
        trailer_(trailer) {}

 private:
  void DoBegin(const std::vector<std::string>& columns) override {
    header_.reserve(columns.size());
    for (const std::string& name : columns) header_.push_back(EscapeForTerminal(name, kTableMaxCellWidth));
  }

  void DoRow(const std::vector<Cell>& cells) override {
    ++rows_;
    if (!laid_out_) {
      std::vector<DisplayCell> row;
      row.reserve(cells.size());
      for (const Cell& cell : cells) row.push_back(ToDisplay(cell, kTableMaxCellWidth));
      buffer_.push_back(std::move(row));
      if (buffer_.size() >= kTableLookAheadRows) LayOut();
      return;
    }
    std::vector<DisplayCell> row;
    row.reserve(cells.size());
    for (size_t i = 0; i < cells.size(); ++i) {
      row.push_back(ToDisplay(cells[i], records_ ? value_width_ : widths_[i]));
    }
    PrintRow(row);
  }

  void DoEnd() override {
    if (!laid_out_) LayOut();
    if (trailer_) Emit("(" + std::to_string(rows_) + (rows_ == 1 ? " row)\n" : " rows)\n"));
  }

  // Sizes the columns from the header and the look-ahead rows, prints the
  // header and the buffered rows, and frees the buffer.
  void LayOut() {
    laid_out_ = true;
    const size_t n = header_.size();
    std::vector<size_t> natural(n);
    for (size_t i = 0; i < n; ++i) natural[i] = header_[i].width;
    for (const auto& row : buffer_) {
      for (size_t i = 0; i < n; ++i) natural[i] = std::max(natural[i], row[i].text.width);
    }
    if (n != 0 && !FitColumns(natural)) SetUpRecords();

    if (n != 0 && !records_) PrintHeader();
    for (auto& row : buffer_) {
      if (records_) {
        for (DisplayCell& cell : row) TruncateToWidth(cell.text, value_width_);
      } else {
        for (size_t i = 0; i < n; ++i) TruncateToWidth(row[i].text, widths_[i]);
      }
      PrintRow(row);
    }
    buffer_.clear();
    buffer_.shrink_to_fit();
  }

  // Sets widths_ so that a line fits in max_line_; false if it cannot.
  // Water-filling: every column is capped at the same width C (but never
  // below min(natural, kMinColumnWidth)), with the largest C that fits, so
  // the widest columns give way first and narrow ones keep their width.
  bool FitColumns(const std::vector<size_t>& natural) {
    widths_ = natural;
    if (max_line_ == 0) return true;
    const size_t n = natural.size();
    const size_t separators = kSeparator.size() * (n - 1);
    auto capped = [&](size_t i, size_t cap) {
      return std::min(natural[i], std::max(cap, std::min(natural[i], kMinColumnWidth)));
    };
    auto total = [&](size_t cap) {
      size_t sum = separators;
      for (size_t i = 0; i < n; ++i) sum += capped(i, cap);
      return sum;
    };
    size_t widest = *std::max_element(natural.begin(), natural.end());
    if (total(widest) <= max_line_) return true;
    if (total(0) > max_line_) return false;
    size_t lo = 0, hi = widest;  // total(lo) fits, total(hi) does not
    while (hi - lo > 1) {
      size_t mid = lo + (hi - lo) / 2;
      (total(mid) <= max_line_ ? lo : hi) = mid;
    }
    size_t slack = max_line_ - total(lo);
    for (size_t i = 0; i < n; ++i) {
      widths_[i] = capped(i, lo);
      if (slack > 0 && widths_[i] < natural[i]) {
        ++widths_[i];
        --slack;
      }
    }
    return true;
  }

  // Record mode, for tables too wide for the terminal even when narrowed.
  void SetUpRecords() {
    records_ = true;
    size_t widest_key = 0;
    for (const DisplayText& h : header_) widest_key = std::max(widest_key, h.width);
    const size_t room = max_line_ > kKeySeparator.size() ? max_line_ - kKeySeparator.size() : 0;
    key_width_ = std::max<size_t>(1, std::min(widest_key, room / 2));
    value_width_ = std::max<size_t>(1, room > key_width_ ? room - key_width_ : 1);
    for (DisplayText& h : header_) TruncateToWidth(h, key_width_);
  }

  void AppendStyled(std::string& line, const DisplayText& t, std::string_view style) {
    if (color_ && !style.empty()) {
      line += style;
      line += t.text;
      line += kReset;
    } else {
      line += t.text;
    }
  }

  void AppendCell(std::string& line, const DisplayCell& cell, size_t width, bool last) {
    const size_t pad = width > cell.text.width ? width - cell.text.width : 0;
    // Records have one value per line: nothing to align numbers with.
    const bool right = cell.right_aligned && !records_;
    if (right) line.append(pad, ' ');
    AppendStyled(line, cell.text, cell.is_null ? kDim : std::string_view());
    if (!right && !last) line.append(pad, ' ');
  }

  void PrintHeader() {
    line_.clear();
    const size_t n = header_.size();
    for (size_t i = 0; i < n; ++i) {
      if (i != 0) line_ += kSeparator;
      TruncateToWidth(header_[i], widths_[i]);
      AppendStyled(line_, header_[i], kBold);
      if (i + 1 != n) line_.append(widths_[i] - header_[i].width, ' ');
    }
    line_ += '\n';
    for (size_t i = 0; i < n; ++i) {
      if (i != 0) line_ += kRuleJoint;
      line_.append(widths_[i], '-');
    }
    line_ += '\n';
    Emit(line_);
  }

  void PrintRow(const std::vector<DisplayCell>& row) {
    const size_t n = header_.size();
    if (n == 0) return;
    line_.clear();
    if (records_) {
      std::string title = "-[ RECORD " + std::to_string(++records_printed_) + " ]";
      size_t longest = 0;
      for (const DisplayCell& cell : row) longest = std::max(longest, cell.text.width);
      const size_t line_width = key_width_ + kKeySeparator.size() + longest;
      if (title.size() < line_width) title.append(line_width - title.size(), '-');
      if (max_line_ != 0 && title.size() > max_line_) title.resize(max_line_);
      line_ += title;
      line_ += '\n';
      for (size_t i = 0; i < n; ++i) {
        AppendStyled(line_, header_[i], kBold);
        line_.append(key_width_ - header_[i].width, ' ');
        line_ += kKeySeparator;
        AppendCell(line_, row[i], value_width_, true);
        line_ += '\n';
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        if (i != 0) line_ += kSeparator;
        AppendCell(line_, row[i], widths_[i], i + 1 == n);
      }
      line_ += '\n';
    }
    Emit(line_);
  }

  const size_t max_line_;  // 0 = unlimited
  const bool color_;
  const bool trailer_;
  std::vector<DisplayText> header_;
  std::vector<std::vector<DisplayCell>> buffer_;  // look-ahead, until LayOut
  bool laid_out_ = false;
  std::vector<size_t> widths_;
  bool records_ = false;
  size_t key_width_ = 0;
  size_t value_width_ = 0;
  size_t records_printed_ = 0;
  size_t rows_ = 0;
  std::string line_;
};

}  // namespace

std::unique_ptr<RowWriter> MakeTableWriter(std::ostream& out, const TerminalInfo& term, bool trailer) {
  return std::make_unique<TableWriter>(out, term, trailer);
}

}  // namespace sentinel::cli::internal
