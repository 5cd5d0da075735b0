// Sigma parsing: the YAML document, search identifiers, value modifiers and
// the condition, into a SigmaRule (sigma.h).
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <set>

#include "sentinel/base/strings.h"
#include "sentinel/detection/regexp_function.h"
#include "sentinel/detection/sigma.h"
#include "sentinel/detection/sigma_internal.h"

namespace sentinel::detection {
namespace {

using sigma_internal::MakeOp;

constexpr std::size_t kMaxConditionDepth = 64;
constexpr std::size_t kMaxWindashPositions = 4;  // 5^4 = 625 variants of one value
// Terms a rule's detection may expand to (the corpus's largest has about
// 1,100): a condition naming a big identifier many times must not build a
// tree, and an SQL text, without bound.
constexpr std::size_t kMaxDetectionTerms = 20'000;
// Bytes of values a detection may expand to (the SQL is about twice that;
// the native format takes a query of at most 256 KiB).
constexpr std::size_t kMaxDetectionBytes = 96 * 1024;
// Compiled `re` instructions a rule may hold (each pattern at most
// kMaxRegexpProgramSize): the evaluator keeps them all.
constexpr std::size_t kMaxDetectionRegexProgram = 100'000;

// Refuses the file: "<origin>: <construct>: <reason>".
Status Refuse(std::string_view origin, std::string_view construct, std::string_view reason) {
  return InvalidArgumentError(std::string(origin) + ": " + std::string(construct) + ": " +
                              std::string(reason));
}

// ---------------------------------------------------------------- field keys

// A field key such as `CommandLine|contains|all`, decoded.
struct FieldSpec {
  SigmaField field = SigmaField::kImage;
  enum class Position : uint8_t { kExact, kContains, kStartsWith, kEndsWith } position = Position::kExact;
  bool all = false;
  bool cased = false;
  bool re = false;
  bool exists = false;
  bool windash = false;
  bool base64 = false;
  bool base64offset = false;
  std::string re_flags;  // of i, m, s
  int modifiers = 0;
};

constexpr std::string_view kSupportedModifiers =
    "contains, startswith, endswith, all, re (with i, m, s), cased, exists, windash, base64, base64offset";

std::string UnsupportedModifierReason(std::string_view m) {
  std::string why = "modifier " + QuoteForMessage(m) + " is not supported";
  static const std::map<std::string_view, std::string_view> kWhy = {
      {"cidr", "no IP address field in process creation"},
      {"fieldref", "comparing two fields is not translated"},
      {"expand", "placeholders need a pipeline SentinelD does not have"},
      {"utf16", "command lines are stored as UTF-8 text"},
      {"utf16le", "command lines are stored as UTF-8 text"},
      {"utf16be", "command lines are stored as UTF-8 text"},
      {"wide", "command lines are stored as UTF-8 text"},
      {"neq", "not part of SPEC §13's modifier set; use a filter selection with not"},
      {"lt", "numeric comparisons are not part of SPEC §13's modifier set"},
      {"lte", "numeric comparisons are not part of SPEC §13's modifier set"},
      {"gt", "numeric comparisons are not part of SPEC §13's modifier set"},
      {"gte", "numeric comparisons are not part of SPEC §13's modifier set"},
  };
  auto it = kWhy.find(m);
  return why + " (" + std::string(it != kWhy.end() ? it->second : "supported: ") +
         (it != kWhy.end() ? "" : std::string(kSupportedModifiers)) + ")";
}

// Applies one modifier name to `spec`; false when unknown.
bool ApplyModifier(std::string_view m, FieldSpec* spec) {
  using P = FieldSpec::Position;
  if (m == "contains")
    spec->position = P::kContains;
  else if (m == "startswith")
    spec->position = P::kStartsWith;
  else if (m == "endswith")
    spec->position = P::kEndsWith;
  else if (m == "all")
    spec->all = true;
  else if (m == "cased")
    spec->cased = true;
  else if (m == "re")
    spec->re = true;
  else if (m == "exists")
    spec->exists = true;
  else if (m == "windash")
    spec->windash = true;
  else if (m == "base64")
    spec->base64 = true;
  else if (m == "base64offset")
    spec->base64offset = true;
  else if ((m == "i" || m == "m" || m == "s") && spec->re)
    spec->re_flags += m;
  else
    return false;
  ++spec->modifiers;
  return true;
}

// Combinations that have no meaning.
std::optional<std::string> ConflictingModifiers(const FieldSpec& s) {
  if (s.exists && s.modifiers > 1) return "exists cannot be combined with other modifiers";
  if (s.re && (s.position != FieldSpec::Position::kExact || s.windash || s.base64 || s.base64offset))
    return "re cannot be combined with contains, startswith, endswith, windash or base64";
  if (s.base64 && s.base64offset) return "base64 and base64offset cannot be combined";
  return std::nullopt;
}

Result<FieldSpec> ParseFieldKey(std::string_view key, std::string_view origin, std::string_view construct) {
  std::vector<std::string> parts = Split(key, '|');
  FieldSpec spec;
  auto field = ParseSigmaField(parts[0]);
  if (!field) {
    return Refuse(origin, construct,
                  "field " + QuoteForMessage(parts[0]) +
                      " is not supported (process creation fields: Image, CommandLine, ParentImage, "
                      "ParentCommandLine, User, CurrentDirectory, LogonId, ProcessId, ParentProcessId)");
  }
  spec.field = *field;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    if (!ApplyModifier(parts[i], &spec))
      return Refuse(origin, construct, UnsupportedModifierReason(parts[i]));
  }
  if (auto why = ConflictingModifiers(spec)) return Refuse(origin, construct, *why);
  return spec;
}

// ---------------------------------------------------------------- values

// A Sigma string value as wildcard tokens: `*` any string, `?` one
// character, `\` escaping `*`, `?` and `\` (literal before anything else).
std::vector<SigmaToken> ParseWildcards(std::string_view v) {
  std::vector<SigmaToken> out;
  auto literal = [&](char c) {
    if (out.empty() || out.back().kind != SigmaToken::Kind::kLiteral) out.push_back({});
    out.back().text.push_back(c);
  };
  for (std::size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (c == '\\' && i + 1 < v.size() && (v[i + 1] == '*' || v[i + 1] == '?' || v[i + 1] == '\\')) {
      literal(v[++i]);
    } else if (c == '*') {
      if (out.empty() || out.back().kind != SigmaToken::Kind::kAnyString)
        out.push_back({SigmaToken::Kind::kAnyString, ""});
    } else if (c == '?') {
      out.push_back({SigmaToken::Kind::kAnyChar, ""});
    } else {
      literal(c);
    }
  }
  return out;
}

bool HasWildcard(const std::vector<SigmaToken>& tokens) {
  return std::any_of(tokens.begin(), tokens.end(),
                     [](const SigmaToken& t) { return t.kind != SigmaToken::Kind::kLiteral; });
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? kAlphabet[n & 63] : '=');
  }
  return out;
}

