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

namespace {

// The one loop of the escapers below. Walks `s` unit by unit (a valid UTF-8
// sequence, or one invalid byte) and copies the units policy.Keep(cp) takes,
// in runs; every other unit goes to policy.Escape(out, rest, n, cp) (n == 0:
// the invalid byte rest[0]), which returns how many bytes it consumed.
template <class Policy>
void Rewrite(std::string& out, std::string_view s, Policy& policy) {
  out.reserve(out.size() + s.size());
  size_t run_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp = 0;
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n != 0 && policy.Keep(cp)) {
      i += n;
      continue;
    }
    out.append(s.substr(run_start, i - run_start));
    i += policy.Escape(out, s.substr(i), n, cp);
    run_start = i;
  }
  out.append(s.substr(run_start));
}

// The short backslash escapes: \n \r \t everywhere, and JSON's other ones
// (\b \f \" \\) when `json`. Empty when `cp` has none.
std::string_view ShortEscape(char32_t cp, bool json) {
  switch (cp) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
  }
  if (!json) return {};
  switch (cp) {
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '"': return "\\\"";
    case '\\': return "\\\\";
    default: return {};
  }
}

// EscapeText: \xNN for invalid bytes, C0 and DEL; \uXXXX / \UXXXXXXXX above.
struct TextPolicy {
  static bool Keep(char32_t cp) { return !IsUnsafeCodePoint(cp); }
  static size_t Escape(std::string& out, std::string_view rest, size_t n, char32_t cp) {
    if (n == 0) {
      AppendHexByteEscape(out, static_cast<uint8_t>(rest[0]));
      return 1;
    }
    if (std::string_view e = ShortEscape(cp, /*json=*/false); !e.empty()) {
      out += e;
    } else if (cp < 0x20 || cp == 0x7F) {
      AppendHexByteEscape(out, static_cast<uint8_t>(cp));
    } else if (cp < 0x10000) {
      out += "\\u";
      AppendHexDigits(out, cp, 4);
    } else {
      out += "\\U";
      AppendHexDigits(out, cp, 8);
    }
    return n;
  }
};

// AppendJsonString: U+FFFD for invalid bytes; short escapes, else \uXXXX.
struct JsonStringPolicy {
  static bool Keep(char32_t cp) { return !IsUnsafeCodePoint(cp) && cp != '"' && cp != '\\'; }
  static size_t Escape(std::string& out, std::string_view /*rest*/, size_t n, char32_t cp) {
    if (n == 0) {
      out += kReplacement;
      return 1;
    }
    if (std::string_view e = ShortEscape(cp, /*json=*/true); !e.empty()) {
      out += e;
    } else {
      AppendJsonUnicodeEscape(out, cp);
    }
    return n;
  }
};

// HardenJsonText: outside strings everything is copied; inside, escapes are
// copied whole (\" does not end the string), invalid bytes become \ufffd
// and unsafe code points \uXXXX.
struct HardenJsonPolicy {
  bool in_string = false;
  bool Keep(char32_t cp) {
    if (cp == '"') {
      in_string = !in_string;
      return true;
    }
    return !in_string || (cp != '\\' && !IsUnsafeCodePoint(cp));
  }
  size_t Escape(std::string& out, std::string_view rest, size_t n, char32_t cp) const {
    if (n == 0) {
      if (in_string) {
        out += "\\ufffd";
      } else {
        out += rest[0];
      }
      return 1;
    }
    if (cp == '\\') {
      const size_t whole = std::min<size_t>(2, rest.size());
      out.append(rest.substr(0, whole));
      return whole;
    }
    AppendJsonUnicodeEscape(out, cp);
    return n;
  }
};

}  // namespace

void AppendEscapedText(std::string& out, std::string_view s) {
  TextPolicy policy;
  Rewrite(out, s, policy);
}

std::string EscapeText(std::string_view s) {
  std::string out;
  AppendEscapedText(out, s);
  return out;
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  JsonStringPolicy policy;
  Rewrite(out, s, policy);
  out += '"';
}

std::string HardenJsonText(std::string_view json) {
  std::string out;
  HardenJsonPolicy policy;
  Rewrite(out, json, policy);
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
