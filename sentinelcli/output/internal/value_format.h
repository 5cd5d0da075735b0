// Private to sentinelcli/output: how single values are spelled in each
// format (numbers, hex, JSON strings, terminal-safe text) and how wide they
// are on screen. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sentinel/base/escape.h"

namespace sentinel::cli::internal {

// The escaping rules live in base (sentinel/base/escape.h), shared by every
// human-facing writer: UTF-8 decoding, the unsafe code points and the JSON
// string form are the same functions here.
using sentinel::DecodeUtf8;
using sentinel::IsUnsafeCodePoint;

// Terminal columns taken by a printable code point: 2 for East Asian wide
// and fullwidth characters, else 1 (combining marks count 1, so widths are
// never underestimated).
size_t CodePointWidth(char32_t cp);

// Display width of valid UTF-8 text.
size_t DisplayWidth(std::string_view utf8);

// INTEGER: decimal.
void AppendInteger(std::string& out, int64_t v);
// REAL: shortest round-trip decimal, always with '.' or an exponent ("3.0");
// non-finite as "Inf", "-Inf", "NaN".
void AppendReal(std::string& out, double v);
// REAL for JSON: as AppendReal, non-finite as null.
void AppendJsonReal(std::string& out, double v);
// Lowercase hex of `bytes`, at most `max_chars` characters.
void AppendHex(std::string& out, std::string_view bytes, size_t max_chars = std::string::npos);

// `s` as a JSON string literal (base AppendJsonString): invalid UTF-8 bytes
// become U+FFFD; '"', '\\' and unsafe code points are escaped (\n, \u001b,
// \u202e, surrogate pairs above U+FFFF).
using sentinel::AppendJsonString;

// Text made safe for a terminal, with its display width.
struct DisplayText {
  std::string text;
  size_t width = 0;
};

// Escapes `s` for a terminal (\n \r \t, \xNN for other C0, DEL and invalid
// UTF-8 bytes, \uXXXX / \UXXXXXXXX for other unsafe code points) and cuts it
// to `max_width` columns with "…". Reads only as much of `s` as it needs.
DisplayText EscapeForTerminal(std::string_view s, size_t max_width);

// Cuts `t` (valid UTF-8) to at most `max_width` columns, ending in "…" when
// anything was removed.
void TruncateToWidth(DisplayText& t, size_t max_width);

}  // namespace sentinel::cli::internal
