// The console's web UI as `sentinelfleet serve` sees it (console.http_listen;
// docs/web-ui.md). serve_cmd.cc knows only this header, so it builds the same
// with or without the http feature:
//   SENTINEL_HTTP=ON   web_link.cc: webui::HttpServer answering through
//                      ConsoleWeb (web_endpoint.h);
//   SENTINEL_HTTP=OFF  web_link_absent.cc: a non-empty listen address is
//                      refused with Unimplemented naming the option (the
//                      configuration already refused console.http_listen).
#pragma once

#include <memory>
#include <string>

#include "sentinel/base/status.h"
#include "sentinelfleet/ingest.h"

namespace sentinel::console {

// A serving web UI; stops when dropped.
class WebUiLink {
 public:
  virtual ~WebUiLink() = default;
  virtual void Stop() = 0;
};

// Binds `listen` and starts serving the console store at `store_path`; null
// when `listen` is "". Unavailable when the port is taken (exit 1),
// InvalidArgument for a bad address (exit 2), each naming console.http_listen.
Result<std::unique_ptr<WebUiLink>> StartConsoleWebUi(const std::string& store_path, const std::string& listen,
                                                     const std::string& version, const IngestState& state);

}  // namespace sentinel::console
