#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/base/strings.h"
#include "sentinelcli/output/internal/value_format.h"
#include "sentinelcli/output/row_writer.h"
#include "sentinelcli/output/terminal.h"

namespace sentinel::cli {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// ---------------------------------------------------------------- helpers

const std::vector<std::string> kColumns = {"pid", "name", "ratio", "cmdline", "raw", "hash", "parent"};

// Two rows covering every type: NULL, int, real, text needing CSV quoting,
// hostile text (ESC sequence, newline), invalid UTF-8, and a blob.
std::vector<std::vector<Cell>> FixedRows() {
  return {
      {Cell::Integer(42), Cell::Text("evil\x1b[31m\nroot"), Cell::Real(0.5), Cell::Text("sh -c \"a,b\"\nx"),
       Cell::Text("bad\xff"
                  "byte"),
       Cell::Blob(std::string_view("\x00\xff\x10", 3)), Cell::Null()},
      {Cell::Integer(-7), Cell::Text(""), Cell::Real(3.0), Cell::Text("plain"), Cell::Text("caf\xc3\xa9"),
       Cell::Blob(""), Cell::Integer(1)},
  };
}

std::string Render(Format format, const std::vector<std::string>& columns,
                   const std::vector<std::vector<Cell>>& rows, TerminalInfo term = {}) {
  std::ostringstream out;
  auto writer = MakeRowWriter(format, out, term);
  EXPECT_TRUE(writer->Begin(columns).ok());
  for (const auto& row : rows) EXPECT_TRUE(writer->Row(row).ok());
  EXPECT_TRUE(writer->End().ok());
  return out.str();
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines = Split(s, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// Counted independently of the code under test: UTF-8 lead bytes.
size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// A stream buffer whose every write fails, as on a closed pipe or full disk.
class FailingBuf : public std::streambuf {
 protected:
  int_type overflow(int_type) override { return traits_type::eof(); }
  std::streamsize xsputn(const char*, std::streamsize) override { return 0; }
};

// Sets or unsets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A pseudo-terminal, to test what happens on a real tty.
class Pty {
 public:
  Pty() {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) return;
    const char* name = ptsname(master_);
    if (name) slave_ = open(name, O_RDWR | O_NOCTTY);
  }
  ~Pty() {
    if (slave_ >= 0) close(slave_);
    if (master_ >= 0) close(master_);
  }
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
  int fd() const { return slave_; }
  bool SetWidth(unsigned short cols) {
    struct winsize ws = {};
    ws.ws_row = 24;
    ws.ws_col = cols;
    return ioctl(slave_, TIOCSWINSZ, &ws) == 0;
  }

 private:
  int master_ = -1;
  int slave_ = -1;
};

// ---------------------------------------------------------------- ParseFormat

TEST(ParseFormatTest, KnownNames) {
  EXPECT_EQ(ParseFormat("table", false).value(), Format::kTable);
  EXPECT_EQ(ParseFormat("json", false).value(), Format::kJson);
  EXPECT_EQ(ParseFormat("csv", false).value(), Format::kCsv);
  EXPECT_EQ(ParseFormat("JSON", false).value(), Format::kJson);
  EXPECT_EQ(ParseFormat("jsonl", true).value(), Format::kJsonl);
  EXPECT_EQ(FormatName(Format::kJsonl), "jsonl");
}

TEST(ParseFormatTest, Errors) {
  Result<Format> xml = ParseFormat("xml", false);
  ASSERT_FALSE(xml.ok());
  EXPECT_EQ(xml.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(xml.status().message(), "unknown format \"xml\" (expected table, json or csv)");

  EXPECT_EQ(ParseFormat("xml", true).status().message(),
            "unknown format \"xml\" (expected table, json, jsonl or csv)");

  Result<Format> jsonl = ParseFormat("jsonl", false);
  ASSERT_FALSE(jsonl.ok());
  EXPECT_EQ(jsonl.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(jsonl.status().message().find("jsonl"), std::string::npos);

  EXPECT_FALSE(ParseFormat("", false).ok());
  // Hostile input is quoted and escaped in the message.
  EXPECT_EQ(ParseFormat("x\x1b", false).status().message().find('\x1b'), std::string::npos);
}

// ---------------------------------------------------------------- JSON

TEST(JsonWriterTest, ParsesBackToExpectedArray) {
  const std::string out = Render(Format::kJson, kColumns, FixedRows());
  ordered_json parsed = ordered_json::parse(out);
  ordered_json expected = ordered_json::array();
  expected.push_back({{"pid", 42},
                      {"name", "evil\x1b[31m\nroot"},
                      {"ratio", 0.5},
                      {"cmdline", "sh -c \"a,b\"\nx"},
                      {"raw",
                       "bad\xEF\xBF\xBD"
                       "byte"},
                      {"hash", "00ff10"},
                      {"parent", nullptr}});
  expected.push_back({{"pid", -7},
                      {"name", ""},
                      {"ratio", 3.0},
                      {"cmdline", "plain"},
                      {"raw", "caf\xc3\xa9"},
                      {"hash", ""},
                      {"parent", 1}});
  EXPECT_EQ(parsed, expected);  // ordered_json: key order is compared too
  EXPECT_TRUE(parsed[1]["ratio"].is_number_float());
  // Invalid UTF-8 replaced exactly as base SanitizeUtf8 does.
  EXPECT_EQ(parsed[0]["raw"].get<std::string>(), SanitizeUtf8("bad\xff"
                                                              "byte"));
  // No raw control byte reaches the output.
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_NE(out.find("\\u001b[31m\\n"), std::string::npos);
}

TEST(JsonWriterTest, ExactLayout) {
  const std::string out = Render(Format::kJson, {"a", "b"},
                                 {{Cell::Integer(1), Cell::Text("x")}, {Cell::Null(), Cell::Real(2.5)}});
  EXPECT_EQ(out, "[\n{\"a\":1,\"b\":\"x\"},\n{\"a\":null,\"b\":2.5}\n]\n");
}

TEST(JsonWriterTest, EmptyResultIsEmptyArray) {
  EXPECT_EQ(Render(Format::kJson, kColumns, {}), "[]\n");
  EXPECT_EQ(json::parse(Render(Format::kJson, kColumns, {})), json::array());
  EXPECT_EQ(Render(Format::kJsonl, kColumns, {}), "");
}

TEST(JsonWriterTest, RealsRoundTripAndNonFiniteIsNull) {
  const double tricky = 0.1 + 0.2;
  const std::string out = Render(Format::kJson, {"r", "inf", "nan", "big"},
                                 {{Cell::Real(tricky), Cell::Real(std::numeric_limits<double>::infinity()),
                                   Cell::Real(std::nan("")), Cell::Real(1e300)}});
  json parsed = json::parse(out);
  EXPECT_EQ(parsed[0]["r"].get<double>(), tricky);
  EXPECT_TRUE(parsed[0]["inf"].is_null());
  EXPECT_TRUE(parsed[0]["nan"].is_null());
  EXPECT_EQ(parsed[0]["big"].get<double>(), 1e300);
}

TEST(JsonWriterTest, DuplicateColumnNamesKeepEveryValue) {
  json parsed = json::parse(
      Render(Format::kJson, {"a", "a", "a:1"}, {{Cell::Integer(1), Cell::Integer(2), Cell::Integer(3)}}));
  EXPECT_EQ(parsed[0].size(), 3u);
  EXPECT_EQ(parsed[0]["a"], 1);
  EXPECT_EQ(parsed[0]["a:1"], 2);
  EXPECT_EQ(parsed[0]["a:1:1"], 3);
}

TEST(JsonWriterTest, StreamsRowByRow) {
  std::ostringstream out;
  auto writer = MakeRowWriter(Format::kJson, out, {});
  ASSERT_TRUE(writer->Begin({"n"}).ok());
  ASSERT_TRUE(writer->Row({Cell::Integer(1)}).ok());
  EXPECT_EQ(out.str(), "[\n{\"n\":1}");  // written before End
  ASSERT_TRUE(writer->End().ok());
}

TEST(JsonlWriterTest, OneObjectPerLine) {
  const std::string out = Render(Format::kJsonl, kColumns, FixedRows());
  std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0])["cmdline"], "sh -c \"a,b\"\nx");
  EXPECT_EQ(json::parse(lines[0])["raw"],
            "bad\xEF\xBF\xBD"
            "byte");
  EXPECT_EQ(json::parse(lines[0])["hash"], "00ff10");
  EXPECT_TRUE(json::parse(lines[0])["parent"].is_null());
  EXPECT_EQ(json::parse(lines[1])["pid"], -7);
  EXPECT_EQ(out.back(), '\n');
}

// ---------------------------------------------------------------- CSV

TEST(CsvWriterTest, ExactQuoting) {
  const std::string out = Render(Format::kCsv, kColumns, FixedRows());
  EXPECT_EQ(out,
            "pid,name,ratio,cmdline,raw,hash,parent\n"
            "42,evil\\x1b[31m\\nroot,0.5,\"sh -c \"\"a,b\"\"\\nx\",bad\\xffbyte,00ff10,\n"
            "-7,\"\",3.0,plain,caf\xc3\xa9,\"\",1\n");
}

TEST(CsvWriterTest, QuotesHeaderEscapesControlsAndNeutralisesFormulas) {
  const std::string out =
      Render(Format::kCsv, {"a,b", "c"},
             {{Cell::Text("x\ry"), Cell::Text("=cmd|' /C calc'!A0")}, {Cell::Real(-0.0), Cell::Real(1e21)}});
  EXPECT_EQ(out, "\"a,b\",c\nx\\ry,\"'=cmd|' /C calc'!A0\"\n-0.0,1e+21\n");
}

// OWASP CSV injection: text cells starting with = + - @ TAB CR get a leading
// ' and are quoted; numbers (INTEGER/REAL values) are left alone.
TEST(CsvWriterTest, NeutralisesEveryFormulaStartButNotNumbers) {
  const std::string out = Render(Format::kCsv, {"v"},
                                 {{Cell::Text("=1+1")},
                                  {Cell::Text("+1")},
                                  {Cell::Text("-bash")},
                                  {Cell::Text("@SUM(A1)")},
                                  {Cell::Text("\t=x")},
                                  {Cell::Text("\r=x")},
                                  {Cell::Text("=HYPERLINK(\"http://x\")")},
                                  {Cell::Integer(-5)},
                                  {Cell::Real(-2.5)},
                                  {Cell::Text("a-b")}});
  EXPECT_EQ(out,
            "v\n"
            "\"'=1+1\"\n"
            "\"'+1\"\n"
            "\"'-bash\"\n"
            "\"'@SUM(A1)\"\n"
            "\"'\\t=x\"\n"
            "\"'\\r=x\"\n"
            "\"'=HYPERLINK(\"\"http://x\"\")\"\n"
            "-5\n"
            "-2.5\n"
            "a-b\n");
}

// Issue 14: CSV wrote raw ESC, C1, NEL, bidi and separators to the terminal.
TEST(CsvWriterTest, HostileProcessNamesReachNoReaderRaw) {
  const std::string out = Render(Format::kCsv, {"name"},
                                 {{Cell::Text("a\x1b[2Jb")},
                                  {Cell::Text("a\xc2\x9b"
                                              "31m")},
                                  {Cell::Text("x\xc2\x85"
                                              "ALERT CRITICAL fake")},
                                  {Cell::Text("evil\xe2\x80\xae"
                                              "gpj.exe")},
                                  {Cell::Text("a\xe2\x80\xa8"
                                              "b\xe2\x81\xa6"
                                              "c")},
                                  {Cell::Text("raw\x9b\xff")}});
  EXPECT_EQ(out,
            "name\n"
            "a\\x1b[2Jb\n"
            "a\\u009b31m\n"
            "x\\u0085ALERT CRITICAL fake\n"
            "evil\\u202egpj.exe\n"
            "a\\u2028b\\u2066c\n"
            "raw\\x9b\\xff\n");
}

// ---------------------------------------------------------------- table

TEST(TableWriterTest, ExactLayout) {
  const std::string out = Render(Format::kTable, {"pid", "name", "note"},
                                 {{Cell::Integer(1), Cell::Text("init"), Cell::Null()},
                                  {Cell::Integer(1234), Cell::Text("sshd"), Cell::Blob("\x01")},
                                  {Cell::Real(2.5), Cell::Text("\xe6\x97\xa5"), Cell::Text("")}});
  EXPECT_EQ(out,
            "pid  | name | note\n"
            "-----+------+------\n"
            "   1 | init | NULL\n"
            "1234 | sshd | x'01'\n"
            " 2.5 | \xe6\x97\xa5   | \n"  // a wide character takes two columns
            "(3 rows)\n");
  EXPECT_EQ(Render(Format::kTable, {"a"}, {{Cell::Integer(1)}}), "a\n-\n1\n(1 row)\n");
  EXPECT_EQ(Render(Format::kTable, {"a"}, {}), "a\n-\n(0 rows)\n");
}

TEST(TableWriterTest, EscapesControlCharactersAndInvalidUtf8) {
  const std::string out = Render(Format::kTable, kColumns, FixedRows());
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_NE(out.find("evil\\x1b[31m\\nroot"), std::string::npos) << out;
  EXPECT_NE(out.find("bad\\xffbyte"), std::string::npos) << out;
  EXPECT_NE(out.find("caf\xc3\xa9"), std::string::npos) << out;
  // One line per row: header, rule, 2 rows, trailer (the newlines in values
  // did not break lines).
  EXPECT_EQ(Lines(out).size(), 5u) << out;
  EXPECT_EQ(Lines(out).back(), "(2 rows)");
}

TEST(TableWriterTest, EscapesC1AndBidiOverrides) {
  // U+009B is a one-character CSI on some terminals; U+202E reverses text.
  const std::string out = Render(Format::kTable, {"name"},
                                 {{Cell::Text("a\xc2\x9b"
                                              "b\xe2\x80\xae"
                                              "c\t")}});
  EXPECT_NE(out.find("a\\u009bb\\u202ec\\t"), std::string::npos) << out;
  EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos);
  EXPECT_EQ(out.find("\xe2\x80\xae"), std::string::npos);
}

