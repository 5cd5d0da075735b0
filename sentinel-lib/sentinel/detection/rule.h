// Detection rules: the YAML rule file of SPEC §6, parsed and validated.
//
// A Rule is plain data. ParseRule() checks every field and names the file and
// field of the first problem ("rules/x.yaml: severity: expected one of low,
// medium, high, critical, got \"urgent\""). It does not look at the query's
// SQL: that is the sandbox's job (ValidateRuleQuery in rule_runner.h), done
// by SQLite's own compiler against the real schema.
//
// Rule sets: built-in rules are compiled into the binary (generated from the
// rules/ directory at build time, so an installed agent can never lose them);
// user rules come from detection.rules_dirs. Ids are unique across both.
// Everything here is pure and thread-compatible.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/models/severity.h"

namespace sentinel::detection {

struct SigmaExpr;  // sigma.h

enum class RuleSource { kBuiltin, kUser };
std::string_view RuleSourceName(RuleSource s);

// What a rule is evaluated over (SPEC §12, the rule's `on:` field).
// kScan (default): every detection.interval_secs over the latest scan.
// kExec: over each new batch of exec events as they arrive, reading the
// connection-private table `exec_events`; on each scan cycle too, over the
// scan's processes presented as exec_events rows (docs/rules.md).
enum class RuleTrigger { kScan, kExec };
std::string_view RuleTriggerName(RuleTrigger t);  // "scan" | "exec"

struct Rule {
  std::string id;
  std::string name;
  std::string description;
  models::Severity severity = models::Severity::kMedium;
  std::string category;
  std::vector<std::string> tags;
  std::vector<std::string> mitre;
  bool enabled = true;
  std::vector<std::string> dedup_keys;
  std::string query;
  RuleTrigger on = RuleTrigger::kScan;

  // Optional provenance, set for rules translated from Sigma (SPEC §13) and
  // shown by `rules show`; not part of Checksum(). A rule with a sigma_id
  // carries these into its alerts' raw_data (the DRL asks that the author
  // reaches whoever sees the match).
  std::string sigma_id;
  std::string author;
  std::string status;
  std::vector<std::string> references;
  std::vector<std::string> falsepositives;

  // The parsed detection of a rule loaded from a Sigma file. The query
  // worker evaluates it in C++ first and runs the SQL only over a batch in
  // which some row matches (sigma_prefilter.h, decision 70). Derived from
  // the same document as `query`, so not part of Checksum().
  std::shared_ptr<const SigmaExpr> sigma_detection;

  RuleSource source = RuleSource::kUser;
  std::string source_path;  // file it came from ("builtin:rules/x.yaml" for built-ins)

  // Lowercase hex SHA-256 of what decides a rule's findings (query, dedup
  // keys and, for an exec rule, `on`): a change bumps the stored version.
  // A scan rule's checksum is what it was before `on` existed.
  std::string Checksum() const;
};

// Largest rule file accepted.
inline constexpr std::size_t kMaxRuleFileBytes = 1 << 20;

// Parses one rule document. `origin` names the file in error messages.
Result<Rule> ParseRule(std::string_view yaml_text, std::string_view origin);

// Reads and parses one rule file (a regular file of at most kMaxRuleFileBytes).
// A Sigma rule (a mapping with `logsource` and `detection`, sigma.h) is
// translated on load.
Result<Rule> LoadRuleFile(const std::filesystem::path& path, RuleSource source);

// The *.yaml / *.yml files of a directory, sorted by name. A missing
// directory yields no rules (a warning is the caller's business, via
// `missing`); an unreadable one is an error.
Result<std::vector<std::filesystem::path>> ListRuleFiles(const std::filesystem::path& dir,
                                                         bool* missing = nullptr);

// The rules compiled into this binary (SPEC: "built-in rules ship with the product").
struct EmbeddedRuleFile {
  std::string_view path;  // relative to the source tree, e.g. "rules/proc-deleted-executable.yaml"
  std::string_view text;
};
const std::vector<EmbeddedRuleFile>& EmbeddedRuleFiles();

// All built-in rules, parsed. An error here is a build defect, reported as Internal.
Result<std::vector<Rule>> BuiltinRules();

struct RuleSetProblem {
  std::string path;
  Status status;
};

struct RuleSet {
  std::vector<Rule> rules;               // built-ins first, then user rules by directory and name
  std::vector<RuleSetProblem> problems;  // files that could not be loaded (skipped)
  std::vector<std::string> missing_dirs;
};

// Loads built-ins (when `builtin`) and every rule file of `user_dirs`. A bad
// user file is recorded in `problems` and skipped, so one typo does not
// disable detection; a duplicate id is a problem of the later file.
RuleSet LoadRuleSet(bool builtin, const std::vector<std::string>& user_dirs);

// The rule as a YAML document (for `rules export` / `rules show`).
std::string RuleToYaml(const Rule& rule);

}  // namespace sentinel::detection
