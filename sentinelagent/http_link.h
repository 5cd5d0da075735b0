// The agent's HTTP endpoint as the rest of the agent sees it (telemetry.http_listen:
// the web UI, /api/, /metrics, /health; docs/web-ui.md, docs/operations.md).
// agent.cc knows only this header, so it builds the same with or without the
// http feature:
//   SENTINEL_HTTP=ON   http_link.cc: webui::HttpServer answering through
//                      AgentWeb (web_endpoint.h);
//   SENTINEL_HTTP=OFF  http_link_absent.cc: Bind refuses with Unimplemented
//                      naming the option and nothing listens (the
//                      configuration already refused a non-empty
//                      telemetry.http_listen, whose default is "" there).
//
// Thread-safety: Bind/Start/Stop from the owning thread.
#pragma once

#include <memory>
#include <string>

#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinelagent/control.h"

namespace sentinel::agent {

class HttpLink {
 public:
  virtual ~HttpLink() = default;
  // Binds `listen` ("host:port", "[v6]:port"): Unavailable when the address is
  // taken (the agent exits 1), InvalidArgument naming the address otherwise
  // (exit 2), Unimplemented in a build without the endpoint (exit 2).
  virtual Status Bind(const std::string& listen) = 0;
  virtual void Start() = 0;
  virtual void Stop() = 0;
  virtual std::string address() const = 0;
};

// `telemetry` gives http_listen and web_ui; `db` the store the UI reads.
std::unique_ptr<HttpLink> MakeHttpLink(AgentOps& ops, const config::DatabaseConfig& db,
                                       const config::TelemetryConfig& telemetry, const std::string& version);

}  // namespace sentinel::agent