TEST(TableWriterTest, ColourOffMeansNoEscapeByteAnywhere) {
  TerminalInfo term;
  term.color = false;
  const std::string out = Render(Format::kTable, kColumns, FixedRows(), term);
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
}

TEST(TableWriterTest, ColourOnMakesHeaderBoldAndNullDim) {
  TerminalInfo term;
  term.color = true;
  term.is_tty = true;
  const std::string out = Render(Format::kTable, {"pid", "parent"}, {{Cell::Integer(1), Cell::Null()}}, term);
  EXPECT_EQ(out,
            "\x1b[1mpid\x1b[0m | \x1b[1mparent\x1b[0m\n"
            "----+-------\n"
            "  1 | \x1b[2mNULL\x1b[0m\n"
            "(1 row)\n");
  // Hostile values stay escaped even with colour on: the only ESC bytes are ours.
  const std::string hostile = Render(Format::kTable, {"n"}, {{Cell::Text("\x1b]0;pwned\x07")}}, term);
  EXPECT_NE(hostile.find("\\x1b]0;pwned\\x07"), std::string::npos) << hostile;
  EXPECT_EQ(hostile, "\x1b[1mn\x1b[0m\n" + std::string(16, '-') + "\n\\x1b]0;pwned\\x07\n(1 row)\n");
}

