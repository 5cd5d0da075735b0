// The one output escaper: how attacker-controlled text (process names, argv,
// paths, query results) is made safe before it reaches a person -- a
// terminal, a log line, a syslog message, a CSV cell, an email -- and how
// URLs that may carry credentials are shown in error messages.
// docs/security.md ("Output boundary") states the rules; every human-facing
// writer uses these functions. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sentinel {

// Decodes the UTF-8 sequence at s[i] (i < s.size()). Returns its length and
// sets *cp, or returns 0 for an invalid byte (overlong, surrogate, truncated,
// out of range, a lone continuation byte such as a raw C1 byte 0x9b).
size_t DecodeUtf8(std::string_view s, size_t i, char32_t* cp);

// Code points that must never reach a reader raw:
//   C0 controls (incl. \n \r \t ESC), DEL, C1 controls U+0080..U+009F (CSI
//   U+009B, NEL U+0085), line/paragraph separators U+2028/U+2029, bidi
//   controls (U+061C, U+200E/F, U+202A..E, U+2066..9), invisible format
//   characters (U+00AD, U+180E, U+200B..D, U+2060..F, U+FEFF, U+FFF9..B) and
//   tag characters U+E0000..E007F.
bool IsUnsafeCodePoint(char32_t cp);

// Text for one line of a terminal or log: every unsafe code point and every
// invalid UTF-8 byte is written as an ASCII escape, so the result is valid
// UTF-8 without any of them and cannot start a new line, move the cursor or
// reorder the text:
//   \n \r \t; \xNN for other C0, DEL and invalid bytes (a raw 0x9b byte is
//   \x9b); \uXXXX for other unsafe code points (U+009B is \u009b, U+202E is
//   \u202e); \UXXXXXXXX above U+FFFF. Backslash itself is left alone: the
//   line is for reading, the JSON forms are exact.
std::string EscapeText(std::string_view s);
void AppendEscapedText(std::string& out, std::string_view s);

// `s` as a JSON string literal with quotes: invalid UTF-8 bytes become
// U+FFFD, '"' and '\\' are escaped, and every unsafe code point is written
// as \uXXXX (\n, \r, \t, \b, \f in their short forms; surrogate pairs above
// U+FFFF), so JSON printed to a terminal or a JSON-lines reader is safe too.
void AppendJsonString(std::string& out, std::string_view s);

// Rewrites a JSON text (as nlohmann::json::dump produces) so no unsafe code
// point or invalid UTF-8 byte appears raw: inside strings they become \uXXXX
// (invalid bytes U+FFFD). The JSON value is unchanged. Outside strings valid
// JSON holds only ASCII, so the text is walked as a whole.
std::string HardenJsonText(std::string_view json);

// A CSV cell neutralised for spreadsheets (OWASP "CSV injection"): when the
// text starts with = + - @, TAB or CR, a single quote is put in front so no
// spreadsheet evaluates it as a formula. Text cells only: numbers written
// from INTEGER/REAL values (e.g. -5) are not passed through this.
std::string NeutraliseCsvFormula(std::string_view cell);
bool CsvCellNeedsNeutralising(std::string_view cell);

// A URL fit for an error message, log line or database row: only
// scheme://host[:port] is kept; when anything else was there (userinfo, a
// path other than "/", query, fragment) it is dropped and "/…" is shown. Webhook URLs
// often carry their token in the path (Slack /services/T/B/XXXX, Discord
// /api/webhooks/ID/TOKEN) or the query (?token=), and SMTP URLs in the
// userinfo, so none of these parts is ever shown. Something that does not
// parse as scheme://authority is shown as "<url>".
std::string RedactUrl(std::string_view url);

// Replaces every occurrence of `url`'s secret-bearing parts (the whole URL,
// its userinfo, path and query when longer than 3 bytes) in `text` with the
// redacted form / "***", for messages produced by a library (curl) that may
// repeat them.
std::string ScrubUrl(std::string_view text, std::string_view url);

// Cuts `s` to at most `max_bytes` bytes at a UTF-8 boundary (never inside a
// sequence).
std::string_view Utf8Prefix(std::string_view s, size_t max_bytes);

}  // namespace sentinel