// `base64offset`: the three encodings of `v` at byte offsets 0, 1 and 2 of
// a longer text, without the characters that depend on the neighbours.
std::vector<std::string> Base64Offsets(std::string_view v) {
  static constexpr std::size_t kStart[] = {0, 2, 3};
  static constexpr std::size_t kEndTrim[] = {0, 3, 2};  // by (size + offset) % 3
  std::vector<std::string> out;
  for (std::size_t shift = 0; shift < 3; ++shift) {
    const std::string enc = Base64(std::string(shift, ' ') + std::string(v));
    const std::size_t trim = kEndTrim[(v.size() + shift) % 3];
    if (enc.size() < kStart[shift] + trim) continue;
    out.push_back(enc.substr(kStart[shift], enc.size() - kStart[shift] - trim));
  }
  return out;
}

// `windash`: every variant of `text` with each option dash (`-`, `/`, en
// dash, em dash, horizontal bar at the start of the text or after a space)
// replaced by each of the five.
Result<std::vector<std::string>> WindashVariants(const std::string& text) {
  static const std::vector<std::string> kDashes = {"-", "/", "\xE2\x80\x93", "\xE2\x80\x94", "\xE2\x80\x95"};
  struct Spot {
    std::size_t pos, len;
  };
  std::vector<Spot> spots;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && text[i - 1] != ' ') continue;
    for (const auto& d : kDashes) {
      if (text.compare(i, d.size(), d) == 0) spots.push_back({i, d.size()});
    }
  }
  if (spots.size() > kMaxWindashPositions) {
    return InvalidArgumentError("windash over more than " + std::to_string(kMaxWindashPositions) +
                                " option dashes in one value");
  }
  std::vector<std::string> out = {""};
  std::size_t at = 0;
  for (const auto& s : spots) {
    std::vector<std::string> next;
    for (const auto& prefix : out) {
      for (const auto& d : kDashes) next.push_back(prefix + text.substr(at, s.pos - at) + d);
    }
    out = std::move(next);
    at = s.pos + s.len;
  }
  for (auto& v : out) v += text.substr(at);
  return out;
}