TEST(TableWriterTest, FitsTerminalWidth) {
  TerminalInfo term;
  term.width = 40;
  const std::string long_cmd = "/usr/bin/python3 -m http.server --bind 0.0.0.0 8080 --directory /tmp/x";
  const std::vector<std::vector<Cell>> rows = {
      {Cell::Integer(99999), Cell::Text("\xd0\xbf\xd1\x80\xd0\xbe\xd1\x86\xd0\xb5\xd1\x81\xd1\x81"),
       Cell::Text(long_cmd), Cell::Blob(long_cmd)},
      {Cell::Integer(1), Cell::Text("evil\x1b[31m\nroot"), Cell::Text("sh -c \"a,b\"\nx"), Cell::Null()},
  };
  const std::string out = Render(Format::kTable, {"pid", "name", "cmdline", "hash"}, rows, term);
  std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 5u) << out;
  for (const std::string& line : lines) EXPECT_LE(CodePoints(line), 40u) << line;
  EXPECT_EQ(CodePoints(lines[1]), 40u) << "the width is used, not wasted:\n" << out;
  EXPECT_NE(out.find("\xe2\x80\xa6"), std::string::npos) << "expected truncation:\n" << out;
  EXPECT_NE(lines[1].find("-+-"), std::string::npos) << "still a table:\n" << out;
  // Narrow columns keep their width: the widest columns gave way first.
  EXPECT_EQ(lines[2].substr(0, 14), "99999 | \xd0\xbf\xd1\x80\xd0\xbe");
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
}

