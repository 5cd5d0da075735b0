#include "sentinelfleet/web_endpoint.h"

#include <utility>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/storage/store.h"
#include "sentinel/webui/alert_page.h"
#include "sentinel/webui/alert_query.h"
#include "sentinel/webui/assets.h"
#include "sentinel/webui/read_deadline.h"

namespace sentinel::console {
namespace {

using nlohmann::ordered_json;
using webui::HttpRequest;
using webui::HttpResponse;
using webui::JsonError;
using webui::JsonResponse;

// Affected processes listed per alert in /api/alerts, taken from the alert
// as its host sent it (native JSON; an OCSF alert has none there).
constexpr std::string_view kListColumns =
    "id, host_id, alert_id, received_at_ms, alert_time, rule_id, severity, title, "
    "CASE WHEN json_valid(body) THEN json_extract(body, '$.status') END, "
    "CASE WHEN json_valid(body) THEN json_extract(body, '$.process_count') END, "
    "CASE WHEN json_valid(body) AND json_type(body, '$.affected_processes') = 'array' THEN "
    "(SELECT json_group_array(json(value)) FROM "
    "(SELECT value FROM json_each(body, '$.affected_processes') LIMIT 10)) END";

std::string FilterSql(const webui::AlertQuery& q) {
  std::string where = "1";
  if (q.host) where += " AND host_id = :host";
  if (q.min_severity) {
    where += " AND severity IN ('" + Join(webui::SeveritiesFrom(*q.min_severity), "','") + "')";
  }
  if (q.rule) where += " AND rule_id = :rule";
  if (q.status) where += " AND json_valid(body) AND json_extract(body, '$.status') = :status";
  if (q.since_ms) where += " AND COALESCE(alert_time, received_at_ms) >= :since";
  if (q.until_ms) where += " AND COALESCE(alert_time, received_at_ms) <= :until";
  if (q.text) {
    where +=
        " AND (title LIKE :q ESCAPE '\\' OR rule_id LIKE :q ESCAPE '\\' OR host_id LIKE :q ESCAPE '\\'"
        " OR body LIKE :q ESCAPE '\\')";
  }
  return where;
}

ordered_json OptionalInt(const storage::Statement& st, int col) {
  auto v = st.ColumnOptionalInt(col);
  return v ? ordered_json(*v) : ordered_json(nullptr);
}

ordered_json ListEntry(const storage::Statement& st) {
  ordered_json j;
  j["id"] = st.ColumnInt(0);
  j["host_id"] = st.ColumnText(1);
  j["alert_id"] = st.ColumnText(2);
  j["received_at_ms"] = st.ColumnInt(3);
  j["alert_time"] = OptionalInt(st, 4);
  j["rule_id"] = st.ColumnText(5);
  j["severity"] = st.ColumnText(6);
  j["title"] = st.ColumnText(7);
  j["status"] = st.IsNull(8) ? ordered_json(nullptr) : ordered_json(st.ColumnText(8));
  j["process_count"] = OptionalInt(st, 9);
  ordered_json procs = st.IsNull(10)
                           ? ordered_json::array()
                           : ordered_json::parse(st.ColumnText(10), nullptr, /*allow_exceptions=*/false);
  j["affected_processes"] = procs.is_array() ? procs : ordered_json::array();
  return j;
}

Result<ordered_json> ReadAlertList(storage::Database& db, const webui::AlertQuery& q) {
  ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT " + std::string(kListColumns) + " FROM alerts WHERE " +
                                       FilterSql(q) + " ORDER BY id DESC LIMIT :limit OFFSET :offset"));
  RETURN_IF_ERROR(webui::BindAlertQuery(st, q));
  return webui::ReadAlertPage(st, q, ListEntry);
}

ordered_json AlertJson(const StoredAlert& a) {
  ordered_json j;
  j["id"] = a.id;
  j["host_id"] = a.host_id;
  j["alert_id"] = a.alert_id;
  j["host_seq"] = a.host_seq;
  j["stream_seq"] = a.stream_seq;
  j["received_at_ms"] = a.received_at_ms;
  j["alert_time"] = a.alert_time ? ordered_json(*a.alert_time) : ordered_json(nullptr);
  j["rule_id"] = a.rule_id;
  j["severity"] = a.severity;
  j["title"] = a.title;
  ordered_json body = ordered_json::parse(a.body, nullptr, /*allow_exceptions=*/false);
  j["alert"] = body.is_discarded() ? ordered_json(a.body) : body;
  return j;
}

ordered_json HostJson(const HostRow& h, int64_t now_s) {
  ordered_json j;
  j["host_id"] = h.host_id;
  j["hostname"] = h.hostname;
  j["version"] = h.version;
  j["health"] = h.health;
  j["last_scan"] = h.last_scan;
  j["rules_count"] = h.rules_count ? ordered_json(*h.rules_count) : ordered_json(nullptr);
  j["rules_checksum"] = h.rules_checksum;
  j["sent_at_ms"] = h.sent_at ? ordered_json(*h.sent_at * 1000) : ordered_json(nullptr);
  j["seen_at_ms"] = h.seen_at_ms;
  j["stale"] = !h.sent_at || *h.sent_at < now_s - fleet::kLiveHeartbeatSecs;
  return j;
}

