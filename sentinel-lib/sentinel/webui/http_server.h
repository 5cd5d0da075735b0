// The loopback HTTP endpoint of sentinelagent (telemetry.http_listen: the web
// UI, its JSON API, GET /metrics and GET /health) and of `sentinelfleet serve`
// (console.http_listen: the same UI across hosts). SPEC §10, §16;
// docs/operations.md, docs/web-ui.md.
//
// A small HTTP/1.0-1.1 server of its own (docs/decisions.md "HTTP endpoint"):
// one thread polls the listening socket and every connection, so no client can
// take a worker away from another. Each connection answers one request and
// closes (Connection: close). Bounds, so that local clients that connect and
// stay silent, or send a byte a second (slowloris), cannot starve a scraper:
//   - at most kMaxConnections open at once; a new one evicts the oldest
//     connection still sending its request;
//   - the request head must be complete within kRequestDeadlineMs of the
//     accept, and the answer written within kRequestDeadlineMs more, or the
//     connection is closed;
//   - a request head over kMaxRequestBytes is answered 431 and closed.
// Only GET and HEAD exist: any other method is 405 (with Allow: GET, HEAD)
// before the handler is asked; HEAD is the GET answer without its body. A
// request line that does not parse is 400. Every answer, the server's own
// included, carries the security headers of http.h (Content-Security-Policy,
// nosniff, no referrer, no framing, Cache-Control).
//
// The handler builds answers on the serving thread: it must bound its own
// work (the agent's store reads have a deadline, procmond's calls a 1 s
// timeout) and must never touch detection or delivery.
//
// Bind() happens at start-up, before any store is touched, so a taken port
// is a start-up error naming the address and the configuration key
// (Unavailable: the program exits 1, systemd retries; any other bad address:
// InvalidArgument, exit 2).
//
// Thread-safety: Bind/Start/Stop from the owning thread; the handler runs on
// the serving thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <thread>

#include "sentinel/base/files.h"
#include "sentinel/base/status.h"
#include "sentinel/webui/http.h"

namespace sentinel::webui {

inline constexpr int kMaxConnections = 64;
inline constexpr int64_t kRequestDeadlineMs = 5000;
inline constexpr size_t kMaxRequestBytes = 8192;

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Parses a request head (request line and header lines, ending with the
// CRLF of the last header line) and answers it: 400 for a request line that
// does not parse, 405 for a method other than GET/HEAD, else `handler`.
// The bytes to send (http.h SerializeResponse).
std::string AnswerRequest(const std::string& head, const HttpHandler& handler);

class HttpServer {
 public:
  // `config_key` names the setting in Bind's errors ("telemetry.http_listen").
  HttpServer(std::string config_key, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `listen` ("host:port", "[v6]:port"). Unavailable when the address
  // is in use (a transient conflict), InvalidArgument naming the key, the
  // address and the reason for anything else.
  Status Bind(const std::string& listen);
  void Start();
  void Stop();
  const std::string& address() const { return address_; }
  // The port bound (useful after Bind of port 0); 0 before Bind.
  int port() const;

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

  const std::string config_key_;
  const HttpHandler handler_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;  // eventfd: Stop() wakes the poll loop
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
  std::string address_;
};

}  // namespace sentinel::webui