TEST(TableWriterTest, TooManyColumnsForWidthBecomesRecords) {
  TerminalInfo term;
  term.width = 40;
  std::vector<std::string> columns;
  std::vector<Cell> row;
  const std::string value = "value-that-is-fairly-long-and-keeps-going-past-forty";
  for (int i = 0; i < 12; ++i) {
    columns.push_back("column_" + std::to_string(i));
    row.push_back(Cell::Text(value));
  }
  const std::string out = Render(Format::kTable, columns, {row, row}, term);
  for (const std::string& line : Lines(out)) EXPECT_LE(CodePoints(line), 40u) << line;
  EXPECT_NE(out.find("-[ RECORD 2 ]"), std::string::npos) << out;
  EXPECT_NE(out.find("column_11 | value-"), std::string::npos) << out;
  EXPECT_EQ(Lines(out).back(), "(2 rows)");
}

TEST(TableWriterTest, StreamingPastLookAheadKeepsWidths) {
  std::ostringstream out;
  auto writer = MakeRowWriter(Format::kTable, out, {});
  ASSERT_TRUE(writer->Begin({"n", "name"}).ok());
  for (size_t i = 1; i < kTableLookAheadRows; ++i) {
    ASSERT_TRUE(writer->Row({Cell::Integer(static_cast<int64_t>(i)), Cell::Text("short")}).ok());
  }
  EXPECT_EQ(out.str(), "") << "rows before the look-ahead is full are buffered";
  ASSERT_TRUE(writer->Row({Cell::Integer(200), Cell::Text("short")}).ok());
  EXPECT_NE(out.str(), "") << "the look-ahead is bounded: output starts at row 200";
  ASSERT_TRUE(writer->Row({Cell::Integer(123456), Cell::Text("a much longer name than before")}).ok());
  ASSERT_TRUE(writer->End().ok());

  std::vector<std::string> lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 2 + 201 + 1u);
  EXPECT_EQ(lines[0], "n   | name");
  EXPECT_EQ(lines[1], "----+------");
  EXPECT_EQ(lines[2], "  1 | short");
  EXPECT_EQ(lines[201], "200 | short");
  EXPECT_EQ(lines[202], "12\xe2\x80\xa6 | a mu\xe2\x80\xa6");  // cut to the same widths
  EXPECT_EQ(lines[203], "(201 rows)");
}

