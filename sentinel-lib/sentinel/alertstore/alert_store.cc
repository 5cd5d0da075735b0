#include "sentinel/alertstore/alert_store.h"

#include "sentinel/base/time.h"
#include "sentinel/crypto/sha256.h"
#include "sentinel/models/severity.h"

namespace sentinel::alerting {
namespace {

using ordered_json = nlohmann::ordered_json;

// Dumps without throwing on invalid UTF-8 in process names or arguments.
template <typename J>
std::string SafeDump(const J& j) {
  return j.dump(-1, ' ', false, J::error_handler_t::replace);
}

ordered_json ProcessOf(const ordered_json& row) {
  ordered_json p = ordered_json::object();
  for (const char* key : {"pid", "name", "exe_path"}) {
    auto it = row.find(key);
    p[key] = it == row.end() ? ordered_json(nullptr) : *it;
  }
  return p;
}

// affected_processes of one finding.
ordered_json AffectedOf(const ordered_json& row) {
  ordered_json out = ordered_json::array();
  auto built = row.find("affected_processes");
  if (built != row.end() && built->is_string()) {
    ordered_json parsed = ordered_json::parse(built->get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_array()) {
      for (const auto& p : parsed) {
        if (p.is_object()) out.push_back(ProcessOf(p));
      }
      return out;
    }
  }
  if (row.contains("pid") && !row["pid"].is_null()) out.push_back(ProcessOf(row));
  return out;
}

}  // namespace

ordered_json Alert::ToJson() const {
  ordered_json j;
  j["id"] = id;
  j["alert_time"] = alert_time;
  j["alert_time_iso"] = FormatIso8601Ms(alert_time);
  j["rule_id"] = rule_id;
  j["title"] = title;
  j["description"] = description;
  j["severity"] = std::string(models::SeverityName(severity));
  j["status"] = status;
  j["scan_id"] = scan_id ? ordered_json(*scan_id) : ordered_json(nullptr);
  j["process_count"] = process_count;
  j["affected_processes"] = affected_processes;
  j["rule_version"] = rule_version;
  j["execution_time_ms"] = execution_time_ms;
  j["dedup_key"] = dedup_key;
  ordered_json raw = ordered_json::parse(raw_data, nullptr, /*allow_exceptions=*/false);
  j["raw_data"] = raw.is_discarded() ? ordered_json(raw_data) : raw;
  return j;
}

std::string DedupKey(const detection::Rule& rule, const ordered_json& row) {
  ordered_json material = ordered_json::array();
  material.push_back(rule.id);
  if (rule.dedup_keys.empty()) {
    material.push_back(row);
  } else {
    for (const auto& key : rule.dedup_keys) {
      auto it = row.find(key);
      material.push_back(it == row.end() ? ordered_json(nullptr) : *it);
    }
  }
  return crypto::Sha256Hex(SafeDump(material));
}

namespace {

Alert BuildAlert(const detection::Rule& rule, int64_t rule_version, const detection::RuleResult& result,
                 const nlohmann::ordered_json& row, std::optional<int64_t> scan_id, int64_t now_ms,
                 std::string dedup_key) {
  Alert a;
  a.dedup_key = std::move(dedup_key);
  a.alert_time = now_ms;
  a.rule_id = rule.id;
  a.title = rule.name;
  a.description = rule.description;
  a.severity = rule.severity;
  a.scan_id = scan_id;
  a.affected_processes = AffectedOf(row);
  a.process_count = static_cast<int64_t>(a.affected_processes.size());
  a.rule_version = rule_version;
  a.execution_time_ms = result.duration_ms;
  if (rule.sigma_id.empty()) {
    a.raw_data = SafeDump(row);
  } else {
    // A translated Sigma rule: its author and provenance travel with the
    // alert (the Detection Rule License asks that reports keep the author).
    nlohmann::ordered_json with = row;
    with["sigma"] = {{"id", rule.sigma_id},
                     {"title", rule.name},
                     {"author", rule.author},
                     {"status", rule.status},
                     {"references", rule.references}};
    a.raw_data = SafeDump(with);
  }
  return a;
}

}  // namespace

std::vector<Alert> CandidateAlerts(storage::Database& db, const detection::Rule& rule, int64_t rule_version,
                                   const detection::RuleResult& result, std::optional<int64_t> scan_id,
                                   int64_t now_ms, int64_t dedup_window_ms) {
  std::vector<Alert> out;
  auto seen = db.PrepareCached("SELECT 1 FROM alerts WHERE dedup_key = ?1 AND alert_time > ?2 LIMIT 1");
  for (const auto& row : result.rows) {
    std::string key = DedupKey(rule, row);
    if (dedup_window_ms > 0 && seen.ok() && seen->BindText(1, key).ok() &&
        seen->BindInt(2, now_ms - dedup_window_ms).ok()) {
      auto dup = seen->Step();
      seen->Reset();
      if (dup.ok() && *dup) continue;
    }
    out.push_back(BuildAlert(rule, rule_version, result, row, scan_id, now_ms, std::move(key)));
  }
  return out;
}

Result<RecordResult> RecordFindings(storage::Database& db, const detection::Rule& rule, int64_t rule_version,
                                    const detection::RuleResult& result, std::optional<int64_t> scan_id,
                                    int64_t now_ms, int64_t dedup_window_ms) {
  if (result.rows.empty()) return RecordResult{};
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(db));
  ASSIGN_OR_RETURN(RecordResult out, RecordFindingsInTransaction(db, rule, rule_version, result, scan_id,
                                                                 now_ms, dedup_window_ms));
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Result<RecordResult> RecordFindingsInTransaction(storage::Database& db, const detection::Rule& rule,
                                                 int64_t rule_version, const detection::RuleResult& result,
                                                 std::optional<int64_t> scan_id, int64_t now_ms,
                                                 int64_t dedup_window_ms) {
  RecordResult out;
  if (result.rows.empty()) return out;
  ASSIGN_OR_RETURN(auto seen,
                   db.PrepareCached("SELECT 1 FROM alerts WHERE dedup_key = ?1 AND alert_time > ?2 LIMIT 1"));
  ASSIGN_OR_RETURN(
      auto insert,
      db.PrepareCached(
          "INSERT INTO alerts(alert_time, rule_id, title, description, severity, scan_id, "
          "affected_processes, process_count, rule_version, execution_time_ms, raw_data, "
          "dedup_key, status) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'open')"));
  for (const auto& row : result.rows) {
    Alert a;
    a.dedup_key = DedupKey(rule, row);
    if (dedup_window_ms > 0) {
      RETURN_IF_ERROR(seen.BindText(1, a.dedup_key));
      RETURN_IF_ERROR(seen.BindInt(2, now_ms - dedup_window_ms));
      ASSIGN_OR_RETURN(bool dup, seen.Step());
      seen.Reset();
      if (dup) {
        ++out.suppressed;
        continue;
      }
    }
    a = BuildAlert(rule, rule_version, result, row, scan_id, now_ms, std::move(a.dedup_key));
    RETURN_IF_ERROR(insert.BindInt(1, a.alert_time));
    RETURN_IF_ERROR(insert.BindText(2, a.rule_id));
    RETURN_IF_ERROR(insert.BindText(3, a.title));
    RETURN_IF_ERROR(insert.BindText(4, a.description));
    RETURN_IF_ERROR(insert.BindText(5, models::SeverityName(a.severity)));
    RETURN_IF_ERROR(insert.BindOptionalInt(6, a.scan_id));
    RETURN_IF_ERROR(insert.BindText(7, SafeDump(a.affected_processes)));
    RETURN_IF_ERROR(insert.BindInt(8, a.process_count));
    RETURN_IF_ERROR(insert.BindInt(9, a.rule_version));
    RETURN_IF_ERROR(insert.BindInt(10, a.execution_time_ms));
    RETURN_IF_ERROR(insert.BindText(11, a.raw_data));
    RETURN_IF_ERROR(insert.BindText(12, a.dedup_key));
    RETURN_IF_ERROR(insert.Run());
    insert.Reset();
    a.id = db.LastInsertRowId();
    out.created.push_back(std::move(a));
  }
  return out;
}

Alert AlertFromRow(storage::Statement& st) {
  Alert a;
  a.id = st.ColumnInt(0);
  a.alert_time = st.ColumnInt(1);
  a.rule_id = st.ColumnText(2);
  a.title = st.ColumnText(3);
  a.description = st.ColumnOptionalText(4).value_or("");
  a.severity = models::ParseSeverity(st.ColumnText(5)).value_or(models::Severity::kMedium);
  a.scan_id = st.ColumnOptionalInt(6);
  a.affected_processes = ordered_json::parse(st.ColumnText(7), nullptr, /*allow_exceptions=*/false);
  if (a.affected_processes.is_discarded()) a.affected_processes = ordered_json::array();
  a.process_count = st.ColumnInt(8);
  a.rule_version = st.ColumnOptionalInt(9).value_or(0);
  a.execution_time_ms = st.ColumnOptionalInt(10).value_or(0);
  a.raw_data = st.ColumnOptionalText(11).value_or("");
  a.dedup_key = st.ColumnOptionalText(12).value_or("");
  a.status = st.ColumnText(13);
  return a;
}

Result<Alert> GetAlert(storage::Database& db, int64_t id) {
  ASSIGN_OR_RETURN(auto st,
                   db.PrepareCached("SELECT " + std::string(kAlertColumns) + " FROM alerts WHERE id = ?1"));
  RETURN_IF_ERROR(st.BindInt(1, id));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFoundError("no alert with id " + std::to_string(id));
  return AlertFromRow(st);
}

}  // namespace sentinel::alerting
