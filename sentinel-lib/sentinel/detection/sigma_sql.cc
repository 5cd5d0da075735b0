// Sigma: the detection tree as SQL over exec_events, the native rule, and
// the C++ evaluator of the same tree (sigma.h).
#include <re2/re2.h>

#include <algorithm>
#include <set>

#include "sentinel/base/strings.h"
#include "sentinel/detection/sigma.h"
#include "sentinel/detection/sigma_internal.h"
#include "sentinel/detection/sigma_prefilter.h"

namespace sentinel::detection {
namespace {

struct FieldInfo {
  SigmaField field;
  std::string_view name;
  std::string_view column;
};

constexpr FieldInfo kFields[kSigmaFieldCount] = {
    {SigmaField::kImage, "Image", "exe_path"},
    {SigmaField::kCommandLine, "CommandLine", "command_text"},
    {SigmaField::kParentImage, "ParentImage", "parent_exe_path"},
    {SigmaField::kParentCommandLine, "ParentCommandLine", "parent_command_text"},
    {SigmaField::kUser, "User", "user_name"},
    {SigmaField::kCurrentDirectory, "CurrentDirectory", "cwd"},
    {SigmaField::kLogonId, "LogonId", "login_uid"},
    {SigmaField::kProcessId, "ProcessId", "pid"},
    {SigmaField::kParentProcessId, "ParentProcessId", "ppid"},
};

using Kind = SigmaPredicate::Kind;
using TokenKind = SigmaToken::Kind;

// ---------------------------------------------------------------- cost

int PredicateCost(const SigmaPredicate& p) {
  // Paths are short and selective; command lines are long.
  const int length =
      (p.field == SigmaField::kCommandLine || p.field == SigmaField::kParentCommandLine) ? 2 : 1;
  switch (p.kind) {
    case Kind::kNumber:
    case Kind::kExists:
    case Kind::kNull: return 1;
    case Kind::kRegex: return 100 * length;
    case Kind::kPattern: break;
  }
  const bool leading = !p.tokens.empty() && p.tokens.front().kind == TokenKind::kAnyString;
  const bool trailing = !p.tokens.empty() && p.tokens.back().kind == TokenKind::kAnyString;
  int cost = 2;  // exact
  if (trailing && !leading) cost = 3;
  if (leading && !trailing) cost = 4;
  if (leading && trailing) cost = 6;
  return cost * length;
}

// ---------------------------------------------------------------- SQL

std::string SqlString(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    out.push_back(c);
    if (c == '\'') out.push_back('\'');
  }
  return out + "'";
}

std::string LikeSql(std::string_view column, const std::vector<SigmaToken>& tokens) {
  std::string pattern;
  bool escaped = false;
  for (const auto& t : tokens) {
    if (t.kind == TokenKind::kAnyString) pattern.push_back('%');
    if (t.kind == TokenKind::kAnyChar) pattern.push_back('_');
    for (char c : t.text) {
      if (c == '%' || c == '_' || c == '\\') {
        pattern.push_back('\\');
        escaped = true;
      }
      pattern.push_back(c);
    }
  }
  return std::string(column) + " LIKE " + SqlString(pattern) + (escaped ? " ESCAPE '\\'" : "");
}

std::string GlobSql(std::string_view column, const std::vector<SigmaToken>& tokens) {
  std::string pattern;
  for (const auto& t : tokens) {
    if (t.kind == TokenKind::kAnyString) pattern.push_back('*');
    if (t.kind == TokenKind::kAnyChar) pattern.push_back('?');
    for (char c : t.text) {
      if (c == '*' || c == '?' || c == '[') {
        pattern += '[';
        pattern += c;
        pattern += ']';
      } else {
        pattern.push_back(c);
      }
    }
  }
  return std::string(column) + " GLOB " + SqlString(pattern);
}

std::string PredicateSql(const SigmaPredicate& p) {
  const std::string_view col = SigmaFieldColumn(p.field);
  switch (p.kind) {
    case Kind::kNumber: return std::string(col) + " = " + std::to_string(p.number);
    case Kind::kExists: return std::string(col) + (p.exists ? " IS NOT NULL" : " IS NULL");
    case Kind::kNull: return "(" + std::string(col) + " IS NULL OR " + std::string(col) + " = '')";
    case Kind::kRegex: return "regexp(" + SqlString(p.regex) + ", " + std::string(col) + ")";
    case Kind::kPattern: break;
  }
  return p.cased ? GlobSql(col, p.tokens) : LikeSql(col, p.tokens);
}

constexpr std::size_t kLineWidth = 100;

std::string Render(const SigmaExpr& e, int indent);

// SQLite parses `a OR b OR c ...` into a tree as deep as the list is long
// and refuses depths over 1000: a longer list is written as parenthesized
// groups of kMaxGroupTerms terms (the 1,093-value rule of the corpus).
constexpr std::size_t kMaxGroupTerms = 100;

std::string RenderOp(const SigmaExpr& e, int indent);

// A long AND / OR as groups of kMaxGroupTerms, each in parentheses.
std::string RenderGroups(const SigmaExpr& e, int indent) {
  const std::string word = e.op == SigmaExpr::Op::kAnd ? "AND" : "OR";
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  std::string out;
  for (std::size_t at = 0; at < e.children.size(); at += kMaxGroupTerms) {
    SigmaExpr group;
    group.op = e.op;
    const std::size_t end = std::min(e.children.size(), at + kMaxGroupTerms);
    group.children.assign(e.children.begin() + static_cast<std::ptrdiff_t>(at),
                          e.children.begin() + static_cast<std::ptrdiff_t>(end));
    out += (at == 0 ? "(" : "\n" + pad + word + " (") + RenderOp(group, indent + 1) + ")";
  }
  return out;
}

// AND / OR: on one line when short, else one term per line.
std::string RenderOp(const SigmaExpr& e, int indent) {
  if (e.children.size() > kMaxGroupTerms) return RenderGroups(e, indent);
  const std::string word = e.op == SigmaExpr::Op::kAnd ? "AND" : "OR";
  std::vector<std::string> parts;
  std::size_t width = 0;
  bool multiline = false;
  for (const auto& c : e.children) {
    std::string s = Render(c, indent + 2);
    const bool group = c.op == SigmaExpr::Op::kAnd || c.op == SigmaExpr::Op::kOr;
    if (group) s = "(" + s + ")";
    multiline = multiline || s.find('\n') != std::string::npos;
    width += s.size() + word.size() + 2;
    parts.push_back(std::move(s));
  }
  if (!multiline && width + static_cast<std::size_t>(indent) <= kLineWidth)
    return Join(parts, " " + word + " ");
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  std::string out = parts[0];
  for (std::size_t i = 1; i < parts.size(); ++i) out += "\n" + pad + word + " " + parts[i];
  return out;
}

std::string Render(const SigmaExpr& e, int indent) {
  switch (e.op) {
    case SigmaExpr::Op::kPredicate: return PredicateSql(e.predicate);
    case SigmaExpr::Op::kNot:
      // IS NOT TRUE: a term over a missing (NULL) field is false, so its
      // negation holds (Sigma), where SQL's NOT NULL would be NULL.
      return "(" + Render(e.children[0], indent + 1) + ") IS NOT TRUE";
    case SigmaExpr::Op::kAnd:
    case SigmaExpr::Op::kOr: break;
  }
  return RenderOp(e, indent);
}

// ---------------------------------------------------------------- evaluator

char FoldAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Bytes of the character starting at s[i] as SQLite's LIKE and GLOB read
// it (sqlite3Utf8Read): a lead byte (0xC0 and up) with the continuation
// bytes after it, any other byte alone, also a stray continuation byte.
std::size_t CharLength(std::string_view s, std::size_t i) {
  std::size_t n = 1;
  if (static_cast<unsigned char>(s[i]) < 0xC0) return n;
  while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
  return n;
}

// One element of a flattened pattern: a byte, one character, or any string.
struct PatternUnit {
  enum class Kind : uint8_t { kByte, kChar, kStar } kind;
  char byte;
};

std::vector<PatternUnit> Flatten(const std::vector<SigmaToken>& tokens) {
  std::vector<PatternUnit> out;
  for (const auto& t : tokens) {
    if (t.kind == TokenKind::kAnyString) out.push_back({PatternUnit::Kind::kStar, 0});
    if (t.kind == TokenKind::kAnyChar) out.push_back({PatternUnit::Kind::kChar, 0});
    for (char c : t.text) out.push_back({PatternUnit::Kind::kByte, c});
  }
  return out;
}

// LIKE / GLOB semantics: `%`/`*` any characters, `_`/`?` one UTF-8
// character, ASCII letters folded unless `cased`.
bool MatchPattern(const std::vector<SigmaToken>& tokens, bool cased, std::string_view s) {
  const std::vector<PatternUnit> pat = Flatten(tokens);
  std::size_t p = 0, i = 0, star = pat.size(), mark = 0;
  while (i < s.size() || p < pat.size()) {
    if (p < pat.size() && pat[p].kind == PatternUnit::Kind::kStar) {
      star = p++;
      mark = i;
      continue;
    }
    if (p < pat.size() && i < s.size()) {
      const PatternUnit& u = pat[p];
      if (u.kind == PatternUnit::Kind::kChar) {
        i += CharLength(s, i);
        ++p;
        continue;
      }
      if (cased ? u.byte == s[i] : FoldAscii(u.byte) == FoldAscii(s[i])) {
        ++i;
        ++p;
        continue;
      }
    }
    if (star == pat.size() || mark >= s.size()) return false;
    mark += CharLength(s, mark);
    i = mark;
    p = star + 1;
  }
  return true;
}

bool SameChars(std::string_view a, std::string_view b, bool cased) {
  if (cased) return a == b;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (FoldAscii(a[i]) != FoldAscii(b[i])) return false;
  }
  return true;
}