TEST(TableWriterTest, HugeCellIsCappedInLookAhead) {
  const std::string huge(1 << 20, 'x');
  const std::string out = Render(Format::kTable, {"v"}, {{Cell::Text(huge)}});
  std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(CodePoints(lines[2]), kTableMaxCellWidth);
}

// ---------------------------------------------------------------- errors

TEST(RowWriterErrorsTest, RejectedWritesAreReported) {
  for (Format format : {Format::kTable, Format::kJson, Format::kJsonl, Format::kCsv}) {
    SCOPED_TRACE(std::string(FormatName(format)));
    FailingBuf buf;
    std::ostream out(&buf);
    auto writer = MakeRowWriter(format, out, {});
    (void)writer->Begin({"a"}).ok();  // csv/json fail here already, table only at End
    EXPECT_FALSE(writer->Row({Cell::Integer(1)}).ok() && writer->End().ok());
  }
}

TEST(RowWriterErrorsTest, FailingStreamIsReported) {
  for (Format format : {Format::kTable, Format::kJson, Format::kJsonl, Format::kCsv}) {
    SCOPED_TRACE(std::string(FormatName(format)));
    std::ostringstream out;
    auto writer = MakeRowWriter(format, out, {});
    ASSERT_TRUE(writer->Begin({"a"}).ok());
    out.setstate(std::ios::badbit);
    Status row = writer->Row({Cell::Integer(1)});
    Status end = writer->End();
    EXPECT_FALSE(end.ok());
    EXPECT_TRUE(end.code() == StatusCode::kUnavailable || end.code() == StatusCode::kDataLoss);
    EXPECT_NE(end.message().find("writing output"), std::string::npos) << end.ToString();
    if (format != Format::kTable) {
      EXPECT_FALSE(row.ok());  // the table may still be buffering
    }
  }
}

