#include "sentinel/detection/rule_store.h"

#include <set>

#include <nlohmann/json.hpp>

namespace sentinel::detection {
namespace {

std::string JsonList(const std::vector<std::string>& v) {
  return nlohmann::json(v).dump();
}

Status BindRule(storage::Statement& st, const Rule& r) {
  RETURN_IF_ERROR(st.BindText(1, r.id));
  RETURN_IF_ERROR(st.BindText(2, r.name));
  RETURN_IF_ERROR(st.BindText(3, r.description));
  RETURN_IF_ERROR(st.BindText(4, models::SeverityName(r.severity)));
  RETURN_IF_ERROR(st.BindText(5, r.category));
  RETURN_IF_ERROR(st.BindText(6, JsonList(r.tags)));
  RETURN_IF_ERROR(st.BindText(7, JsonList(r.mitre)));
  RETURN_IF_ERROR(st.BindText(8, JsonList(r.dedup_keys)));
  RETURN_IF_ERROR(st.BindText(9, r.query));
  RETURN_IF_ERROR(st.BindText(10, r.Checksum()));
  RETURN_IF_ERROR(st.BindText(11, RuleSourceName(r.source)));
  RETURN_IF_ERROR(st.BindText(12, r.source_path));
  return st.BindText(15, RuleTriggerName(r.on));
}

// Upsert of a rule's definition. ?13 = now, ?14 = the file's enabled flag.
// The version is bumped only when the checksum changes.
constexpr std::string_view kUpsert = R"sql(
INSERT INTO detection_rules(id, name, description, severity, category, tags, mitre, dedup_keys, query, checksum,
                            source, source_path, created_at_ms, updated_at_ms, enabled, version, last_error,
                            evaluated_on)
VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, 1, NULL, ?15)
ON CONFLICT(id) DO UPDATE SET
  name = excluded.name, description = excluded.description, severity = excluded.severity,
  category = excluded.category, tags = excluded.tags, mitre = excluded.mitre, dedup_keys = excluded.dedup_keys,
  query = excluded.query, source = excluded.source, source_path = excluded.source_path,
  evaluated_on = excluded.evaluated_on,
  version = CASE WHEN detection_rules.checksum = excluded.checksum THEN detection_rules.version
                 ELSE detection_rules.version + 1 END,
  checksum = excluded.checksum,
  enabled = COALESCE(detection_rules.enabled_override, excluded.enabled),
  last_error = CASE WHEN detection_rules.last_error = 'rule file removed' THEN NULL ELSE detection_rules.last_error END,
  updated_at_ms = excluded.updated_at_ms
)sql";

// Writes the rule's definition (kUpsert) and leaves the statement reusable.
Status Upsert(storage::Statement& upsert, const Rule& r, int64_t now_ms) {
  RETURN_IF_ERROR(BindRule(upsert, r));
  RETURN_IF_ERROR(upsert.BindInt(13, now_ms));
  RETURN_IF_ERROR(upsert.BindInt(14, r.enabled ? 1 : 0));
  RETURN_IF_ERROR(upsert.Run());
  upsert.Reset();
  return Status::Ok();
}

// `def` is on the stored row of r (name, description, severity, category,
// tags, mitre, source, source_path, enabled): whether a field the checksum
// does not cover differs, the effective enabled flag changed, or the rule
// comes back after its file was removed.
bool DefinitionDiffers(storage::Statement& def, const Rule& r, const RuleState& stored) {
  const bool want_enabled = stored.enabled_override.value_or(r.enabled);
  return def.ColumnText(0) != r.name || def.ColumnText(1) != r.description ||
         def.ColumnText(2) != models::SeverityName(r.severity) || def.ColumnText(3) != r.category ||
         def.ColumnText(4) != JsonList(r.tags) || def.ColumnText(5) != JsonList(r.mitre) ||
         def.ColumnText(6) != RuleSourceName(r.source) || def.ColumnText(7) != r.source_path ||
         (def.ColumnInt(8) != 0) != want_enabled || stored.last_error.value_or("") == "rule file removed";
}

// How rule r (of checksum `checksum`) compares with its stored state
// (nullptr: none). `def` is the definition query, bound to an id.
Result<SyncChange> Classify(storage::Statement& def, const Rule& r, const RuleState* stored,
                            const std::string& checksum) {
  if (stored == nullptr) return SyncChange::kAdded;
  if (stored->checksum != checksum) return SyncChange::kVersionBumped;
  RETURN_IF_ERROR(def.BindText(1, r.id));
  ASSIGN_OR_RETURN(bool row, def.Step());
  const bool updated = row && DefinitionDiffers(def, r, *stored);
  def.Reset();
  return updated ? SyncChange::kUpdated : SyncChange::kUnchanged;
}

