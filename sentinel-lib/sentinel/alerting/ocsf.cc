#include "sentinel/alerting/ocsf.h"

#include <string_view>

#include "sentinel/base/version.h"

namespace sentinel::alerting {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr int kOcsfFindingsCategory = 2;
constexpr int kOcsfActivityCreate = 1;
constexpr int kOcsfHashSha256 = 3;
constexpr int kOcsfFileTypeRegular = 1;
constexpr int kOcsfStatusNew = 1;
constexpr int kOcsfAnalyticTypeRule = 1;

const char* SeverityCaption(models::Severity s) {
  switch (s) {
    case models::Severity::kLow: return "Low";
    case models::Severity::kMedium: return "Medium";
    case models::Severity::kHigh: return "High";
    case models::Severity::kCritical: return "Critical";
  }
  return "Unknown";
}

// The value of `key` in `row` when it is of the wanted JSON kind, else null.
ordered_json Field(const ordered_json& row, const char* key) {
  auto it = row.find(key);
  return it == row.end() ? ordered_json(nullptr) : *it;
}

// The command line as one string: command_text, else the command_line JSON array joined.
std::string CommandLine(const ordered_json& row) {
  const ordered_json text = Field(row, "command_text");
  if (text.is_string()) return text.get<std::string>();
  const ordered_json argv_text = Field(row, "command_line");
  const ordered_json argv =
      argv_text.is_string() ? ordered_json::parse(argv_text.get<std::string>(), nullptr, false) : argv_text;
  std::string out;
  if (!argv.is_array()) return out;
  for (const ordered_json& arg : argv) {
    if (!arg.is_string()) continue;
    if (!out.empty()) out += ' ';
    out += arg.get<std::string>();
  }
  return out;
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

ordered_json FileOf(const ordered_json& exe_path, const ordered_json& row) {
  if (!exe_path.is_string()) return nullptr;
  const std::string path = exe_path.get<std::string>();
  ordered_json file = {{"name", BaseName(path)}, {"path", path}, {"type_id", kOcsfFileTypeRegular}};
  const ordered_json hash = Field(row, "exe_hash");
  if (hash.is_string() && !hash.get<std::string>().empty()) {
    file["hashes"] =
        ordered_json::array({{{"algorithm_id", kOcsfHashSha256}, {"algorithm", "SHA-256"}, {"value", hash}}});
  }
  return file;
}

// One affected process as an OCSF process object; `row` (the finding's row) adds what it knows
// when it is about the same pid.
ordered_json ProcessOf(const ordered_json& affected, const ordered_json& raw_row) {
  const ordered_json pid = Field(affected, "pid");
  const bool same = raw_row.is_object() && Field(raw_row, "pid") == pid;
  const ordered_json row = same ? raw_row : ordered_json::object();
  ordered_json p = ordered_json::object();
  if (pid.is_number_integer()) p["pid"] = pid;
  if (const ordered_json name = Field(affected, "name"); name.is_string()) p["name"] = name;
  if (const std::string cmd = CommandLine(row); !cmd.empty()) p["cmd_line"] = cmd;
  if (ordered_json file = FileOf(Field(affected, "exe_path"), row); !file.is_null())
    p["file"] = std::move(file);
  ordered_json user = ordered_json::object();
  if (const ordered_json uid = Field(row, "user_id"); uid.is_number_integer())
    user["uid"] = std::to_string(uid.get<int64_t>());
  if (const ordered_json name = Field(row, "user_name"); name.is_string()) user["name"] = name;
  if (!user.empty()) p["user"] = std::move(user);
  if (const ordered_json ppid = Field(row, "ppid"); ppid.is_number_integer())
    p["parent_process"] = {{"pid", ppid}};
  return p;
}

ordered_json Evidences(const Alert& a, const ordered_json& raw) {
  ordered_json out = ordered_json::array();
  if (!a.affected_processes.is_array()) return out;
  for (const ordered_json& affected : a.affected_processes) {
    if (affected.is_object()) out.push_back({{"process", ProcessOf(affected, raw)}});
  }
  return out;
}

ordered_json FindingInfo(const Alert& a, const OcsfSource& src) {
  const std::string uid =
      src.host_id.empty() ? std::to_string(a.id) : src.host_id + ":" + std::to_string(a.id);
  return {{"uid", uid},
          {"title", a.title},
          {"desc", a.description},
          {"types", ordered_json::array({a.rule_id})},
          {"created_time", a.alert_time},
          {"analytic",
           {{"uid", a.rule_id},
            {"name", a.title},
            {"type_id", kOcsfAnalyticTypeRule},
            {"type", "Rule"},
            {"version", std::to_string(a.rule_version)}}}};
}

ordered_json Unmapped(const Alert& a, ordered_json raw) {
  return {{"alert_id", a.id},
          {"rule_id", a.rule_id},
          {"rule_version", a.rule_version},
          {"status", a.status},
          {"scan_id", a.scan_id ? ordered_json(*a.scan_id) : ordered_json(nullptr)},
          {"process_count", a.process_count},
          {"execution_time_ms", a.execution_time_ms},
          {"dedup_key", a.dedup_key},
          {"raw_data", std::move(raw)}};
}

}  // namespace

int OcsfSeverityId(models::Severity severity) {
  switch (severity) {
    case models::Severity::kLow: return 2;
    case models::Severity::kMedium: return 3;
    case models::Severity::kHigh: return 4;
    case models::Severity::kCritical: return 5;
  }
  return 0;  // Unknown
}

ordered_json ToOcsfDetectionFinding(const Alert& a, const OcsfSource& src) {
  ordered_json raw = ordered_json::parse(a.raw_data, nullptr, /*allow_exceptions=*/false);
  if (raw.is_discarded()) raw = a.raw_data;
  ordered_json f;
  f["class_uid"] = kOcsfDetectionFindingClass;
  f["class_name"] = "Detection Finding";
  f["category_uid"] = kOcsfFindingsCategory;
  f["category_name"] = "Findings";
  f["activity_id"] = kOcsfActivityCreate;
  f["activity_name"] = "Create";
  f["type_uid"] = kOcsfDetectionFindingClass * 100 + kOcsfActivityCreate;
  f["severity_id"] = OcsfSeverityId(a.severity);
  f["severity"] = SeverityCaption(a.severity);
  f["status_id"] = kOcsfStatusNew;
  f["status"] = "New";
  f["time"] = a.alert_time;
  f["message"] = a.title;
  f["finding_info"] = FindingInfo(a, src);
  f["metadata"] = {{"version", kOcsfSchemaVersion},
                   {"product", {{"name", "SentinelD"}, {"vendor_name", "SentinelD"}, {"version", kVersion}}}};
  f["device"] = {{"hostname", src.hostname}, {"type_id", 0}};
  if (!src.host_id.empty()) f["device"]["uid"] = src.host_id;
  f["evidences"] = Evidences(a, raw);
  f["unmapped"] = Unmapped(a, std::move(raw));
  return f;
}

std::string OcsfJsonText(const Alert& alert, const OcsfSource& source) {
  return ToOcsfDetectionFinding(alert, source).dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace sentinel::alerting
