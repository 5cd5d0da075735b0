// The agent's HTTP endpoint in a build with the http feature (http_link.h).
#include "sentinelagent/http_link.h"

#include "sentinel/webui/http_server.h"
#include "sentinelagent/web_endpoint.h"

namespace sentinel::agent {
namespace {

class WebLink final : public HttpLink {
 public:
  WebLink(AgentOps& ops, const config::DatabaseConfig& db, const config::TelemetryConfig& telemetry,
          const std::string& version)
      : web_(ops, db, telemetry, version),
        server_("telemetry.http_listen", [this](const webui::HttpRequest& req) { return web_.Answer(req); }) {
  }
  ~WebLink() override { server_.Stop(); }
  WebLink(const WebLink&) = delete;
  WebLink& operator=(const WebLink&) = delete;

  Status Bind(const std::string& listen) override { return server_.Bind(listen); }
  void Start() override { server_.Start(); }
  void Stop() override { server_.Stop(); }
  std::string address() const override { return server_.address(); }

 private:
  AgentWeb web_;  // what server_ answers (its serving thread only)
  webui::HttpServer server_;
};

}  // namespace

std::unique_ptr<HttpLink> MakeHttpLink(AgentOps& ops, const config::DatabaseConfig& db,
                                       const config::TelemetryConfig& telemetry, const std::string& version) {
  return std::make_unique<WebLink>(ops, db, telemetry, version);
}

}  // namespace sentinel::agent