TEST(RowWriterErrorsTest, ErrorsAreStickyAndBeginChecksTheStream) {
  std::ostringstream out;
  out.setstate(std::ios::failbit);
  auto writer = MakeRowWriter(Format::kCsv, out, {});
  EXPECT_FALSE(writer->Begin({"a"}).ok());
  out.clear();
  EXPECT_FALSE(writer->Row({Cell::Integer(1)}).ok());
  EXPECT_FALSE(writer->End().ok());
}

TEST(RowWriterErrorsTest, StreamExceptionsDoNotEscape) {
  for (Format format : {Format::kTable, Format::kJson, Format::kJsonl, Format::kCsv}) {
    SCOPED_TRACE(std::string(FormatName(format)));
    FailingBuf buf;
    std::ostream out(&buf);
    out.exceptions(std::ios::badbit | std::ios::failbit);
    auto writer = MakeRowWriter(format, out, {});
    Status begin = Status::Ok(), row = Status::Ok(), end = Status::Ok();
    EXPECT_NO_THROW({
      begin = writer->Begin({"a"});
      row = writer->Row({Cell::Integer(1)});
      end = writer->End();
    });
    EXPECT_FALSE(end.ok());
    EXPECT_NE(end.message().find("writing output"), std::string::npos) << end.ToString();
  }
}

TEST(RowWriterErrorsTest, DiskFullIsDataLoss) {
  std::ofstream full("/dev/full");
  if (!full.is_open()) GTEST_SKIP() << "/dev/full is not available";
  auto writer = MakeRowWriter(Format::kCsv, full, {});
  ASSERT_TRUE(writer->Begin({"a"}).ok());
  ASSERT_TRUE(writer->Row({Cell::Text("x")}).ok());  // still in the stream buffer
  Status end = writer->End();
  EXPECT_EQ(end.code(), StatusCode::kDataLoss) << end.ToString();
  EXPECT_NE(end.message().find("No space left on device"), std::string::npos) << end.ToString();
}

