// OCSF (Open Cybersecurity Schema Framework) 1.1.0 output of alerts: each alert as a Detection
// Finding (class_uid 2004, category_uid 2 Findings, activity_id 1 Create), so SIEM pipelines that
// speak OCSF take SentinelD alerts as they are. Used by the file, webhook and nats sinks with
// `format: ocsf` (docs/alert-delivery.md lists the mapping). Pure functions, thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/models/severity.h"

namespace sentinel::alerting {

inline constexpr int kOcsfDetectionFindingClass = 2004;
inline constexpr const char* kOcsfSchemaVersion = "1.1.0";

// Where the alert was raised.
struct OcsfSource {
  std::string hostname;  // device.hostname
  std::string host_id;   // device.uid and the prefix of finding_info.uid; "" outside a fleet
};

// OCSF severity_id: low 2, medium 3, high 4, critical 5 (1 Informational is not used).
int OcsfSeverityId(models::Severity severity);

// The Detection Finding of `alert`: time and finding_info.created_time in ms, finding_info.uid
// "<host_id>:<alert id>" (or the alert id alone), one evidences[] entry per affected process
// (pid, name, cmd_line, file path and SHA-256, user uid, parent pid, from the finding's row when
// it describes that process), everything else of the alert under `unmapped`.
nlohmann::ordered_json ToOcsfDetectionFinding(const Alert& alert, const OcsfSource& source);

// The same as compact JSON text (invalid UTF-8 in process data replaced, never thrown).
std::string OcsfJsonText(const Alert& alert, const OcsfSource& source);

}  // namespace sentinel::alerting
