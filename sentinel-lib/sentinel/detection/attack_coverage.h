// ATT&CK coverage of a rule set: which techniques the rules detect, under
// which tactic (docs/rules.md's coverage matrix, `sentinelcli rules
// coverage`).
//
// A rule names its techniques in `mitre` (T1059.004) and its tactics in
// `tags` (execution, persistence, ...; Sigma's `attack.execution` reads the
// same). ATT&CK files many techniques under several tactics (scheduled tasks
// are execution, persistence and privilege escalation); a technique is listed
// under those of them the rule is tagged with (the author knows which the
// rule is about), else under all of them. A technique this build does not
// know (a newer ATT&CK release) is listed under the rule's tactics.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/detection/rule.h"

namespace sentinel::detection {

struct AttackTactic {
  std::string_view tag;   // as rules write it: "privilege-escalation"
  std::string_view name;  // "Privilege Escalation"
  std::string_view id;    // "TA0004"; "" for a tactic without one here
};

// The Enterprise tactics in the matrix's order (reconnaissance first).
std::span<const AttackTactic> AttackTactics();

// The tactic a tag names (case-insensitive; "attack." prefix and "_" read as
// in Sigma), or nullptr when the tag is not a tactic.
const AttackTactic* FindAttackTactic(std::string_view tag);

// The name of a technique or sub-technique ("Unix Shell" for T1059.004), ""
// when this build does not know it.
std::string_view AttackTechniqueName(std::string_view id);

// Whether `id` is written as a technique id: T + 4 digits, optionally
// "." + 3 digits.
bool IsAttackTechniqueId(std::string_view id);

struct CoverageEntry {
  std::string technique;           // "T1059.004"
  std::vector<std::string> rules;  // ids, sorted
};
struct CoverageRow {
  const AttackTactic* tactic = nullptr;
  std::vector<CoverageEntry> techniques;  // sorted by id
};
struct AttackCoverage {
  std::vector<CoverageRow> rows;  // tactics with at least one technique, in matrix order
  // Rules that name techniques but no tactic (listed so that they are not
  // silently missing from the matrix), and rules with neither.
  std::vector<std::string> without_tactic;
  std::vector<std::string> without_technique;
  size_t rules = 0;       // rules considered
  size_t techniques = 0;  // distinct technique ids
};

// The coverage of `rules` (disabled ones included: the matrix says what the
// set can detect).
AttackCoverage BuildAttackCoverage(const std::vector<Rule>& rules);

// As Markdown: a summary line, then one table row per tactic and technique.
std::string AttackCoverageMarkdown(const AttackCoverage& coverage);

}  // namespace sentinel::detection