ordered_json Component(std::string name, bool ok, std::string detail) {
  ordered_json c;
  c["name"] = std::move(name);
  c["status"] = ok ? "ok" : "unhealthy";
  c["detail"] = std::move(detail);
  return c;
}

}  // namespace

ConsoleWeb::ConsoleWeb(std::string store_path, const std::string& listen, std::string version,
                       const IngestState& ingest)
    : store_path_(std::move(store_path)),
      listen_host_(webui::ListenHost(listen)),
      version_(std::move(version)),
      ingest_(ingest) {}

HttpResponse ConsoleWeb::Answer(const HttpRequest& req) {
  if (req.path == "/health") {  // for probes, as the agent's: any Host
    ordered_json h = HealthJson();
    return JsonResponse(h["status"] == "healthy" ? 200 : 503, h);
  }
  if (!webui::IsAllowedHost(req.host, {listen_host_})) return webui::HostRefused(req);
  if (StartsWith(req.path, "/api/")) return Api(req);
  if (const webui::Asset* asset = webui::FindAsset(req.path)) return webui::AssetResponse(*asset);
  return webui::TextResponse(404, "not found\n");
}

HttpResponse ConsoleWeb::Api(const HttpRequest& req) {
  if (req.path == "/api/alerts") return ListAlerts(req);
  // Only the list takes parameters: any other is named, not ignored.
  if (webui::QueryParams params(req.query, {}); !params.ok()) return params.ErrorResponse();
  if (req.path == "/api/info") return JsonResponse(200, {{"mode", "console"}, {"version", version_}});
  if (req.path == "/api/health") return JsonResponse(200, HealthJson());
  if (req.path == "/api/hosts") return Hosts();
  if (auto m = webui::MatchAlertPath(req.path)) return AlertOrTree(m->id_text, m->rest);
  return JsonError(404, "no such API path");
}

HttpResponse ConsoleWeb::ListAlerts(const HttpRequest& req) {
  webui::ParsedAlertQuery parsed = webui::ParseAlertQuery(req.query, /*with_host=*/true, NowMs());
  if (parsed.error) return JsonError(400, parsed.error->message, parsed.error->parameter);
  auto store = Store();
  if (!store.ok()) return StoreFailure(store.status());
  webui::ReadDeadline deadline((*store)->db());
  auto list = ReadAlertList((*store)->db(), parsed.query);
  if (!list.ok()) return StoreFailure(list.status());
  return JsonResponse(200, *list);
}

HttpResponse ConsoleWeb::AlertOrTree(const std::string& id_text, const std::string& rest) {
  auto id = ParseInt64(id_text);
  if (!id || *id <= 0) {
    return JsonError(400, "id: expected a positive integer, got " + QuoteForMessage(id_text), "id");
  }
  if (!rest.empty() && rest != "/tree") return JsonError(404, "no such API path");
  auto store = Store();
  if (!store.ok()) return StoreFailure(store.status());
  webui::ReadDeadline deadline((*store)->db());
  auto alert = (*store)->GetAlert(*id);
  if (!alert.ok()) {
    if (alert.status().code() == StatusCode::kNotFound) return JsonError(404, alert.status().message());
    return StoreFailure(alert.status());
  }
  if (rest == "/tree") {
    ordered_json j;
    j["error"] = "the console keeps alerts and heartbeats, not process history: the tree is on host " +
                 alert->host_id + " (sentinelcli alerts show " + alert->alert_id + " --tree)";
    j["host_id"] = alert->host_id;
    j["alert_id"] = alert->alert_id;
    return JsonResponse(404, j);
  }
  return JsonResponse(200, AlertJson(*alert));
}

HttpResponse ConsoleWeb::Hosts() {
  auto store = Store();
  if (!store.ok()) return StoreFailure(store.status());
  webui::ReadDeadline deadline((*store)->db());
  auto hosts = (*store)->ListHosts();
  if (!hosts.ok()) return StoreFailure(hosts.status());
  const int64_t now_s = NowMs() / 1000;
  ordered_json list = ordered_json::array();
  for (const HostRow& h : *hosts) list.push_back(HostJson(h, now_s));
  return JsonResponse(200, {{"hosts", std::move(list)}});
}

ordered_json ConsoleWeb::HealthJson() {
  ordered_json components = ordered_json::array();
  auto store = Store();
  components.push_back(store.ok() ? Component("store", true, store_path_)
                                  : Component("store", false, store.status().message()));
  if (!store.ok()) store_.reset();
  auto [consuming, detail] = ingest_.Get();
  components.push_back(Component("ingest", consuming, detail));
  bool healthy = true;
  for (const auto& c : components) healthy = healthy && c["status"] == "ok";
  ordered_json j;
  j["status"] = healthy ? "healthy" : "unhealthy";
  j["source"] = "sentinelfleet";
  j["generated_at_ms"] = NowMs();
  j["components"] = std::move(components);
  return j;
}

Result<ConsoleStore*> ConsoleWeb::Store() {
  if (!store_) {
    ASSIGN_OR_RETURN(store_, ConsoleStore::Open(store_path_, storage::OpenMode::kReadOnly));
  }
  return store_.get();
}

HttpResponse ConsoleWeb::StoreFailure(const Status& s) {
  if (!webui::StoreReadTimedOut(s)) store_.reset();  // opened again by the next request
  return webui::StoreReadFailure(s, "console store");
}

}  // namespace sentinel::console
