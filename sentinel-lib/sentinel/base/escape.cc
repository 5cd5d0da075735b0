#include "sentinel/base/escape.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sentinel/base/hex.h"

namespace sentinel {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// \uXXXX, or a surrogate pair above U+FFFF (JSON).
void AppendJsonUnicodeEscape(std::string& out, char32_t cp) {
  if (cp < 0x10000) {
    out += "\\u";
    AppendHexDigits(out, cp, 4);
    return;
  }
  const char32_t v = cp - 0x10000;
  out += "\\u";
  AppendHexDigits(out, 0xD800 + (v >> 10), 4);
  out += "\\u";
  AppendHexDigits(out, 0xDC00 + (v & 0x3FF), 4);
}

}  // namespace

size_t DecodeUtf8(std::string_view s, size_t i, char32_t* cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
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

void AppendEscapedText(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    char32_t cp = 0;
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {
      AppendHexByteEscape(out, c);
      n = 1;
    } else if (!IsUnsafeCodePoint(cp)) {
      out.append(s.substr(i, n));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F) {
      AppendHexByteEscape(out, static_cast<uint8_t>(cp));
    } else if (cp < 0x10000) {
      out += "\\u";
      AppendHexDigits(out, cp, 4);
    } else {
      out += "\\U";
      AppendHexDigits(out, cp, 8);
    }
    i += n;
  }
}

std::string EscapeText(std::string_view s) {
  std::string out;
  AppendEscapedText(out, s);
  return out;
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  size_t run_start = 0;  // start of bytes that need no escaping, copied in one go
  size_t i = 0;
  auto flush_run = [&] { out.append(s.substr(run_start, i - run_start)); };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
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
    } else {
      AppendJsonUnicodeEscape(out, cp);
    }
    i += n;
    run_start = i;
  }
  flush_run();
  out += '"';
}

std::string HardenJsonText(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  bool in_string = false;
  for (size_t i = 0; i < json.size();) {
    const auto c = static_cast<unsigned char>(json[i]);
    if (!in_string) {
      if (c == '"') in_string = true;
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c == '\\' && i + 1 < json.size()) {  // an escape is copied whole: \" does not end the string
      out += json.substr(i, 2);
      i += 2;
      continue;
    }
    if (c == '"') {
      in_string = false;
      out += '"';
      ++i;
      continue;
    }
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    char32_t cp = 0;
    size_t n = DecodeUtf8(json, i, &cp);
    if (n == 0) {
      out += "\\ufffd";
      n = 1;
    } else if (IsUnsafeCodePoint(cp)) {
      AppendJsonUnicodeEscape(out, cp);
    } else {
      out.append(json.substr(i, n));
    }
    i += n;
  }
  return out;
}

bool CsvCellNeedsNeutralising(std::string_view cell) {
  if (cell.empty()) return false;
  switch (cell.front()) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r': return true;
    default: return false;
  }
}

std::string NeutraliseCsvFormula(std::string_view cell) {
  if (!CsvCellNeedsNeutralising(cell)) return std::string(cell);
  std::string out = "'";
  out += cell;
  return out;
}

namespace {

struct UrlParts {
  std::string_view scheme, userinfo, hostport, rest;  // rest: path, query and fragment
  bool ok = false;
};

UrlParts SplitUrl(std::string_view url) {
  UrlParts p;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return p;
  p.scheme = url.substr(0, sep);
  for (char c : p.scheme) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
                    c == '-' || c == '.';
    if (!ok) return p;
  }
  std::string_view after = url.substr(sep + 3);
  const size_t end = after.find_first_of("/?#");
  std::string_view authority = after.substr(0, end);
  p.rest = end == std::string_view::npos ? std::string_view() : after.substr(end);
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    p.userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
  }
  p.hostport = authority;
  p.ok = !p.hostport.empty();
  return p;
}

void ReplaceAll(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + with.size())) {
    text.replace(pos, what.size(), with);
  }
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  const UrlParts p = SplitUrl(url);
  if (!p.ok) return "<url>";
  std::string out = EscapeText(p.scheme);
  out += "://";
  out += EscapeText(p.hostport);
  if (!p.userinfo.empty() || (!p.rest.empty() && p.rest != "/")) {
    out += "/\xE2\x80\xA6";  // "/…": something was left out
  } else if (p.rest == "/") {
    out += '/';
  }
  return out;
}

std::string ScrubUrl(std::string_view text, std::string_view url) {
  std::string out(text);
  if (url.empty()) return out;
  ReplaceAll(out, url, RedactUrl(url));
  const UrlParts p = SplitUrl(url);
  if (!p.ok) return out;
  std::vector<std::string_view> secrets;
  if (!p.userinfo.empty()) {
    secrets.push_back(p.userinfo);
    const size_t colon = p.userinfo.find(':');
    if (colon != std::string_view::npos) secrets.push_back(p.userinfo.substr(colon + 1));
  }
  if (!p.rest.empty()) {
    secrets.push_back(p.rest);
    const size_t q = p.rest.find_first_of("?#");
    if (q != std::string_view::npos) {
      secrets.push_back(p.rest.substr(0, q));
      secrets.push_back(p.rest.substr(q + 1));
    }
  }
  // Longest first, so a piece is not half-replaced by a shorter one inside it.
  std::sort(secrets.begin(), secrets.end(), [](auto a, auto b) { return a.size() > b.size(); });
  for (std::string_view s : secrets) {
    if (s.size() > 3) ReplaceAll(out, s, "***");
  }
  return out;
}

std::string_view Utf8Prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  // Step back over continuation bytes to the start of the cut sequence.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

}  // namespace sentinel