SigmaPredicate PatternPredicate(const FieldSpec& spec, std::vector<SigmaToken> body) {
  using P = FieldSpec::Position;
  SigmaPredicate p;
  p.field = spec.field;
  p.cased = spec.cased;
  const SigmaToken any{SigmaToken::Kind::kAnyString, ""};
  if (spec.position == P::kContains || spec.position == P::kEndsWith) p.tokens.push_back(any);
  for (auto& t : body) {
    if (t.kind == SigmaToken::Kind::kAnyString && !p.tokens.empty() &&
        p.tokens.back().kind == SigmaToken::Kind::kAnyString)
      continue;
    p.tokens.push_back(std::move(t));
  }
  if ((spec.position == P::kContains || spec.position == P::kStartsWith) &&
      (p.tokens.empty() || p.tokens.back().kind != SigmaToken::Kind::kAnyString))
    p.tokens.push_back(any);
  return p;
}

SigmaExpr Leaf(SigmaPredicate p) {
  SigmaExpr e;
  e.predicate = std::move(p);
  return e;
}

// The plain strings one value stands for after windash / base64 (each a
// literal, or for windash alone still a wildcard pattern).
Result<std::vector<std::string>> TransformedTexts(const FieldSpec& spec, const std::string& v) {
  std::vector<std::string> texts = {v};
  if (spec.windash) {
    ASSIGN_OR_RETURN(texts, WindashVariants(v));
  }
  if (!spec.base64 && !spec.base64offset) return texts;
  if (HasWildcard(ParseWildcards(v)))
    return InvalidArgumentError("a value with wildcards cannot be base64-encoded");
  std::vector<std::string> encoded;
  for (const auto& t : texts) {
    std::string plain;
    for (const auto& tok : ParseWildcards(t)) plain += tok.text;
    if (spec.base64) {
      encoded.push_back(Base64(plain));
    } else {
      for (auto& e : Base64Offsets(plain)) encoded.push_back(std::move(e));
    }
  }
  return encoded;
}

// One scalar value of a field: a predicate, or an OR of its variants.
Result<SigmaExpr> ValueExpr(const FieldSpec& spec, const std::string& v) {
  if (spec.re) {
    SigmaPredicate p;
    p.field = spec.field;
    p.kind = SigmaPredicate::Kind::kRegex;
    p.regex = spec.re_flags.empty() ? v : "(?" + spec.re_flags + ")" + v;
    ASSIGN_OR_RETURN(p.compiled, CompileRegexp(p.regex));
    return Leaf(std::move(p));
  }
  if (sigma_internal::IsNumericField(spec.field) && spec.modifiers == 0) {
    if (auto n = ParseInt64(v); n && std::to_string(*n) == v) {
      SigmaPredicate p;
      p.field = spec.field;
      p.kind = SigmaPredicate::Kind::kNumber;
      p.number = *n;
      return Leaf(std::move(p));
    }
  }
  ASSIGN_OR_RETURN(auto texts, TransformedTexts(spec, v));
  const bool literal = spec.base64 || spec.base64offset;
  std::vector<SigmaExpr> variants;
  for (const auto& t : texts) {
    std::vector<SigmaToken> body =
        literal ? std::vector<SigmaToken>{{SigmaToken::Kind::kLiteral, t}} : ParseWildcards(t);
    if (!body.empty() && body[0].kind == SigmaToken::Kind::kLiteral && body[0].text.empty()) body.clear();
    variants.push_back(Leaf(PatternPredicate(spec, std::move(body))));
  }
  return MakeOp(SigmaExpr::Op::kOr, std::move(variants));
}