TEST(RowWriterErrorsTest, MisuseIsRejected) {
  std::ostringstream out;
  auto writer = MakeRowWriter(Format::kJson, out, {});
  EXPECT_EQ(writer->Row({}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(writer->End().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(writer->Begin({"a", "b"}).ok());
  EXPECT_EQ(writer->Begin({"a"}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(writer->Row({Cell::Integer(1)}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(writer->End().ok());
  EXPECT_EQ(writer->End().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(out.str(), "[]\n");
}

// ---------------------------------------------------------------- DetectTerminal

TEST(DetectTerminalTest, PipeIsNotATerminal) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ScopedEnv no_color("NO_COLOR", nullptr);
  ScopedEnv term("TERM", "xterm-256color");
  {
    ScopedEnv columns("COLUMNS", "123");
    TerminalInfo info = DetectTerminal(fds[1], false);
    EXPECT_FALSE(info.is_tty);
    EXPECT_FALSE(info.color);
    EXPECT_EQ(info.width, 123);
  }
  for (const char* bad : {"abc", "-5", "0", "", "99999999999"}) {
    ScopedEnv columns("COLUMNS", bad);
    EXPECT_EQ(DetectTerminal(fds[1], false).width, 0) << bad;
  }
  close(fds[0]);
  close(fds[1]);
}

TEST(DetectTerminalTest, ColourRulesOnATerminal) {
  Pty pty;
  if (pty.fd() < 0) GTEST_SKIP() << "no pseudo-terminal available";
  ASSERT_TRUE(pty.SetWidth(97));
  ScopedEnv columns("COLUMNS", "50");
  ScopedEnv term("TERM", "xterm-256color");
  {
    ScopedEnv no_color("NO_COLOR", nullptr);
    TerminalInfo info = DetectTerminal(pty.fd(), false);
    EXPECT_TRUE(info.is_tty);
    EXPECT_TRUE(info.color);
    EXPECT_EQ(info.width, 97);  // TIOCGWINSZ wins over $COLUMNS
    EXPECT_FALSE(DetectTerminal(pty.fd(), /*no_color_flag=*/true).color);
  }
  {
    ScopedEnv no_color("NO_COLOR", "");  // set, even empty
    EXPECT_FALSE(DetectTerminal(pty.fd(), false).color);
  }
  {
    ScopedEnv no_color("NO_COLOR", "1");
    EXPECT_FALSE(DetectTerminal(pty.fd(), false).color);
  }
  {
    ScopedEnv no_color("NO_COLOR", nullptr);
    ScopedEnv dumb("TERM", "dumb");
    EXPECT_FALSE(DetectTerminal(pty.fd(), false).color);
  }
  // A terminal that reports no size falls back to $COLUMNS.
  ASSERT_TRUE(pty.SetWidth(0));
  EXPECT_EQ(DetectTerminal(pty.fd(), false).width, 50);
}

TEST(DetectTerminalTest, BadFd) {
  TerminalInfo info = DetectTerminal(-1, false);
  EXPECT_FALSE(info.is_tty);
  EXPECT_FALSE(info.color);
}

// ---------------------------------------------------------------- WriteObject

ordered_json HealthObject() {
  ordered_json o;
  o["status"] = "degraded";
  o["uptime_s"] = 12;
  o["load"] = 0.25;
  o["components"]["procmond"]["status"] = "ok";
  o["components"]["sink"]["status"] = "down\x1b[2J";
  o["sinks"] = ordered_json::array({"stdout", "webhook"});
  o["last_error"] = nullptr;
  o["verified"] = true;
  return o;
}

TEST(WriteObjectTest, Json) {
  std::ostringstream out;
  ASSERT_TRUE(WriteObject(Format::kJson, out, HealthObject(), {}).ok());
  EXPECT_EQ(ordered_json::parse(out.str()), HealthObject());
  EXPECT_EQ(out.str().substr(0, 24), "{\n  \"status\": \"degraded\"");
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos);
  EXPECT_EQ(out.str().back(), '\n');

  // Same text as nlohmann's own pretty printer for plain values.
  json plain = {{"b", {1, 2}}, {"a", {{"x", nullptr}}}, {"c", 1.5}, {"e", json::object()}};
  std::ostringstream out2;
  ASSERT_TRUE(WriteObject(Format::kJson, out2, plain, {}).ok());
  EXPECT_EQ(out2.str(), plain.dump(2) + "\n");
}

TEST(WriteObjectTest, Jsonl) {
  std::ostringstream out;
  ASSERT_TRUE(WriteObject(Format::kJsonl, out, HealthObject(), {}).ok());
  EXPECT_EQ(Lines(out.str()).size(), 1u);
  EXPECT_EQ(ordered_json::parse(out.str()), HealthObject());
}

TEST(WriteObjectTest, Table) {
  std::ostringstream out;
  ASSERT_TRUE(WriteObject(Format::kTable, out, HealthObject(), {}).ok());
  const std::string key_pad(26 - 3, ' ');
  EXPECT_EQ(out.str(), "key" + key_pad + " | value\n" + std::string(26, '-') + "-+-" + std::string(20, '-') +
                           "\n"
                           "status                     | degraded\n"
                           "uptime_s                   |                   12\n"
                           "load                       |                 0.25\n"
                           "components.procmond.status | ok\n"
                           "components.sink.status     | down\\x1b[2J\n"
                           "sinks                      | [\"stdout\",\"webhook\"]\n"
                           "last_error                 | NULL\n"
                           "verified                   | true\n");  // no "(N rows)" trailer for an object
}

TEST(WriteObjectTest, Csv) {
  std::ostringstream out;
  ASSERT_TRUE(WriteObject(Format::kCsv, out, HealthObject(), {}).ok());
  EXPECT_EQ(out.str(),
            "key,value\n"
            "status,degraded\n"
            "uptime_s,12\n"
            "load,0.25\n"
            "components.procmond.status,ok\n"
            "components.sink.status,down\\x1b[2J\n"  // escaped like every human-facing writer
            "sinks,\"[\"\"stdout\"\",\"\"webhook\"\"]\"\n"
            "last_error,\n"
            "verified,true\n");
}

TEST(WriteObjectTest, RejectsNonObjectAndReportsWriteErrors) {
  std::ostringstream out;
  EXPECT_EQ(WriteObject(Format::kJson, out, json::array({1}), {}).code(), StatusCode::kInvalidArgument);
  for (Format format : {Format::kTable, Format::kJson, Format::kJsonl, Format::kCsv}) {
    std::ostringstream bad;
    bad.setstate(std::ios::badbit);
    EXPECT_FALSE(WriteObject(format, bad, HealthObject(), {}).ok()) << FormatName(format);
  }
}

// ---------------------------------------------------------------- value formatting

TEST(ValueFormatTest, Reals) {
  auto real = [](double v) {
    std::string s;
    internal::AppendReal(s, v);
    return s;
  };
  EXPECT_EQ(real(3.0), "3.0");
  EXPECT_EQ(real(0.1), "0.1");
  EXPECT_EQ(real(-0.0), "-0.0");
  EXPECT_EQ(real(1e20), "1e+20");
  EXPECT_EQ(real(std::numeric_limits<double>::infinity()), "Inf");
  EXPECT_EQ(real(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(real(std::nan("")), "NaN");
}

TEST(ValueFormatTest, JsonStringEscaping) {
  auto js = [](std::string_view v) {
    std::string s;
    internal::AppendJsonString(s, v);
    return s;
  };
  EXPECT_EQ(js("a\"b\\c\n\x1b\x7f"), "\"a\\\"b\\\\c\\n\\u001b\\u007f\"");
  EXPECT_EQ(js("\xe2\x80\xae"), "\"\\u202e\"");               // RLO
  EXPECT_EQ(js("\xf3\xa0\x81\x81"), "\"\\udb40\\udc41\"");    // tag U+E0041, surrogate pair
  EXPECT_EQ(js("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");  // emoji kept raw
  for (std::string_view bad : {"\xff", "\xc0\xaf", "\xe2\x82", "\xed\xa0\x80", "a\xf4\x90\x80\x80z"}) {
    EXPECT_EQ(json::parse(js(bad)).get<std::string>(), SanitizeUtf8(bad));
  }
}

TEST(ValueFormatTest, TerminalEscapingAndTruncation) {
  internal::DisplayText t = internal::EscapeForTerminal("a\x1b\x01\xff\xc2\x85", 100);
  EXPECT_EQ(t.text, "a\\x1b\\x01\\xff\\u0085");
  EXPECT_EQ(t.width, t.text.size());
  t = internal::EscapeForTerminal("abcdef", 4);
  EXPECT_EQ(t.text, "abc\xe2\x80\xa6");
  EXPECT_EQ(t.width, 4u);
  t = internal::EscapeForTerminal("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 4);  // 3 wide characters
  EXPECT_EQ(t.text, "\xe6\x97\xa5\xe2\x80\xa6");
  EXPECT_EQ(t.width, 3u);
  t = internal::EscapeForTerminal("abc", 0);
  EXPECT_EQ(t.text, "");
}

}  // namespace
}  // namespace sentinel::cli
