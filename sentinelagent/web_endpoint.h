// What the agent answers on telemetry.http_listen (SPEC §10, §16;
// docs/operations.md, docs/web-ui.md), served by webui::HttpServer:
//   GET /metrics          Prometheus text (AgentOps::Metrics)
//   GET /health           the health report; 200 when healthy, 503 when not
//   GET /, /app.js, ...   the web UI (webui/assets.h)
//   GET /api/info         {"mode": "agent", "version", "hostname"}
//   GET /api/health       the health report, always 200 (the page reads "status")
//   GET /api/alerts       alerts, newest first, filtered (webui/alert_query.h)
//   GET /api/alerts/ID    one alert as delivered (Alert::ToJson)
//   GET /api/alerts/ID/tree  the process tree around its first affected process
// Everything else is 404 (JSON under /api/). A bad parameter or id is 400
// with a JSON error naming it; a read past webui::kReadBudgetMs is 503.
// The UI and the API answer only requests whose Host names this machine
// (webui::IsAllowedHost; 403 otherwise); /metrics and /health answer any.
// With telemetry.web_ui false only /metrics and /health exist (the rest 404).
//
// Read-only: the alerts come from a read-only connection to the event store
// of its own (opened on first use, opened again after a failure), used only
// on the serving thread, each request's reads bounded by a ReadDeadline —
// the detection and delivery threads never wait on it.
//
// Thread-safety: Answer() from the HTTP serving thread only.
#pragma once

#include <memory>
#include <string>

#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/storage/sqlite.h"
#include "sentinel/webui/http.h"
#include "sentinelagent/control.h"

namespace sentinel::agent {

class AgentWeb {
 public:
  // `telemetry` gives http_listen (its host is also accepted in Host) and web_ui.
  AgentWeb(AgentOps& ops, config::DatabaseConfig db, const config::TelemetryConfig& telemetry,
           std::string version);
  AgentWeb(const AgentWeb&) = delete;
  AgentWeb& operator=(const AgentWeb&) = delete;

  webui::HttpResponse Answer(const webui::HttpRequest& req);

 private:
  webui::HttpResponse Api(const webui::HttpRequest& req);
  webui::HttpResponse ListAlerts(const webui::HttpRequest& req);
  webui::HttpResponse AlertOrTree(const std::string& id_text, const std::string& rest);
  // The read-only connection, opened when missing.
  Result<storage::Database*> Store();
  // The answer for a failed store read (and forgets the connection unless
  // the read merely ran out of time).
  webui::HttpResponse StoreFailure(const Status& s);

  AgentOps& ops_;
  const config::DatabaseConfig db_config_;
  const std::string listen_host_;
  const bool ui_enabled_;
  const std::string version_;
  std::unique_ptr<storage::Database> db_;
};

}  // namespace sentinel::agent