std::string Describe(const YAML::Node& n) {
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "null";
  return QuoteForMessage(n.Scalar());
}

// `Field|exists: true|false`.
Result<SigmaExpr> ExistsExpr(const FieldSpec& spec, const YAML::Node& value, std::string_view origin,
                             std::string_view construct) {
  if (!value.IsScalar() || (value.Scalar() != "true" && value.Scalar() != "false"))
    return Refuse(origin, construct, "exists expects true or false, got " + Describe(value));
  SigmaPredicate p;
  p.field = spec.field;
  p.kind = SigmaPredicate::Kind::kExists;
  p.exists = value.Scalar() == "true";
  return Leaf(std::move(p));
}

// The terms the search identifiers of one detection may still create
// (YAML aliases can repeat a big map many times over).
struct Size {
  std::size_t terms = 0;
  std::size_t bytes = 0;
  std::size_t program = 0;  // RE2 instructions
};

Size SizeOf(const SigmaExpr& e) {
  if (e.op == SigmaExpr::Op::kPredicate) {
    Size s{1, e.predicate.regex.size(),
           e.predicate.compiled ? static_cast<std::size_t>(e.predicate.compiled->ProgramSize()) : 0};
    for (const auto& t : e.predicate.tokens) s.bytes += t.text.size() + 1;
    return s;
  }
  Size s;
  for (const auto& c : e.children) {
    const Size cs = SizeOf(c);
    s.terms += cs.terms;
    s.bytes += cs.bytes;
    s.program += cs.program;
  }
  return s;
}

std::string TooLarge() {
  return "the detection expands to more than " + std::to_string(kMaxDetectionTerms) + " terms, " +
         std::to_string(kMaxDetectionBytes / 1024) + " KiB of values or " +
         std::to_string(kMaxDetectionRegexProgram) + " regular expression instructions";
}

struct Budget {
  Size left{kMaxDetectionTerms, kMaxDetectionBytes, kMaxDetectionRegexProgram};

  Status Spend(Size n, std::string_view origin, const std::string& construct) {
    if (n.terms > left.terms || n.bytes > left.bytes || n.program > left.program)
      return Refuse(origin, construct, TooLarge());
    left.terms -= n.terms;
    left.bytes -= n.bytes;
    left.program -= n.program;
    return Status::Ok();
  }
};

// One `key: value(s)` entry of a selection map.
Result<SigmaExpr> FieldEntryExpr(const std::string& key, const YAML::Node& value, std::string_view origin,
                                 const std::string& construct, Budget* budget) {
  ASSIGN_OR_RETURN(FieldSpec spec, ParseFieldKey(key, origin, construct));
  if (spec.exists) return ExistsExpr(spec, value, origin, construct);
  if (value.IsNull()) {
    if (spec.modifiers > 0) return Refuse(origin, construct, "null cannot take modifiers");
    SigmaPredicate p;
    p.field = spec.field;
    p.kind = SigmaPredicate::Kind::kNull;
    return Leaf(std::move(p));
  }
  std::vector<std::string> values;
  if (value.IsScalar()) {
    values.push_back(value.Scalar());
  } else if (value.IsSequence()) {
    for (const auto& item : value) {
      if (!item.IsScalar())
        return Refuse(origin, construct,
                      "a list of values may hold only strings and numbers, got " + Describe(item));
      values.push_back(item.Scalar());
    }
  } else {
    return Refuse(origin, construct, "expected a value or a list of values, got " + Describe(value));
  }
  if (values.empty()) return Refuse(origin, construct, "empty list of values");
  if (values.size() > budget->left.terms) return budget->Spend({values.size(), 0, 0}, origin, construct);
  std::vector<SigmaExpr> terms;
  for (const auto& v : values) {
    if (!IsValidUtf8(v) || v.find('\0') != std::string::npos)
      return Refuse(origin, construct, "a value is not valid UTF-8 text (or holds a NUL)");
    auto e = ValueExpr(spec, v);
    if (!e.ok()) return Refuse(origin, construct, e.status().message());
    RETURN_IF_ERROR(budget->Spend(SizeOf(*e), origin, construct));
    terms.push_back(std::move(*e));
  }
  return MakeOp(spec.all ? SigmaExpr::Op::kAnd : SigmaExpr::Op::kOr, std::move(terms));
}

