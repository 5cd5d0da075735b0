// A control server on a temporary socket for the ipc tests. Test-only.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "sentinel/ipc/control_socket.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::ipc {

struct TestServer {
  testing::TempDir tmp;
  std::atomic<int> scans{0};
  std::unique_ptr<ControlServer> server;

  explicit TestServer(size_t max_clients = 16, int64_t timeout_ms = 2000) {
    ServerOptions o;
    o.socket_dir = tmp.File("run");
    o.socket_name = kProcmondSocket;
    o.max_clients = max_clients;
    o.request_timeout_ms = timeout_ms;
    o.component = "test";
    o.subscribe_command = kSubscribeEvents;
    auto s = ControlServer::Listen(o, Handlers());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) {
      server = std::move(s).value();
      EXPECT_TRUE(server->Start().ok());
    }
  }
  std::map<std::string, Handler> Handlers() {
    return {
        {"health",
         [](const Request&) -> Result<nlohmann::json> {
           return nlohmann::json{{"status", "ok"}};
         }},
        {"scan-now",
         [this](const Request&) -> Result<nlohmann::json> {
           scans++;
           return nlohmann::json{{"queued", true}};
         }},
        {"stats", [](const Request&) -> Result<nlohmann::json> { return UnavailableError("no stats yet"); }}};
  }
  std::string path() const { return server ? server->path() : ""; }
};

}  // namespace sentinel::ipc
