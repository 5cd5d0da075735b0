// sentinelcli's output layer: turns query results and single objects into
// the formats of SPEC §9 (`--format table|json|csv`, and `jsonl` for export).
//
// Results stream: a RowWriter writes each row as it arrives and keeps no more
// than one row in memory, except the table format, which looks ahead at most
// kTableLookAheadRows rows (each cell capped at kTableMaxCellWidth columns) to
// size its columns.
//
// The formats, byte for byte (json, jsonl, csv, table; how each value type
// and unsafe text is written): docs/output-formats.md, "Formats, exactly".
// Text from the host is never written raw: csv and table cells go through the
// one output escaper (base EscapeText), JSON strings escape every control,
// invisible and bidi code point as \uXXXX.
//
// Write errors: every call checks the stream; a failure (badbit/failbit, a
// closed pipe, a full disk) is returned as UNAVAILABLE or DATA_LOSS ("writing
// output: No space left on device") and is sticky: later calls return it
// again. Note that writing to a closed pipe raises SIGPIPE, which kills the
// process unless main ignores it (then the EPIPE comes back as a Status).
//
// Thread-safety: a RowWriter is used by one thread at a time; distinct
// writers on distinct streams are independent. No exceptions escape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sentinel/base/status.h"
#include "sentinelcli/output/terminal.h"

namespace sentinel::cli {

enum class CellType { kNull, kInteger, kReal, kText, kBlob };

// One value of a result row. `text` also holds blob bytes. A Cell does not
// own its text: it must stay valid only for the RowWriter::Row call.
struct Cell {
  CellType type = CellType::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string_view text;

  static Cell Null() { return {}; }
  static Cell Integer(int64_t v) { return {CellType::kInteger, v, 0, {}}; }
  static Cell Real(double v) { return {CellType::kReal, 0, v, {}}; }
  static Cell Text(std::string_view v) { return {CellType::kText, 0, 0, v}; }
  static Cell Blob(std::string_view bytes) { return {CellType::kBlob, 0, 0, bytes}; }
};

enum class Format { kTable, kJson, kJsonl, kCsv };

// Parses a --format value: "table", "json", "csv", and "jsonl" only when
// `allow_jsonl` (export). Case-insensitive. INVALID_ARGUMENT otherwise, e.g.
// `unknown format "xml" (expected table, json or csv)`.
Result<Format> ParseFormat(std::string_view name, bool allow_jsonl);

// "table", "json", "jsonl", "csv".
std::string_view FormatName(Format format);

// The table's look-ahead and per-cell cap (see MakeRowWriter).
inline constexpr size_t kTableLookAheadRows = 200;
inline constexpr size_t kTableMaxCellWidth = 1024;

// Streams rows in one format. Call Begin once, Row for each row, End once.
class RowWriter {
 public:
  virtual ~RowWriter() = default;

  // Writes the header, if the format has one. Fails with FAILED_PRECONDITION
  // if called twice, or with a write error.
  virtual Status Begin(const std::vector<std::string>& columns) = 0;

  // Writes (or, for the table's first rows, buffers) one row. `cells.size()`
  // must equal the number of columns (INVALID_ARGUMENT otherwise);
  // FAILED_PRECONDITION outside Begin..End.
  virtual Status Row(const std::vector<Cell>& cells) = 0;

  // Writes what is buffered and the trailer, then flushes the stream; reports
  // write errors (EPIPE, ENOSPC, ...). FAILED_PRECONDITION before Begin or
  // when called twice.
  virtual Status End() = 0;
};

// Returns a writer for `format` on `out`; `out` must outlive it. Never null.
//
// Table details. Widths are measured in display columns: one per code point,
// two for East Asian wide characters. The first kTableLookAheadRows rows are
// buffered to size the columns; later rows use those widths and longer values
// are cut with "…". With term.width > 0 every line fits in term.width: the
// widest columns are narrowed first (not below 5 columns, or their natural
// width if smaller); if even that does not fit, rows are printed as records
// ("-[ RECORD n ]", then "column | value" lines), as psql's expanded mode.
// Control characters are never written raw: \n \r \t, \xNN for other C0
// bytes, DEL and invalid UTF-8 bytes (so ESC shows as \x1b), \u0085 for C1
// controls and \u202e etc. for invisible/bidi-override code points. Backslash
// is not escaped: table output is for reading, JSON is the exact form.
// With term.color the header is bold and NULL dim (ANSI SGR); without it the
// output contains no escape codes at all. NULL shows as "NULL". The trailer
// is "(N rows)", or "(1 row)".
std::unique_ptr<RowWriter> MakeRowWriter(Format format, std::ostream& out, const TerminalInfo& term);

// Writes one object (for `show`/`health`): json is the object pretty-printed
// (2-space indent), jsonl the object on one line; table is a two-column
// "key | value" table (no row-count trailer) and csv has the header
// "key,value". For table and csv, nested objects are flattened with dotted
// keys ("components.procmond.status") and arrays are shown as compact JSON.
// The ordered_json overload keeps the caller's key order; nlohmann::json sorts
// keys. INVALID_ARGUMENT if `object` is not an object; write errors as above.
Status WriteObject(Format format, std::ostream& out, const nlohmann::json& object, const TerminalInfo& term);
Status WriteObject(Format format, std::ostream& out, const nlohmann::ordered_json& object,
                   const TerminalInfo& term);

}  // namespace sentinel::cli