// The shapes nearly every Sigma value has — one literal, exact or with a
// leading and/or trailing `*` — without building a flattened pattern.
std::optional<bool> MatchSimple(const std::vector<SigmaToken>& tokens, bool cased, std::string_view s) {
  std::size_t first = 0, last = tokens.size();
  const bool leading = last > 0 && tokens[0].kind == TokenKind::kAnyString;
  if (leading) ++first;
  const bool trailing = last > first && tokens[last - 1].kind == TokenKind::kAnyString;
  if (trailing) --last;
  if (last - first > 1 || (last == first + 1 && tokens[first].kind != TokenKind::kLiteral))
    return std::nullopt;
  const std::string_view lit = last == first ? std::string_view() : std::string_view(tokens[first].text);
  if (s.size() < lit.size()) return false;
  if (!leading && !trailing) return s.size() == lit.size() && SameChars(s, lit, cased);
  if (!leading) return SameChars(s.substr(0, lit.size()), lit, cased);
  if (!trailing) return SameChars(s.substr(s.size() - lit.size()), lit, cased);
  if (lit.empty()) return true;
  const char head = cased ? lit[0] : FoldAscii(lit[0]);
  for (std::size_t i = 0; i + lit.size() <= s.size(); ++i) {
    if ((cased ? s[i] : FoldAscii(s[i])) == head &&
        SameChars(s.substr(i + 1, lit.size() - 1), lit.substr(1), cased))
      return true;
  }
  return false;
}

