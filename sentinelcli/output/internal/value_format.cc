#include "sentinelcli/output/internal/value_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "sentinel/base/hex.h"

namespace sentinel::cli::internal {

namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026, one column

}  // namespace

size_t CodePointWidth(char32_t cp) {
  // East Asian Wide/Fullwidth blocks (after Markus Kuhn's wcwidth).
  const bool wide =
      (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) || (cp >= 0x3041 && cp <= 0x33FF) ||
      (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
      (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
      (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
      (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x2FFFD) ||
      (cp >= 0x30000 && cp <= 0x3FFFD);
  return wide ? 2 : 1;
}

size_t DisplayWidth(std::string_view utf8) {
  size_t width = 0;
  for (size_t i = 0; i < utf8.size();) {
    char32_t cp = 0;
    size_t n = DecodeUtf8(utf8, i, &cp);
    if (n == 0) {  // not expected for display text; count the byte
      ++width;
      ++i;
      continue;
    }
    width += CodePointWidth(cp);
    i += n;
  }
  return width;
}

void AppendInteger(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void AppendReal(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-Inf" : "Inf";
    return;
  }
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip
  std::string_view digits(buf, static_cast<size_t>(end - buf));
  out += digits;
  // Keep REAL visibly real (and a JSON float, not an integer) as SQLite does.
  if (digits.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void AppendJsonReal(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  AppendReal(out, v);
}

void AppendHex(std::string& out, std::string_view bytes, size_t max_chars) {
  size_t n = bytes.size();
  if (max_chars != std::string::npos) n = std::min(n, (max_chars + 1) / 2);
  sentinel::AppendHex(out, bytes.substr(0, n));
}

DisplayText EscapeForTerminal(std::string_view s, size_t max_width) {
  DisplayText t;
  t.text.reserve(std::min(s.size(), max_width + 8));
  for (size_t i = 0; i < s.size() && t.width <= max_width;) {
    char32_t cp = 0;
    size_t n = DecodeUtf8(s, i, &cp);
    const size_t before = t.text.size();
    if (n == 0) {
      AppendEscapedText(t.text, s.substr(i, 1));  // \xNN
      n = 1;
    } else if (!IsUnsafeCodePoint(cp)) {
      t.text.append(s.substr(i, n));
      t.width += CodePointWidth(cp);
      i += n;
      continue;
    } else {
      AppendEscapedText(t.text, s.substr(i, n));  // the one escaper (base/escape.h)
    }
    t.width += t.text.size() - before;  // escapes are ASCII
    i += n;
  }
  TruncateToWidth(t, max_width);
  return t;
}

void TruncateToWidth(DisplayText& t, size_t max_width) {
  if (t.width <= max_width) return;
  if (max_width == 0) {
    t.text.clear();
    t.width = 0;
    return;
  }
  const size_t budget = max_width - 1;  // one column for the ellipsis
  size_t width = 0;
  size_t i = 0;
  while (i < t.text.size()) {
    char32_t cp = 0;
    size_t n = DecodeUtf8(t.text, i, &cp);
    size_t w = 1;
    if (n == 0) {
      n = 1;
    } else {
      w = CodePointWidth(cp);
    }
    if (width + w > budget) break;
    width += w;
    i += n;
  }
  t.text.resize(i);
  t.text += kEllipsis;
  t.width = width + 1;
}

}  // namespace sentinel::cli::internal