// Disables the stored rules whose file is gone (not in `seen`) and records
// a kRemoved outcome for each one that was not already marked so.
Status MarkRemoved(storage::Database& db, const std::map<std::string, RuleState>& before,
                   const std::set<std::string>& seen, int64_t now_ms, std::vector<SyncOutcome>* out) {
  ASSIGN_OR_RETURN(auto remove,
                   db.Prepare("UPDATE detection_rules SET enabled = 0, last_error = 'rule file removed', "
                              "updated_at_ms = ?2 WHERE id = ?1 AND (enabled != 0 OR last_error IS NULL "
                              "OR last_error != 'rule file removed')"));
  for (const auto& [id, state] : before) {
    if (seen.count(id)) continue;
    RETURN_IF_ERROR(remove.BindText(1, id));
    RETURN_IF_ERROR(remove.BindInt(2, now_ms));
    RETURN_IF_ERROR(remove.Run());
    const bool changed = db.Changes() > 0;
    remove.Reset();
    if (changed) out->push_back({id, SyncChange::kRemoved, state.version, state.checksum});
  }
  return Status::Ok();
}

}  // namespace

std::string_view SyncChangeName(SyncChange c) {
  switch (c) {
    case SyncChange::kAdded: return "added";
    case SyncChange::kVersionBumped: return "changed";
    case SyncChange::kUpdated: return "updated";
    case SyncChange::kUnchanged: return "unchanged";
    case SyncChange::kRemoved: return "removed";
  }
  return "unchanged";
}