bool EvaluatePredicate(const SigmaPredicate& p, const SigmaEvent& event) {
  const auto& value = event[static_cast<std::size_t>(p.field)];
  switch (p.kind) {
    case Kind::kExists: return value.has_value() == p.exists;
    case Kind::kNull: return !value || value->empty();
    case Kind::kNumber: return value && ParseInt64(*value) == std::optional<int64_t>(p.number);
    case Kind::kRegex: return value && p.compiled && RE2::PartialMatch(*value, *p.compiled);
    case Kind::kPattern: break;
  }
  if (!value) return false;
  if (auto simple = MatchSimple(p.tokens, p.cased, *value)) return *simple;
  return MatchPattern(p.tokens, p.cased, *value);
}

// ---------------------------------------------------------------- rule

models::Severity SeverityOfLevel(std::string_view level) {
  if (level == "critical") return models::Severity::kCritical;
  if (level == "high") return models::Severity::kHigh;
  if (level == "medium") return models::Severity::kMedium;
  return models::Severity::kLow;  // informational, low
}

// attack.t1059.004 -> T1059.004; nullopt for other tags.
std::optional<std::string> TechniqueOfTag(std::string_view tag) {
  const std::string t = ToLower(tag);
  if (!t.starts_with("attack.t")) return std::nullopt;
  std::string id = "T" + t.substr(8);
  auto digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const bool ok = (id.size() == 5 && digits(std::string_view(id).substr(1))) ||
                  (id.size() == 9 && digits(std::string_view(id).substr(1, 4)) && id[5] == '.' &&
                   digits(std::string_view(id).substr(6)));
  if (!ok) return std::nullopt;
  return id;
}