// A selection map: every entry holds (AND).
Result<SigmaExpr> MapExpr(const YAML::Node& map, std::string_view origin, const std::string& construct,
                          Budget* budget) {
  std::vector<SigmaExpr> terms;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return Refuse(origin, construct, "field names must be strings");
    const std::string key = kv.first.Scalar();
    ASSIGN_OR_RETURN(auto e, FieldEntryExpr(key, kv.second, origin, construct + "." + key, budget));
    terms.push_back(std::move(e));
  }
  if (terms.empty()) return Refuse(origin, construct, "empty selection");
  return MakeOp(SigmaExpr::Op::kAnd, std::move(terms));
}

constexpr std::string_view kKeywordReason =
    "keyword (field-less) search is not supported: a process event has no single full-text field; "
    "name the field (e.g. CommandLine|contains)";

// A search identifier: a map (AND) or a list of maps (OR).
Result<SigmaExpr> IdentifierExpr(const YAML::Node& node, std::string_view origin, const std::string& name,
                                 Budget* budget) {
  const std::string construct = "detection." + name;
  if (node.IsMap()) return MapExpr(node, origin, construct, budget);
  if (!node.IsSequence() || node.size() == 0)
    return Refuse(origin, construct, "expected a mapping of fields or a list of them, got " + Describe(node));
  std::vector<SigmaExpr> alternatives;
  for (std::size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsMap()) return Refuse(origin, construct, std::string(kKeywordReason));
    ASSIGN_OR_RETURN(auto e, MapExpr(node[i], origin, construct + "[" + std::to_string(i) + "]", budget));
    alternatives.push_back(std::move(e));
  }
  return MakeOp(SigmaExpr::Op::kOr, std::move(alternatives));
}

// ---------------------------------------------------------------- condition

struct Identifiers {
  std::vector<std::string> order;
  std::map<std::string, SigmaExpr> exprs;
  std::map<std::string, Size> sizes;
};

