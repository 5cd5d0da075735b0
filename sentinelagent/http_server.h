// The agent's loopback HTTP endpoint on telemetry.http_listen (SPEC §10,
// docs/operations.md): GET /metrics (Prometheus text format 0.0.4) and
// GET /health (the JSON health report; HTTP 200 when healthy, 503 when not).
// Any other path is 404; methods other than GET 405.
//
// A small HTTP/1.0-1.1 server of its own (docs/decisions.md): one thread
// polls the listening socket and every connection, so no client can take a
// worker away from another. Each connection answers one request and closes
// (Connection: close). Bounds, so that local clients that connect and stay
// silent, or send a byte a second (slowloris), cannot starve a scraper:
//   - at most kMaxConnections open at once; a new one evicts the oldest
//     connection still sending its request;
//   - the request head must be complete within kRequestDeadlineMs of the
//     accept, and the answer written within kRequestDeadlineMs more, or the
//     connection is closed;
//   - a request head over kMaxRequestBytes is answered 431 and closed.
// Answers are built on the serving thread (Health/Metrics are bounded by
// their own 1 s procmond timeout), never touching detection or delivery.
//
// Bind() happens at start-up, before any store is touched, so a taken port
// is a start-up error naming the address (a taken port: the agent exits 1,
// systemd retries; any other bad address: exit 2).
//
// Thread-safety: Bind/Start/Stop from the owning thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <string>
#include <thread>

#include "sentinel/base/files.h"
#include "sentinel/base/status.h"
#include "sentinelagent/control.h"

namespace sentinel::agent {

inline constexpr int kMaxConnections = 64;
inline constexpr int64_t kRequestDeadlineMs = 5000;
inline constexpr size_t kMaxRequestBytes = 8192;

class HttpServer {
 public:
  explicit HttpServer(AgentOps& ops);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `listen` ("host:port", "[v6]:port"). Unavailable when the address
  // is in use (the agent exits 1: a transient conflict), InvalidArgument
  // naming the address and the reason for anything else (exit 2).
  Status Bind(const std::string& listen);
  void Start();
  void Stop();
  const std::string& address() const { return address_; }

  // Connections closed for missing their deadline or evicted (for tests and logs).
  uint64_t dropped() const { return dropped_.load(); }

  struct Conn;     // one client connection (http_server.cc)
  struct PollSet;  // what one poll of the serving thread waits for
  using Conns = std::list<Conn>;

 private:
  void Serve();
  void ServeConnections(Conns& conns, const PollSet& set);
  void DropExpired(Conns& conns);
  void AcceptAll(Conns& conns);
  // Closes and forgets a connection, counting it in dropped() when `counted`.
  Conns::iterator Drop(Conns& conns, Conns::iterator it, bool counted);
  std::string Answer(const std::string& head);

  AgentOps& ops_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;  // eventfd: Stop() wakes the poll loop
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
  std::string address_;
};

}  // namespace sentinel::agent
