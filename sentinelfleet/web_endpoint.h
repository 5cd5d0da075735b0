// What `sentinelfleet serve` answers on console.http_listen (SPEC §16, "the
// console serves the same across hosts"; docs/web-ui.md), served by
// webui::HttpServer with the page the agent serves:
//   GET /, /app.js, ...   the web UI (webui/assets.h)
//   GET /health           the console's report: 200 when healthy, 503 when not
//   GET /api/info         {"mode": "console", "version"}
//   GET /api/health       the same report, always 200
//   GET /api/alerts       every host's alerts, newest first (webui/alert_query.h,
//                         plus `host`)
//   GET /api/alerts/ID    one stored alert: the console's fields and, under
//                         "alert", the alert as its host sent it
//   GET /api/alerts/ID/tree  404 naming where the tree is: the console keeps
//                         alerts and heartbeats, not process history
//   GET /api/hosts        every host's last heartbeat, "stale" when older
//                         than two heartbeat periods
// Everything else is 404; a bad parameter 400 naming it; a read past
// webui::kReadBudgetMs 503. Every answer but /health needs a Host that
// names this machine (webui::IsAllowedHost; 403 otherwise).
//
// Health: "store" (the console store opens read-only with a current schema)
// and "ingest" (serve's loop consumes SENTINELD_ALERTS, or the error it waits
// on: IngestState of ingest.h, set by the loop).
//
// Read-only: a read-only connection to the console store of its own (opened
// on first use, again after a failure), on the serving thread only, each
// request's reads bounded by a ReadDeadline; serve's ingest never waits on it.
//
// Thread-safety: ConsoleWeb::Answer from the HTTP serving thread only;
// IngestState from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sentinel/base/status.h"
#include "sentinel/webui/http.h"
#include "sentinelfleet/console_store.h"
#include "sentinelfleet/ingest.h"

namespace sentinel::console {

class ConsoleWeb {
 public:
  // `listen` is console.http_listen: its host is also accepted in Host.
  ConsoleWeb(std::string store_path, const std::string& listen, std::string version,
             const IngestState& ingest);
  ConsoleWeb(const ConsoleWeb&) = delete;
  ConsoleWeb& operator=(const ConsoleWeb&) = delete;

  webui::HttpResponse Answer(const webui::HttpRequest& req);

 private:
  webui::HttpResponse Api(const webui::HttpRequest& req);
  webui::HttpResponse ListAlerts(const webui::HttpRequest& req);
  webui::HttpResponse AlertOrTree(const std::string& id_text, const std::string& rest);
  webui::HttpResponse Hosts();
  nlohmann::ordered_json HealthJson();
  Result<ConsoleStore*> Store();
  webui::HttpResponse StoreFailure(const Status& s);

  const std::string store_path_;
  const std::string listen_host_;
  const std::string version_;
  const IngestState& ingest_;
  std::unique_ptr<ConsoleStore> store_;
};

}  // namespace sentinel::console
