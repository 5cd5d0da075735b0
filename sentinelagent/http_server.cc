#include "sentinelagent/http_server.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <httplib.h>

#include "sentinel/telemetry/log.h"

namespace sentinel::agent {

HttpServer::HttpServer(AgentOps& ops) : ops_(ops), server_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() {
  Stop();
}

Status HttpServer::Bind(const std::string& listen) {
  address_ = listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos)
    return InvalidArgumentError("telemetry.http_listen: expected host:port, got \"" + listen + "\"");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    return InvalidArgumentError("telemetry.http_listen: bad port in \"" + listen + "\"");
  }
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_keep_alive_max_count(10);
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ops_.Metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    ipc::HealthReport r = ops_.Health();
    res.status = r.healthy() ? 200 : 503;
    res.set_content(ipc::HealthToJson(r).dump() + "\n", "application/json");
  });
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_content("only GET /metrics and GET /health\n", "text/plain");
  };
  server_->Post(".*", not_allowed);
  server_->Put(".*", not_allowed);
  server_->Delete(".*", not_allowed);
  errno = 0;
  if (!server_->bind_to_port(host, port)) {
    const int err = errno;
    // A taken port is the host's state, not the configuration's: Unavailable (exit 1, retried by
    // systemd). Everything else about the address is a configuration error (exit 2).
    if (err == EADDRINUSE) {
      return UnavailableError("telemetry.http_listen: cannot listen on " + listen +
                              ": address already in use (another sentinelagent or program listens there)");
    }
    std::string why = err != 0 ? std::string(std::strerror(err)) : "cannot bind (bad host?)";
    return InvalidArgumentError("telemetry.http_listen: cannot listen on " + listen + ": " + why);
  }
  return Status::Ok();
}

void HttpServer::Start() {
  thread_ = std::thread([this] {
    if (!server_->listen_after_bind()) telemetry::LogError("HTTP endpoint stopped", {{"address", address_}});
  });
  // listen_after_bind sets is_running once its accept loop runs; wait so a
  // Stop() right after Start() cannot be missed.
  for (int i = 0; i < 200 && !server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void HttpServer::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace sentinel::agent