bool GlobMatch(std::string_view pattern, std::string_view name) {
  // `*` only (the condition's identifier patterns).
  std::size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

class ConditionParser {
 public:
  ConditionParser(std::string_view text, const Identifiers& ids, std::string_view origin)
      : ids_(ids), origin_(origin), text_(text) {
    Tokenize(text);
  }

  Result<SigmaExpr> Parse() {
    if (!error_.ok()) return error_;
    ASSIGN_OR_RETURN(auto e, ParseOr(0));
    if (pos_ != tokens_.size()) return Fail("unexpected " + QuoteForMessage(tokens_[pos_]));
    return e;
  }

 private:
  void Tokenize(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
      const char c = text[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
      } else if (c == '(' || c == ')' || c == '|') {
        if (c == '|') error_ = Fail("aggregation (`| count()` and the like) is not supported");
        tokens_.emplace_back(1, c);
        ++i;
      } else {
        std::size_t j = i;
        while (j < text.size() && std::string_view(" \t\n\r()|").find(text[j]) == std::string_view::npos) ++j;
        tokens_.emplace_back(text.substr(i, j - i));
        if (EqualsIgnoreCase(tokens_.back(), "near"))
          error_ = Fail("near is not supported (it needs a time window over events)");
        i = j;
      }
    }
  }

  Status Fail(std::string_view why) const {
    return Refuse(origin_, "detection.condition", std::string(why) + " in " + QuoteForMessage(text_));
  }

  bool Peek(std::string_view word) const {
    return pos_ < tokens_.size() && EqualsIgnoreCase(tokens_[pos_], word);
  }

  using Level = Result<SigmaExpr> (ConditionParser::*)(std::size_t);

  // `next (word next)*` as one `op` node: or over and, and over not.
  Result<SigmaExpr> ParseChain(std::size_t depth, std::string_view word, SigmaExpr::Op op, Level next) {
    std::vector<SigmaExpr> terms;
    ASSIGN_OR_RETURN(auto first, (this->*next)(depth));
    terms.push_back(std::move(first));
    while (Peek(word)) {
      ++pos_;
      ASSIGN_OR_RETURN(auto more, (this->*next)(depth));
      terms.push_back(std::move(more));
    }
    return MakeOp(op, std::move(terms));
  }

  Result<SigmaExpr> ParseOr(std::size_t depth) {
    return ParseChain(depth, "or", SigmaExpr::Op::kOr, &ConditionParser::ParseAnd);
  }

  Result<SigmaExpr> ParseAnd(std::size_t depth) {
    return ParseChain(depth, "and", SigmaExpr::Op::kAnd, &ConditionParser::ParseNot);
  }

  Result<SigmaExpr> ParseNot(std::size_t depth) {
    if (depth > kMaxConditionDepth) return Fail("nested too deeply");
    if (!Peek("not")) return ParsePrimary(depth);
    ++pos_;
    ASSIGN_OR_RETURN(auto inner, ParseNot(depth + 1));
    SigmaExpr e;
    e.op = SigmaExpr::Op::kNot;
    e.children.push_back(std::move(inner));
    return e;
  }

  Result<SigmaExpr> ParsePrimary(std::size_t depth) {
    if (pos_ >= tokens_.size()) return Fail("unexpected end");
    const std::string& t = tokens_[pos_];
    if (t == "(") {
      ++pos_;
      ASSIGN_OR_RETURN(auto inner, ParseOr(depth + 1));
      if (!Peek(")")) return Fail("missing )");
      ++pos_;
      return inner;
    }
    if (t == ")") return Fail("unexpected )");
    if (EqualsIgnoreCase(t, "near"))
      return Fail("near is not supported (it needs a time window over events)");
    if (pos_ + 1 < tokens_.size() && EqualsIgnoreCase(tokens_[pos_ + 1], "of")) return ParseOf();
    for (std::string_view kw : {"and", "or", "not", "of", "them"}) {
      if (EqualsIgnoreCase(t, kw)) return Fail("unexpected " + QuoteForMessage(t));
    }
    ++pos_;
    auto it = ids_.exprs.find(t);
    if (it == ids_.exprs.end()) return Fail("unknown search identifier " + QuoteForMessage(t));
    RETURN_IF_ERROR(Spend(t));
    return it->second;
  }

  // `1 of X*`, `all of X*`, `1 of them`, `all of them`.
  Result<SigmaExpr> ParseOf() {
    const std::string quantifier = ToLower(tokens_[pos_]);
    if (quantifier != "1" && quantifier != "all")
      return Fail(QuoteForMessage(tokens_[pos_]) + " of is not supported (only 1 of and all of)");
    pos_ += 2;
    if (pos_ >= tokens_.size()) return Fail("missing pattern after of");
    const std::string pattern = tokens_[pos_++];
    const bool them = EqualsIgnoreCase(pattern, "them");
    std::vector<SigmaExpr> terms;
    for (const auto& name : ids_.order) {
      const bool match = them ? !name.starts_with("_") : GlobMatch(pattern, name);
      if (!match) continue;
      RETURN_IF_ERROR(Spend(name));
      terms.push_back(ids_.exprs.at(name));
    }
    if (terms.empty()) return Fail("pattern " + QuoteForMessage(pattern) + " matches no search identifier");
    return MakeOp(quantifier == "1" ? SigmaExpr::Op::kOr : SigmaExpr::Op::kAnd, std::move(terms));
  }

  // Counts the terms a reference to identifier `name` copies into the tree.
  Status Spend(const std::string& name) {
    const Size n = ids_.sizes.at(name);
    used_.terms += n.terms;
    used_.bytes += n.bytes;
    used_.program += n.program;
    if (used_.terms > kMaxDetectionTerms || used_.bytes > kMaxDetectionBytes ||
        used_.program > kMaxDetectionRegexProgram)
      return Fail(TooLarge());
    return Status::Ok();
  }

  const Identifiers& ids_;
  Size used_;
  std::string_view origin_;
  std::string text_;
  std::vector<std::string> tokens_;
  std::size_t pos_ = 0;
  Status error_;
};

