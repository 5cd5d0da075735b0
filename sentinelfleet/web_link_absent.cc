// The console's web UI in a build without the http feature
// (SENTINEL_HTTP=OFF; web_link.h): nothing listens.
#include "sentinel/base/features.h"
#include "sentinelfleet/web_link.h"

namespace sentinel::console {

Result<std::unique_ptr<WebUiLink>> StartConsoleWebUi(const std::string& /*store_path*/,
                                                     const std::string& listen,
                                                     const std::string& /*version*/,
                                                     const IngestState& /*state*/) {
  if (listen.empty()) return std::unique_ptr<WebUiLink>();
  return UnimplementedError("console.http_listen: " + listen + ": " + NotBuiltReason(Feature::kHttp));
}

}  // namespace sentinel::console
