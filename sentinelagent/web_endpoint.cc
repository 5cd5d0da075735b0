#include "sentinelagent/web_endpoint.h"

#include <unistd.h>

#include <array>
#include <climits>
#include <utility>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/history/process_tree.h"
#include "sentinel/storage/store.h"
#include "sentinel/webui/alert_page.h"
#include "sentinel/webui/alert_query.h"
#include "sentinel/webui/assets.h"
#include "sentinel/webui/read_deadline.h"

namespace sentinel::agent {
namespace {

using nlohmann::ordered_json;
using webui::HttpRequest;
using webui::HttpResponse;
using webui::JsonError;
using webui::JsonResponse;

// Affected processes listed per alert in /api/alerts (all of them in /api/alerts/ID).
constexpr size_t kListedProcesses = 10;

std::string Hostname() {
  std::array<char, HOST_NAME_MAX + 1> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "";
  return std::string(name.data());
}

// The WHERE clause of a filtered list (values bound by name in BindFilter).
std::string FilterSql(const webui::AlertQuery& q) {
  std::string where = "1";
  if (q.min_severity) {
    where += " AND severity IN ('" + Join(webui::SeveritiesFrom(*q.min_severity), "','") + "')";
  }
  if (q.rule) where += " AND rule_id = :rule";
  if (q.status) where += " AND status = :status";
  if (q.since_ms) where += " AND alert_time >= :since";
  if (q.until_ms) where += " AND alert_time <= :until";
  if (q.text) {
    where +=
        " AND (title LIKE :q ESCAPE '\\' OR rule_id LIKE :q ESCAPE '\\' OR description LIKE :q ESCAPE '\\'"
        " OR affected_processes LIKE :q ESCAPE '\\')";
  }
  return where;
}

// One alert of the list: what the table shows, without the raw finding.
ordered_json ListEntry(const alerting::Alert& a) {
  ordered_json j;
  j["id"] = a.id;
  j["alert_time"] = a.alert_time;
  j["severity"] = std::string(models::SeverityName(a.severity));
  j["rule_id"] = a.rule_id;
  j["status"] = a.status;
  j["title"] = a.title;
  j["process_count"] = a.process_count;
  ordered_json procs = ordered_json::array();
  for (const auto& p : a.affected_processes) {
    if (procs.size() == kListedProcesses) break;
    procs.push_back(p);
  }
  j["affected_processes"] = std::move(procs);
  return j;
}

Result<ordered_json> ReadAlertList(storage::Database& db, const webui::AlertQuery& q) {
  ASSIGN_OR_RETURN(
      auto st, db.Prepare("SELECT " + std::string(alerting::kAlertColumns) + " FROM alerts WHERE " +
                          FilterSql(q) + " ORDER BY alert_time DESC, id DESC LIMIT :limit OFFSET :offset"));
  RETURN_IF_ERROR(webui::BindAlertQuery(st, q));
  return webui::ReadAlertPage(st, q,
                              [](storage::Statement& row) { return ListEntry(alerting::AlertFromRow(row)); });
}

HttpResponse HealthAnswer(const health::HealthReport& r, bool always_ok) {
  const int code = always_ok || r.healthy() ? 200 : 503;
  return JsonResponse(code, health::HealthToJson(r));
}

}  // namespace

AgentWeb::AgentWeb(AgentOps& ops, config::DatabaseConfig db, const config::TelemetryConfig& telemetry,
                   std::string version)
    : ops_(ops),
      db_config_(std::move(db)),
      listen_host_(webui::ListenHost(telemetry.http_listen)),
      ui_enabled_(telemetry.web_ui),
      version_(std::move(version)) {}

HttpResponse AgentWeb::Answer(const HttpRequest& req) {
  if (req.path == "/metrics") {
    HttpResponse r = webui::TextResponse(200, ops_.Metrics());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  if (req.path == "/health") return HealthAnswer(ops_.Health(), /*always_ok=*/false);
  if (!ui_enabled_) return webui::TextResponse(404, "not found (telemetry.web_ui is false)\n");
  if (!webui::IsAllowedHost(req.host, {listen_host_})) return webui::HostRefused(req);
  if (StartsWith(req.path, "/api/")) return Api(req);
  if (const webui::Asset* asset = webui::FindAsset(req.path)) return webui::AssetResponse(*asset);
  return webui::TextResponse(404, "not found\n");
}

HttpResponse AgentWeb::Api(const HttpRequest& req) {
  if (req.path != "/api/alerts") {
    // Only the list takes parameters: any other is named, not ignored.
    if (webui::QueryParams params(req.query, {}); !params.ok()) return params.ErrorResponse();
  }
  if (req.path == "/api/info") {
    ordered_json j;
    j["mode"] = "agent";
    j["version"] = version_;
    j["hostname"] = Hostname();
    return JsonResponse(200, j);
  }
  if (req.path == "/api/health") return HealthAnswer(ops_.Health(), /*always_ok=*/true);
  if (req.path == "/api/alerts") return ListAlerts(req);
  if (auto m = webui::MatchAlertPath(req.path)) return AlertOrTree(m->id_text, m->rest);
  return JsonError(404, "no such API path");
}

HttpResponse AgentWeb::ListAlerts(const HttpRequest& req) {
  webui::ParsedAlertQuery parsed = webui::ParseAlertQuery(req.query, /*with_host=*/false, NowMs());
  if (parsed.error) return JsonError(400, parsed.error->message, parsed.error->parameter);
  auto db = Store();
  if (!db.ok()) return StoreFailure(db.status());
  webui::ReadDeadline deadline(**db);
  auto list = ReadAlertList(**db, parsed.query);
  if (!list.ok()) return StoreFailure(list.status());
  return JsonResponse(200, *list);
}

HttpResponse AgentWeb::AlertOrTree(const std::string& id_text, const std::string& rest) {
  auto id = ParseInt64(id_text);
  if (!id || *id <= 0) {
    return JsonError(400, "id: expected a positive integer, got " + QuoteForMessage(id_text), "id");
  }
  if (!rest.empty() && rest != "/tree") return JsonError(404, "no such API path");
  auto db = Store();
  if (!db.ok()) return StoreFailure(db.status());
  webui::ReadDeadline deadline(**db);
  if (rest == "/tree") {
    // The tree of the alert's first affected process at the alert's time (history/process_tree.h):
    // ancestry, descendants, what each ran and the alerts attached, bounded by TreeLimits.
    auto tree = history::ProcessTreeForAlert(**db, *id);
    if (!tree.ok()) {
      if (tree.status().code() == StatusCode::kNotFound) return JsonError(404, tree.status().message());
      return StoreFailure(tree.status());
    }
    return JsonResponse(200, history::ProcessTreeToJson(*tree));
  }
  auto alert = alerting::GetAlert(**db, *id);
  if (!alert.ok()) {
    if (alert.status().code() == StatusCode::kNotFound) return JsonError(404, alert.status().message());
    return StoreFailure(alert.status());
  }
  return JsonResponse(200, alert->ToJson());
}

Result<storage::Database*> AgentWeb::Store() {
  if (!db_) {
    ASSIGN_OR_RETURN(
        db_, storage::OpenStore(storage::DatabaseKind::kEvents,
                                {db_config_.path, storage::OpenMode::kReadOnly, db_config_.busy_timeout_ms}));
  }
  return db_.get();
}

HttpResponse AgentWeb::StoreFailure(const Status& s) {
  if (!webui::StoreReadTimedOut(s)) db_.reset();  // opened again by the next request
  return webui::StoreReadFailure(s, "event store");
}

}  // namespace sentinel::agent