// The conditions (a string, or a list of them linked by OR).
Result<std::vector<std::string>> Conditions(const YAML::Node& detection, std::string_view origin) {
  const YAML::Node cond = detection["condition"];
  std::vector<std::string> out;
  if (!cond.IsDefined()) return Refuse(origin, "detection.condition", "is required");
  if (cond.IsScalar()) out.push_back(cond.Scalar());
  if (cond.IsSequence()) {
    for (const auto& c : cond) {
      if (!c.IsScalar()) return Refuse(origin, "detection.condition", "expected strings, got " + Describe(c));
      out.push_back(c.Scalar());
    }
  }
  if (out.empty())
    return Refuse(origin, "detection.condition", "is required (a string or a list of strings)");
  return out;
}

Result<SigmaExpr> ParseDetection(const YAML::Node& detection, std::string_view origin) {
  if (!detection.IsMap())
    return Refuse(origin, "detection", "expected a mapping, got " + Describe(detection));
  Identifiers ids;
  Budget budget;
  for (const auto& kv : detection) {
    const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (name == "condition") continue;
    if (name == "timeframe")
      return Refuse(origin, "detection.timeframe", "time windows over several events are not supported");
    ASSIGN_OR_RETURN(auto e, IdentifierExpr(kv.second, origin, name, &budget));
    ids.sizes[name] = SizeOf(e);
    ids.order.push_back(name);
    ids.exprs.emplace(name, std::move(e));
  }
  ASSIGN_OR_RETURN(auto conditions, Conditions(detection, origin));
  std::vector<SigmaExpr> alternatives;
  for (const auto& text : conditions) {
    ASSIGN_OR_RETURN(auto e, ConditionParser(text, ids, origin).Parse());
    alternatives.push_back(std::move(e));
  }
  SigmaExpr expr = MakeOp(SigmaExpr::Op::kOr, std::move(alternatives));
  sigma_internal::OrderCheapFirst(&expr);
  return expr;
}

// ---------------------------------------------------------------- document

Status CheckLogsource(const YAML::Node& ls, std::string_view origin) {
  if (!ls.IsMap()) return Refuse(origin, "logsource", "expected a mapping, got " + Describe(ls));
  auto get = [&](const char* k) {
    const YAML::Node n = ls[k];
    return n.IsDefined() && n.IsScalar() ? ToLower(n.Scalar()) : std::string();
  };
  const std::string product = get("product"), category = get("category"), service = get("service");
  if (product != "linux" || category != "process_creation" || !service.empty()) {
    std::string got = "product: " + (product.empty() ? "-" : product) +
                      ", category: " + (category.empty() ? "-" : category) +
                      (service.empty() ? "" : ", service: " + service);
    return Refuse(origin, "logsource",
                  got + " is not supported (only product: linux, category: process_creation)");
  }
  return Status::Ok();
}

Result<std::string> ScalarField(const YAML::Node& doc, const char* key, std::string_view origin,
                                bool required) {
  const YAML::Node n = doc[key];
  if (!n.IsDefined() || n.IsNull()) {
    if (required) return Refuse(origin, key, "is required");
    return std::string();
  }
  if (!n.IsScalar()) return Refuse(origin, key, "expected a string, got " + Describe(n));
  if (!IsValidUtf8(n.Scalar())) return Refuse(origin, key, "is not valid UTF-8");
  return n.Scalar();
}

