// The `detection_rules` table: what rules exist, their versions, whether
// they run, and how their last run went.
//
// Rule files are the source of truth for a rule's definition; the table
// records each definition once per change: a changed query or dedup_keys
// (Rule::Checksum) bumps `version`, other edits update the row in place.
// An operator's `rules enable|disable` is kept in `enabled_override` and wins
// over the file's `enabled` until cleared. Rows of rules whose files are gone
// stay (alerts refer to them) but are marked disabled with a last_error.
//
// Every function runs on the caller's read-write connection; SyncRules and
// SetEnabled use one transaction each.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/detection/rule.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::detection {

struct RuleState {
  std::string id;
  int64_t version = 1;
  std::string checksum;
  bool enabled = true;  // effective: override, else the file's value
  std::optional<bool> enabled_override;
  std::string source;  // builtin | user
  std::string source_path;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<int64_t> last_run_ms;
  std::optional<int64_t> last_duration_ms;
  std::optional<std::string> last_error;
};

enum class SyncChange { kAdded, kVersionBumped, kUpdated, kUnchanged, kRemoved };
std::string_view SyncChangeName(SyncChange c);

struct SyncOutcome {
  std::string id;
  SyncChange change = SyncChange::kUnchanged;
  int64_t version = 1;
  std::string checksum;
};

// Brings the table in line with `rules` (the loaded rule set). Returns one
// outcome per rule that was added, changed or removed.
Result<std::vector<SyncOutcome>> SyncRules(storage::Database& db, const std::vector<Rule>& rules,
                                           int64_t now_ms);

// Every row, by id.
Result<std::map<std::string, RuleState>> ReadRuleStates(storage::Database& db);
// The same with only id, version, enabled and enabled_override filled: what
// deciding which rules run needs (the real-time detector reads it for every
// batch).
Result<std::map<std::string, RuleState>> ReadRuleEnablement(storage::Database& db);

// Sets the operator override for `rule` (inserting its row if missing).
Status SetRuleEnabled(storage::Database& db, const Rule& rule, bool enabled, int64_t now_ms);

// Records a run: when, how long, and the error ("" clears it).
Status RecordRuleRun(storage::Database& db, const std::string& id, int64_t run_ms, int64_t duration_ms,
                     const std::string& error);

// detection_cursors: the highest process_events.id each `on: exec` rule has
// evaluated (SPEC §12). Read them all, by rule id.
Result<std::map<std::string, int64_t>> ReadExecCursors(storage::Database& db);
// Sets a rule's cursor (inside the caller's transaction when it has one).
Status SetExecCursor(storage::Database& db, const std::string& rule_id, int64_t last_event_id,
                     int64_t now_ms);
// Sets the cursors of `rule_ids` to the same event id in one statement (the
// real-time detector moves every rule of a batch at once).
Status SetExecCursors(storage::Database& db, const std::vector<std::string>& rule_ids, int64_t last_event_id,
                      int64_t now_ms);

// The effective enabled flag of a loaded rule given the table's state.
bool EffectiveEnabled(const Rule& rule, const std::map<std::string, RuleState>& states);

}  // namespace sentinel::detection
