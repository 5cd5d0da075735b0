#include "sentinelcli/output/internal/value_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace sentinel::cli::internal {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026, one column
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Appends `digits` lowercase hex digits of v.
void AppendHexDigits(std::string& out, uint32_t v, int digits) {
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += kHexDigits[(v >> shift) & 0xF];
}

}  // namespace

size_t DecodeUtf8(std::string_view s, size_t i, char32_t* cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  char32_t v;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 2 && v < 0x80) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000)) return 0;
  if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

bool IsUnsafeCodePoint(char32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return true;  // C0, DEL, C1
  switch (cp) {
    case 0x00AD:  // soft hyphen
    case 0x061C:  // Arabic letter mark
    case 0x180E:  // Mongolian vowel separator
    case 0xFEFF:  // BOM / zero-width no-break space
      return true;
    default: break;
  }
  return (cp >= 0x200B && cp <= 0x200F) ||  // zero-width space/joiners, LRM, RLM
         (cp >= 0x2028 && cp <= 0x202E) ||  // line/paragraph separators, bidi embeddings and overrides
         (cp >= 0x2060 && cp <= 0x206F) ||  // word joiner, invisible operators, bidi isolates
         (cp >= 0xFFF9 && cp <= 0xFFFB) ||  // interlinear annotation
         (cp >= 0xE0000 && cp <= 0xE007F);  // tag characters ("ASCII smuggling")
}

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
  out.reserve(out.size() + 2 * n);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    out += kHexDigits[c >> 4];
    out += kHexDigits[c & 0xF];
  }
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  size_t run_start = 0;  // start of bytes that need no escaping, copied in one go
  size_t i = 0;
  auto flush_run = [&] { out.append(s.substr(run_start, i - run_start)); };
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    char32_t cp = 0;
    size_t n = DecodeUtf8(s, i, &cp);
    if (n != 0 && !IsUnsafeCodePoint(cp) && cp != '"' && cp != '\\') {
      i += n;
      continue;
    }
    flush_run();
    if (n == 0) {
      out += kReplacement;
      n = 1;
    } else if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\b') {
      out += "\\b";
    } else if (cp == '\f') {
      out += "\\f";
    } else if (cp < 0x10000) {
      out += "\\u";
      AppendHexDigits(out, cp, 4);
    } else {
      char32_t v = cp - 0x10000;
      out += "\\u";
      AppendHexDigits(out, 0xD800 + (v >> 10), 4);
      out += "\\u";
      AppendHexDigits(out, 0xDC00 + (v & 0x3FF), 4);
    }
    i += n;
    run_start = i;
  }
  flush_run();
  out += '"';
}

DisplayText EscapeForTerminal(std::string_view s, size_t max_width) {
  DisplayText t;
  t.text.reserve(std::min(s.size(), max_width + 8));
  for (size_t i = 0; i < s.size() && t.width <= max_width;) {
    char32_t cp = 0;
    size_t n = DecodeUtf8(s, i, &cp);
    const size_t before = t.text.size();
    if (n == 0) {
      t.text += "\\x";
      AppendHexDigits(t.text, static_cast<unsigned char>(s[i]), 2);
      n = 1;
    } else if (!IsUnsafeCodePoint(cp)) {
      t.text.append(s.substr(i, n));
      t.width += CodePointWidth(cp);
      i += n;
      continue;
    } else if (cp == '\n') {
      t.text += "\\n";
    } else if (cp == '\r') {
      t.text += "\\r";
    } else if (cp == '\t') {
      t.text += "\\t";
    } else if (cp < 0x20 || cp == 0x7F) {
      t.text += "\\x";
      AppendHexDigits(t.text, cp, 2);
    } else if (cp < 0x10000) {
      t.text += "\\u";
      AppendHexDigits(t.text, cp, 4);
    } else {
      t.text += "\\U";
      AppendHexDigits(t.text, cp, 8);
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
