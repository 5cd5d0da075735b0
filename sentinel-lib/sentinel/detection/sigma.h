// Sigma rules (SPEC §13): parsing a Sigma document, compiling its detection
// into a boolean tree over the process-creation fields, and translating that
// tree into the sandboxed SQL of a native `on: exec` rule.
//
// Pipeline: ParseSigmaRule() reads the YAML (logsource, metadata, the search
// identifiers with their field modifiers, the condition) into a SigmaRule
// whose `detection` is a SigmaExpr: AND / OR / NOT over SigmaPredicates, the
// `1 of` / `all of` patterns already expanded, terms ordered cheapest first.
// SigmaExprToSql() renders it; ConvertSigmaRule() makes the native Rule.
// EvaluateSigma() evaluates the same tree over one event's field values in
// C++ (a prefilter can use it; sigma_test cross-checks it against the SQL).
//
// Anything outside what is supported (docs/sigma.md) is refused with
// InvalidArgument "<origin>: <construct>: <reason>", e.g.
// "x.yml: detection.selection: modifier 'cidr' is not supported (...)".
//
// The converter is the sigma feature (RE2, SENTINEL_SIGMA). A build without
// it compiles only IsSigmaDocument (sigma_document.cc) and links
// sigma_absent.cc, where ParseSigmaRule and ConvertSigmaRule refuse every
// Sigma file with InvalidArgument "<origin>: Sigma rule: <the feature is not
// in this build ...>" and the prefilter (sigma_prefilter.h) never applies: no
// rule has a Sigma detection there.
//
// Thread-safety: pure functions over their arguments.
//
// Semantics (the Sigma specification's): matching is case-insensitive
// (ASCII letters only, as SQLite LIKE folds) unless `cased`; `re` is RE2,
// case-sensitive unless `|i`; `*` / `?` are wildcards, `\` escapes `*`, `?`
// and `\` and is literal before anything else; a field the event lacks (NULL)
// never matches a predicate, so `not selection` holds for it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/detection/rule.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace sentinel::detection {

// The Sigma process_creation fields SentinelD maps (SPEC §13).
enum class SigmaField : uint8_t {
  kImage,
  kCommandLine,
  kParentImage,
  kParentCommandLine,
  kUser,
  kCurrentDirectory,
  kLogonId,
  kProcessId,
  kParentProcessId,
};
inline constexpr std::size_t kSigmaFieldCount = 9;

std::string_view SigmaFieldName(SigmaField f);    // "Image"
std::string_view SigmaFieldColumn(SigmaField f);  // "exe_path" (a column of exec_events)
std::optional<SigmaField> ParseSigmaField(std::string_view name);

// One piece of a wildcard pattern.
struct SigmaToken {
  enum class Kind : uint8_t { kLiteral, kAnyString, kAnyChar } kind = Kind::kLiteral;
  std::string text;  // kLiteral only
};

// One test of one field. A field the event lacks matches nothing but kNull.
struct SigmaPredicate {
  enum class Kind : uint8_t {
    kPattern,  // wildcard pattern over the whole value (contains = *x*)
    kRegex,    // RE2 search (`re`); flags already inline
    kExists,   // `exists: true|false`
    kNull,     // `Field: null`: missing or empty
    kNumber,   // integer equality on a numeric field
  };
  SigmaField field = SigmaField::kImage;
  Kind kind = Kind::kPattern;
  std::vector<SigmaToken> tokens;  // kPattern
  bool cased = false;              // kPattern: case-sensitive (`cased`)
  std::string regex;               // kRegex: the RE2 pattern given to regexp()
  std::shared_ptr<const re2::RE2> compiled;
  bool exists = true;  // kExists
  int64_t number = 0;  // kNumber
  // Set by PrepareSigmaExpr for a pattern of one literal, exact or with a
  // leading and/or trailing `*`: its shape and the literal as compared
  // (folded to lower case unless `cased`), matched over folded values.
  enum class Shape : uint8_t { kNone, kExact, kPrefix, kSuffix, kContains } shape = Shape::kNone;
  std::string literal;
};

struct SigmaExpr {
  enum class Op : uint8_t { kAnd, kOr, kNot, kPredicate } op = Op::kPredicate;
  std::vector<SigmaExpr> children;  // kAnd / kOr: two or more; kNot: one
  SigmaPredicate predicate;         // kPredicate
};

struct SigmaRule {
  std::string id;  // the Sigma `id` (a UUID)
  std::string title;
  std::string description;
  std::string status;
  std::string level;  // informational | low | medium | high | critical
  std::string author;
  std::vector<std::string> references;
  std::vector<std::string> tags;
  std::vector<std::string> falsepositives;
  SigmaExpr detection;
};

// True when the text parses as a YAML mapping with both `logsource` and
// `detection` (how `rules import|validate` and the agent tell Sigma from a
// native rule).
bool IsSigmaDocument(std::string_view yaml_text);

Result<SigmaRule> ParseSigmaRule(std::string_view yaml_text, std::string_view origin);

// The WHERE expression of `expr` over exec_events' columns.
std::string SigmaExprToSql(const SigmaExpr& expr);

// The native rule of a parsed Sigma rule (PLAN18 / SPEC §13): id
// sigma-<id>, on: exec, dedup_keys [pid, start_time], ATT&CK ids from tags.
Rule SigmaToRule(const SigmaRule& sigma, std::string_view origin);

// ParseSigmaRule + SigmaToRule.
Result<Rule> ConvertSigmaRule(std::string_view yaml_text, std::string_view origin);

// One event's values, indexed by SigmaField (nullopt: the field is missing /
// NULL). Numbers in their decimal text form.
using SigmaEvent = std::array<std::optional<std::string>, kSigmaFieldCount>;

// The tree evaluated in C++ with exactly the SQL's semantics (ASCII case
// folding, `?` = one UTF-8 character, NULL never matches).
bool EvaluateSigma(const SigmaExpr& expr, const SigmaEvent& event);

// For evaluating one tree over many events (the query worker's prefilter):
// PrepareSigmaExpr fills the patterns' shapes once, FoldSigmaEvent folds an
// event's values once (ASCII lower case), and the three-argument
// EvaluateSigma gives the two-argument one's answer faster.
void PrepareSigmaExpr(SigmaExpr* expr);
SigmaEvent FoldSigmaEvent(const SigmaEvent& event);
bool EvaluateSigma(const SigmaExpr& expr, const SigmaEvent& event, const SigmaEvent& folded);

}  // namespace sentinel::detection
