// Alerts: turning a rule run's findings into stored, deduplicated alerts
// (SPEC §6) and reading them back.
//
// One finding (result row) is one candidate alert. Its dedup key is the
// SHA-256 of the rule id and the values of the rule's dedup_keys (the whole
// row when the rule names none); a key that already produced an alert within
// the dedup window produces no new one. Candidates of one run are stored in
// one transaction, so a crash never leaves half of a run's alerts.
//
// affected_processes is a JSON array of {pid, name, exe_path} built from the
// row's columns of those names (or from an `affected_processes` JSON array
// column when the query builds one itself).
//
// Functions run on the caller's read-write connection and thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/detection/rule.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/models/severity.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::alerting {

struct Alert {
  int64_t id = 0;
  int64_t alert_time = 0;
  std::string rule_id;
  std::string title;
  std::string description;
  models::Severity severity = models::Severity::kMedium;
  std::optional<int64_t> scan_id;
  nlohmann::ordered_json affected_processes = nlohmann::ordered_json::array();
  int64_t process_count = 0;
  int64_t rule_version = 1;
  int64_t execution_time_ms = 0;
  std::string raw_data;  // the finding's row as a JSON object
  std::string dedup_key;
  std::string status = "open";

  // The alert as delivered and printed: every field, raw_data as an object.
  nlohmann::ordered_json ToJson() const;
};

struct RecordResult {
  std::vector<Alert> created;
  int64_t suppressed = 0;  // findings deduplicated away
};

// The dedup key of one finding of `rule`.
std::string DedupKey(const detection::Rule& rule, const nlohmann::ordered_json& row);

// Stores the findings of one run of `rule`.
Result<RecordResult> RecordFindings(storage::Database& db, const detection::Rule& rule, int64_t rule_version,
                                    const detection::RuleResult& result, std::optional<int64_t> scan_id,
                                    int64_t now_ms, int64_t dedup_window_ms);

// The same inside the caller's transaction (it must have begun one on `db`):
// the real-time detector commits a batch's alerts of every rule together with
// the rules' exec cursors, so a crash keeps both or neither.
Result<RecordResult> RecordFindingsInTransaction(storage::Database& db, const detection::Rule& rule,
                                                 int64_t rule_version, const detection::RuleResult& result,
                                                 std::optional<int64_t> scan_id, int64_t now_ms,
                                                 int64_t dedup_window_ms);

// The alerts RecordFindings would create, without writing: for delivery
// when the store cannot be written. Deduplicated against the stored alerts
// when they can be read (not otherwise); ids are 0.
std::vector<Alert> CandidateAlerts(storage::Database& db, const detection::Rule& rule, int64_t rule_version,
                                   const detection::RuleResult& result, std::optional<int64_t> scan_id,
                                   int64_t now_ms, int64_t dedup_window_ms);

// One alert by id (NotFound when absent).
Result<Alert> GetAlert(storage::Database& db, int64_t id);

// Reads the alert at the current row of a statement selecting kAlertColumns.
Alert AlertFromRow(storage::Statement& st);
inline constexpr std::string_view kAlertColumns =
    "id, alert_time, rule_id, title, description, severity, scan_id, affected_processes, process_count, "
    "rule_version, execution_time_ms, raw_data, dedup_key, status";

}  // namespace sentinel::alerting
