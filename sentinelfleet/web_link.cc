// The console's web UI in a build with the http feature (web_link.h).
#include "sentinelfleet/web_link.h"

#include "sentinel/telemetry/log.h"
#include "sentinel/webui/http_server.h"
#include "sentinelfleet/web_endpoint.h"

namespace sentinel::console {
namespace {

class ConsoleWebLink final : public WebUiLink {
 public:
  ConsoleWebLink(const std::string& store_path, const std::string& listen, const std::string& version,
                 const IngestState& state)
      : web_(store_path, listen, version, state),
        server_("console.http_listen", [this](const webui::HttpRequest& req) { return web_.Answer(req); }) {}
  ~ConsoleWebLink() override { server_.Stop(); }
  ConsoleWebLink(const ConsoleWebLink&) = delete;
  ConsoleWebLink& operator=(const ConsoleWebLink&) = delete;

  Status Bind(const std::string& listen) { return server_.Bind(listen); }
  void Start() { server_.Start(); }
  void Stop() override { server_.Stop(); }

 private:
  ConsoleWeb web_;  // what server_ answers (its serving thread only)
  webui::HttpServer server_;
};

}  // namespace

Result<std::unique_ptr<WebUiLink>> StartConsoleWebUi(const std::string& store_path, const std::string& listen,
                                                     const std::string& version, const IngestState& state) {
  if (listen.empty()) return std::unique_ptr<WebUiLink>();
  auto link = std::make_unique<ConsoleWebLink>(store_path, listen, version, state);
  RETURN_IF_ERROR(link->Bind(listen));
  link->Start();
  telemetry::LogInfo("serve: web UI listening", {{"address", listen}});
  return std::unique_ptr<WebUiLink>(std::move(link));
}

}  // namespace sentinel::console