Result<std::map<std::string, RuleState>> ReadRuleStates(storage::Database& db) {
  std::map<std::string, RuleState> out;
  // Cached, and only the state's columns: the real-time detector reads it
  // for every batch, and a query text can fill overflow pages.
  ASSIGN_OR_RETURN(
      auto st,
      db.PrepareCached("SELECT id, version, checksum, enabled, enabled_override, source, source_path, "
                       "created_at_ms, updated_at_ms, last_run_ms, last_duration_ms, last_error "
                       "FROM detection_rules ORDER BY id"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    RuleState s;
    s.id = st.ColumnText(0);
    s.version = st.ColumnInt(1);
    s.checksum = st.ColumnText(2);
    s.enabled = st.ColumnInt(3) != 0;
    if (!st.IsNull(4)) s.enabled_override = st.ColumnInt(4) != 0;
    s.source = st.ColumnText(5);
    s.source_path = st.ColumnText(6);
    s.created_at_ms = st.ColumnInt(7);
    s.updated_at_ms = st.ColumnInt(8);
    s.last_run_ms = st.ColumnOptionalInt(9);
    s.last_duration_ms = st.ColumnOptionalInt(10);
    s.last_error = st.ColumnOptionalText(11);
    out.emplace(s.id, std::move(s));
  }
  return out;
}

Result<std::map<std::string, RuleState>> ReadRuleEnablement(storage::Database& db) {
  std::map<std::string, RuleState> out;
  ASSIGN_OR_RETURN(
      auto st,
      db.PrepareCached("SELECT id, version, enabled, enabled_override FROM detection_rules ORDER BY id"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    RuleState s;
    s.id = st.ColumnText(0);
    s.version = st.ColumnInt(1);
    s.enabled = st.ColumnInt(2) != 0;
    if (!st.IsNull(3)) s.enabled_override = st.ColumnInt(3) != 0;
    out.emplace_hint(out.end(), s.id, std::move(s));
  }
  return out;
}

Result<std::vector<SyncOutcome>> SyncRules(storage::Database& db, const std::vector<Rule>& rules,
                                           int64_t now_ms) {
  ASSIGN_OR_RETURN(auto before, ReadRuleStates(db));
  // What decides "updated": the stored definition besides the checksum.
  ASSIGN_OR_RETURN(auto def, db.Prepare("SELECT name, description, severity, category, tags, mitre, source, "
                                        "source_path, enabled FROM detection_rules WHERE id = ?1"));
  ASSIGN_OR_RETURN(auto upsert, db.Prepare(kUpsert));
  std::vector<SyncOutcome> out;
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(db));
  std::set<std::string> seen;
  for (const Rule& r : rules) {
    seen.insert(r.id);
    const std::string checksum = r.Checksum();
    auto it = before.find(r.id);
    const RuleState* stored = it == before.end() ? nullptr : &it->second;
    ASSIGN_OR_RETURN(SyncChange change, Classify(def, r, stored, checksum));
    if (change == SyncChange::kUnchanged) continue;
    RETURN_IF_ERROR(Upsert(upsert, r, now_ms));
    const int64_t version = stored == nullptr                      ? 1
                            : change == SyncChange::kVersionBumped ? stored->version + 1
                                                                   : stored->version;
    out.push_back({r.id, change, version, checksum});
  }
  RETURN_IF_ERROR(MarkRemoved(db, before, seen, now_ms, &out));
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Status SetRuleEnabled(storage::Database& db, const Rule& rule, bool enabled, int64_t now_ms) {
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(db));
  ASSIGN_OR_RETURN(auto exists, db.Prepare("SELECT 1 FROM detection_rules WHERE id = ?1"));
  RETURN_IF_ERROR(exists.BindText(1, rule.id));
  ASSIGN_OR_RETURN(bool row, exists.Step());
  exists.Reset();
  if (!row) {
    ASSIGN_OR_RETURN(auto upsert, db.Prepare(kUpsert));
    RETURN_IF_ERROR(Upsert(upsert, rule, now_ms));
  }
  ASSIGN_OR_RETURN(auto set, db.Prepare("UPDATE detection_rules SET enabled_override = ?2, enabled = ?2, "
                                        "updated_at_ms = ?3 WHERE id = ?1"));
  RETURN_IF_ERROR(set.BindText(1, rule.id));
  RETURN_IF_ERROR(set.BindInt(2, enabled ? 1 : 0));
  RETURN_IF_ERROR(set.BindInt(3, now_ms));
  RETURN_IF_ERROR(set.Run());
  return tx.Commit();
}

Status RecordRuleRun(storage::Database& db, const std::string& id, int64_t run_ms, int64_t duration_ms,
                     const std::string& error) {
  ASSIGN_OR_RETURN(auto st,
                   db.PrepareCached("UPDATE detection_rules SET last_run_ms = ?2, last_duration_ms = ?3, "
                                    "last_error = ?4 WHERE id = ?1"));
  RETURN_IF_ERROR(st.BindText(1, id));
  RETURN_IF_ERROR(st.BindInt(2, run_ms));
  RETURN_IF_ERROR(st.BindInt(3, duration_ms));
  RETURN_IF_ERROR(error.empty() ? st.BindNull(4) : st.BindText(4, error));
  return st.Run();
}

Result<std::map<std::string, int64_t>> ReadExecCursors(storage::Database& db) {
  std::map<std::string, int64_t> out;
  ASSIGN_OR_RETURN(auto st, db.PrepareCached("SELECT rule_id, last_event_id FROM detection_cursors"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out[st.ColumnText(0)] = st.ColumnInt(1);
  }
  return out;
}

Status SetExecCursor(storage::Database& db, const std::string& rule_id, int64_t last_event_id,
                     int64_t now_ms) {
  ASSIGN_OR_RETURN(auto st,
                   db.PrepareCached("INSERT INTO detection_cursors(rule_id, last_event_id, updated_at_ms) "
                                    "VALUES(?1, ?2, ?3) ON CONFLICT(rule_id) DO UPDATE SET "
                                    "last_event_id = excluded.last_event_id, "
                                    "updated_at_ms = excluded.updated_at_ms"));
  RETURN_IF_ERROR(st.BindText(1, rule_id));
  RETURN_IF_ERROR(st.BindInt(2, last_event_id));
  RETURN_IF_ERROR(st.BindInt(3, now_ms));
  return st.Run();
}

Status SetExecCursors(storage::Database& db, const std::vector<std::string>& rule_ids, int64_t last_event_id,
                      int64_t now_ms) {
  if (rule_ids.empty()) return Status::Ok();
  if (rule_ids.size() == 1) return SetExecCursor(db, rule_ids.front(), last_event_id, now_ms);
  // "WHERE true": an upsert's SELECT must not end where ON CONFLICT could be
  // read as a join constraint (SQLite's documented parsing ambiguity).
  ASSIGN_OR_RETURN(auto st,
                   db.PrepareCached("INSERT INTO detection_cursors(rule_id, last_event_id, updated_at_ms) "
                                    "SELECT value, ?2, ?3 FROM json_each(?1) WHERE true ON CONFLICT(rule_id) "
                                    "DO UPDATE SET last_event_id = excluded.last_event_id, "
                                    "updated_at_ms = excluded.updated_at_ms"));
  RETURN_IF_ERROR(st.BindText(1, JsonList(rule_ids)));
  RETURN_IF_ERROR(st.BindInt(2, last_event_id));
  RETURN_IF_ERROR(st.BindInt(3, now_ms));
  return st.Run();
}

bool EffectiveEnabled(const Rule& rule, const std::map<std::string, RuleState>& states) {
  auto it = states.find(rule.id);
  if (it == states.end() || !it->second.enabled_override) return rule.enabled;
  return *it->second.enabled_override;
}

}  // namespace sentinel::detection
