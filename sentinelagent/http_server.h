// The agent's loopback HTTP endpoint on telemetry.http_listen (SPEC §10,
// docs/operations.md): GET /metrics (Prometheus text format 0.0.4) and
// GET /health (the JSON health report; HTTP 200 when healthy, 503 when not).
// Anything else is 404; methods other than GET 405.
//
// Bind() happens at start-up, before any store is touched, so a taken port
// is a start-up error (the agent exits 1 naming the address; systemd retries). Serving runs
// on its own thread (a small pool of 2 workers, 5 s read/write timeouts);
// a slow scrape never blocks detection or delivery.
//
// Thread-safety: Bind/Start/Stop from the owning thread.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "sentinel/base/status.h"
#include "sentinelagent/control.h"

namespace httplib {
class Server;
}

namespace sentinel::agent {

class HttpServer {
 public:
  explicit HttpServer(AgentOps& ops);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `listen` ("host:port"). Unavailable when the address is in use
  // (the agent exits 1: a transient conflict), InvalidArgument naming the
  // address and the reason for anything else (exit 2: configuration).
  Status Bind(const std::string& listen);
  void Start();
  void Stop();
  const std::string& address() const { return address_; }

 private:
  AgentOps& ops_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
};

}  // namespace sentinel::agent