Result<std::vector<std::string>> ListField(const YAML::Node& doc, const char* key, std::string_view origin) {
  const YAML::Node n = doc[key];
  std::vector<std::string> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (n.IsScalar() && !n.Scalar().empty()) {
    if (!IsValidUtf8(n.Scalar())) return Refuse(origin, key, "is not valid UTF-8");
    out.push_back(n.Scalar());
  }
  if (n.IsMap()) return Refuse(origin, key, "expected a list of strings, got a mapping");
  for (std::size_t i = 0; n.IsSequence() && i < n.size(); ++i) {
    if (!n[i].IsScalar() || !IsValidUtf8(n[i].Scalar()))
      return Refuse(origin, std::string(key) + "[" + std::to_string(i) + "]", "expected a UTF-8 string");
    if (std::find(out.begin(), out.end(), n[i].Scalar()) == out.end()) out.push_back(n[i].Scalar());
  }
  return out;
}

Status ParseMetadata(const YAML::Node& doc, std::string_view origin, SigmaRule* r) {
  ASSIGN_OR_RETURN(r->id, ScalarField(doc, "id", origin, true));
  ASSIGN_OR_RETURN(r->title, ScalarField(doc, "title", origin, true));
  ASSIGN_OR_RETURN(r->description, ScalarField(doc, "description", origin, false));
  ASSIGN_OR_RETURN(r->status, ScalarField(doc, "status", origin, false));
  ASSIGN_OR_RETURN(r->author, ScalarField(doc, "author", origin, false));
  ASSIGN_OR_RETURN(r->level, ScalarField(doc, "level", origin, false));
  ASSIGN_OR_RETURN(r->references, ListField(doc, "references", origin));
  ASSIGN_OR_RETURN(r->tags, ListField(doc, "tags", origin));
  ASSIGN_OR_RETURN(r->falsepositives, ListField(doc, "falsepositives", origin));
  r->level = ToLower(r->level);
  if (r->level.empty()) r->level = "medium";
  static const std::set<std::string_view> kLevels = {"informational", "low", "medium", "high", "critical"};
  if (!kLevels.count(r->level))
    return Refuse(origin, "level",
                  "expected informational, low, medium, high or critical, got " + QuoteForMessage(r->level));
  const std::string rule_id = "sigma-" + ToLower(r->id);
  const bool id_ok = std::all_of(r->id.begin(), r->id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  if (!id_ok || rule_id.size() > 128)
    return Refuse(origin, "id", QuoteForMessage(r->id) + " cannot form a rule id (letters, digits, . _ -)");
  return Status::Ok();
}

Result<YAML::Node> LoadSingleDocument(std::string_view text, std::string_view origin) {
  if (text.size() > kMaxRuleFileBytes)
    return Refuse(origin, "file", "larger than " + std::to_string(kMaxRuleFileBytes) + " bytes");
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return Refuse(origin, "line " + std::to_string(e.mark.line + 1), "not valid YAML: " + e.msg);
  }
  if (docs.size() != 1)
    return Refuse(origin, "file",
                  std::to_string(docs.size()) +
                      " YAML documents: rule collections and correlation documents are not supported "
                      "(one rule per file)");
  if (!docs[0].IsMap()) return Refuse(origin, "file", "expected a mapping, got " + Describe(docs[0]));
  return docs[0];
}

}  // namespace

Result<SigmaRule> ParseSigmaRule(std::string_view yaml_text, std::string_view origin) {
  ASSIGN_OR_RETURN(YAML::Node doc, LoadSingleDocument(yaml_text, origin));
  try {
    if (doc["correlation"].IsDefined())
      return Refuse(origin, "correlation", "correlation rules (over several events) are not supported");
    if (doc["filter"].IsDefined())
      return Refuse(origin, "filter", "Sigma filter documents are not supported (use not in a condition)");
    if (!doc["logsource"].IsDefined() || !doc["detection"].IsDefined())
      return Refuse(origin, "file", "not a Sigma rule (needs logsource and detection)");
    RETURN_IF_ERROR(CheckLogsource(doc["logsource"], origin));
    SigmaRule r;
    RETURN_IF_ERROR(ParseMetadata(doc, origin, &r));
    ASSIGN_OR_RETURN(r.detection, ParseDetection(doc["detection"], origin));
    return r;
  } catch (const YAML::Exception& e) {
    return Refuse(origin, "line " + std::to_string(e.mark.line + 1), e.msg);
  }
}

}  // namespace sentinel::detection