constexpr std::string_view kSelectColumns =
    "SELECT pid, ppid, name, exe_path, start_time, user_name, command_line,\n"
    "       CASE WHEN id IS NULL THEN 'scan' ELSE 'event' END AS source\n"
    "FROM exec_events\n";

}  // namespace

namespace sigma_internal {

SigmaExpr MakeOp(SigmaExpr::Op op, std::vector<SigmaExpr> terms) {
  if (terms.size() == 1) return std::move(terms[0]);
  SigmaExpr e;
  e.op = op;
  for (auto& t : terms) {
    if (t.op == op) {
      for (auto& c : t.children) e.children.push_back(std::move(c));
    } else {
      e.children.push_back(std::move(t));
    }
  }
  return e;
}

bool IsNumericField(SigmaField f) {
  return f == SigmaField::kLogonId || f == SigmaField::kProcessId || f == SigmaField::kParentProcessId;
}

int Cost(const SigmaExpr& e) {
  if (e.op == SigmaExpr::Op::kPredicate) return PredicateCost(e.predicate);
  int sum = 0;
  for (const auto& c : e.children) sum += Cost(c);
  return sum;
}

void OrderCheapFirst(SigmaExpr* e) {
  for (auto& c : e->children) OrderCheapFirst(&c);
  if (e->op != SigmaExpr::Op::kAnd && e->op != SigmaExpr::Op::kOr) return;
  // A negated filter rarely decides (it is mostly true): after the positive terms.
  auto key = [](const SigmaExpr& x) { return std::make_pair(x.op == SigmaExpr::Op::kNot, Cost(x)); };
  std::stable_sort(e->children.begin(), e->children.end(),
                   [&](const SigmaExpr& a, const SigmaExpr& b) { return key(a) < key(b); });
}

}  // namespace sigma_internal

std::string_view SigmaFieldName(SigmaField f) {
  return kFields[static_cast<std::size_t>(f)].name;
}

std::string_view SigmaFieldColumn(SigmaField f) {
  return kFields[static_cast<std::size_t>(f)].column;
}

std::optional<SigmaField> ParseSigmaField(std::string_view name) {
  for (const auto& f : kFields) {
    if (f.name == name) return f.field;
  }
  return std::nullopt;
}

std::string SigmaExprToSql(const SigmaExpr& expr) {
  return Render(expr, 2);
}

namespace {

// The tree with `leaf` deciding each predicate.
template <typename Leaf>
bool EvaluateTree(const SigmaExpr& e, const Leaf& leaf) {
  switch (e.op) {
    case SigmaExpr::Op::kPredicate: return leaf(e.predicate);
    case SigmaExpr::Op::kNot: return !EvaluateTree(e.children[0], leaf);
    case SigmaExpr::Op::kAnd:
      return std::all_of(e.children.begin(), e.children.end(),
                         [&](const SigmaExpr& c) { return EvaluateTree(c, leaf); });
    case SigmaExpr::Op::kOr: break;
  }
  return std::any_of(e.children.begin(), e.children.end(),
                     [&](const SigmaExpr& c) { return EvaluateTree(c, leaf); });
}

// A prepared pattern over the value as compared (folded unless cased).
bool MatchShape(const SigmaPredicate& p, std::string_view v) {
  const std::string_view lit = p.literal;
  switch (p.shape) {
    case SigmaPredicate::Shape::kExact: return v == lit;
    case SigmaPredicate::Shape::kPrefix: return v.starts_with(lit);
    case SigmaPredicate::Shape::kSuffix: return v.ends_with(lit);
    case SigmaPredicate::Shape::kContains: return v.find(lit) != std::string_view::npos;
    case SigmaPredicate::Shape::kNone: break;
  }
  return false;
}

}  // namespace

