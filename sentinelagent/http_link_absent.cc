// The agent's HTTP endpoint in a build without the http feature
// (SENTINEL_HTTP=OFF; http_link.h): nothing listens.
#include "sentinel/base/features.h"
#include "sentinelagent/http_link.h"

namespace sentinel::agent {
namespace {

class NoHttp final : public HttpLink {
 public:
  Status Bind(const std::string& listen) override {
    return UnimplementedError("telemetry.http_listen: " + listen + ": " + NotBuiltReason(Feature::kHttp));
  }
  void Start() override {}
  void Stop() override {}
  std::string address() const override { return {}; }
};

}  // namespace

std::unique_ptr<HttpLink> MakeHttpLink(AgentOps& /*ops*/, const config::DatabaseConfig& /*db*/,
                                       const config::TelemetryConfig& /*telemetry*/,
                                       const std::string& /*version*/) {
  return std::make_unique<NoHttp>();
}

}  // namespace sentinel::agent