bool EvaluateSigma(const SigmaExpr& e, const SigmaEvent& event) {
  return EvaluateTree(e, [&](const SigmaPredicate& p) { return EvaluatePredicate(p, event); });
}

bool EvaluateSigma(const SigmaExpr& e, const SigmaEvent& event, const SigmaEvent& folded) {
  return EvaluateTree(e, [&](const SigmaPredicate& p) {
    if (p.kind != Kind::kPattern || p.shape == SigmaPredicate::Shape::kNone)
      return EvaluatePredicate(p, event);
    const auto f = static_cast<std::size_t>(p.field);
    const auto& value = p.cased ? event[f] : folded[f];
    return value && MatchShape(p, *value);
  });
}

// Here rather than in sigma_prefilter.cc: SigmaToRule needs it, and the
// fuzz targets link this file without the store.
bool SigmaPrefilterApplies(const SigmaExpr& expr) {
  if (expr.op != SigmaExpr::Op::kPredicate) {
    return std::all_of(expr.children.begin(), expr.children.end(),
                       [](const SigmaExpr& c) { return SigmaPrefilterApplies(c); });
  }
  for (const auto& t : expr.predicate.tokens) {
    if (std::any_of(t.text.begin(), t.text.end(),
                    [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
      return false;
  }
  return true;
}

void PrepareSigmaExpr(SigmaExpr* e) {
  for (auto& c : e->children) PrepareSigmaExpr(&c);
  if (e->op != SigmaExpr::Op::kPredicate) return;
  SigmaPredicate& p = e->predicate;
  p.shape = SigmaPredicate::Shape::kNone;
  if (p.kind != Kind::kPattern) return;
  const auto& t = p.tokens;
  std::size_t first = 0, last = t.size();
  const bool leading = last > 0 && t[0].kind == SigmaToken::Kind::kAnyString;
  if (leading) ++first;
  const bool trailing = last > first && t[last - 1].kind == SigmaToken::Kind::kAnyString;
  if (trailing) --last;
  // One literal between the stars; `*` alone and an empty value keep the general path.
  if (last != first + 1 || t[first].kind != SigmaToken::Kind::kLiteral) return;
  p.literal = t[first].text;
  if (!p.cased) {
    for (char& c : p.literal) c = FoldAscii(c);
  }
  using Shape = SigmaPredicate::Shape;
  p.shape =
      leading ? (trailing ? Shape::kContains : Shape::kSuffix) : (trailing ? Shape::kPrefix : Shape::kExact);
}

SigmaEvent FoldSigmaEvent(const SigmaEvent& event) {
  SigmaEvent out = event;
  for (auto& v : out) {
    if (!v) continue;
    for (char& c : *v) c = FoldAscii(c);
  }
  return out;
}

Rule SigmaToRule(const SigmaRule& s, std::string_view origin) {
  Rule r;
  r.id = "sigma-" + ToLower(s.id);
  r.name = s.title;
  r.description = s.description;
  r.severity = SeverityOfLevel(s.level);
  r.category = "process";
  r.tags = s.tags;
  for (const auto& tag : s.tags) {
    auto t = TechniqueOfTag(tag);
    if (t && std::find(r.mitre.begin(), r.mitre.end(), *t) == r.mitre.end()) r.mitre.push_back(*t);
  }
  r.enabled = true;
  r.dedup_keys = {"pid", "start_time"};
  r.on = RuleTrigger::kExec;
  r.query = std::string(kSelectColumns) + "WHERE " + SigmaExprToSql(s.detection) + "\n";
  r.sigma_id = s.id;
  if (SigmaPrefilterApplies(s.detection)) r.sigma_detection = std::make_shared<const SigmaExpr>(s.detection);
  r.author = s.author;
  r.status = s.status;
  r.references = s.references;
  r.falsepositives = s.falsepositives;
  r.source_path = std::string(origin);
  return r;
}

Result<Rule> ConvertSigmaRule(std::string_view yaml_text, std::string_view origin) {
  ASSIGN_OR_RETURN(SigmaRule s, ParseSigmaRule(yaml_text, origin));
  return SigmaToRule(s, origin);
}

}  // namespace sentinel::detection
