#include "sentinel/webui/http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <system_error>
#include <vector>

#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::webui {

struct HttpServer::Conn {
  UniqueFd fd;
  int64_t deadline_ms = 0;  // monotonic: head complete (reading) or answer sent (writing)
  bool writing = false;
  std::string in;
  std::string out;
  size_t sent = 0;
};

namespace {

using Conn = HttpServer::Conn;

void SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

HttpServer::HttpServer(std::string config_key, HttpHandler handler)
    : config_key_(std::move(config_key)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  Stop();
}

Status HttpServer::Bind(const std::string& listen) {
  address_ = listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos)
    return InvalidArgumentError(config_key_ + ": expected host:port, got \"" + listen + "\"");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
      std::stoi(port) > 65535) {
    return InvalidArgumentError(config_key_ + ": bad port in \"" + listen + "\"");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return InvalidArgumentError(config_key_ + ": cannot listen on " + listen + ": " + ::gai_strerror(rc));
  }
  int err = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (fd.get() < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd.get(), 128) == 0) {
      listen_fd_ = std::move(fd);
      break;
    }
    err = errno;
  }
  ::freeaddrinfo(res);
  if (listen_fd_.get() < 0) {
    // A taken port is the host's state, not the configuration's: Unavailable (exit 1, retried by
    // systemd). Everything else about the address is a configuration error (exit 2).
    if (err == EADDRINUSE) {
      return UnavailableError(
          config_key_ + ": cannot listen on " + listen +
          ": address already in use (another program, or another instance, listens there)");
    }
    std::string why = std::generic_category().message(err);  // thread-safe, unlike strerror
    return InvalidArgumentError(config_key_ + ": cannot listen on " + listen + ": " + why);
  }
  wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wake_fd_.get() < 0) return ErrnoError(errno, "creating the HTTP endpoint's wake-up eventfd");
  return Status::Ok();
}

void HttpServer::Start() {
  if (listen_fd_.get() < 0 || thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Serve(); });
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  const uint64_t one = 1;
  if (::write(wake_fd_.get(), &one, sizeof(one)) < 0) {
    // The eventfd counter cannot overflow here; the loop also polls stop_ every second.
  }
  thread_.join();
}

int HttpServer::port() const {
  if (listen_fd_.get() < 0) return 0;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

namespace {

// The value of header `name` (case-insensitive) among the head's header lines, "" when absent.
std::string HeaderValue(const std::string& head, std::string_view name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    const size_t start = pos + 2;
    const size_t end = head.find("\r\n", start);
    const std::string_view line(head.data() + start, (end == std::string::npos ? head.size() : end) - start);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && EqualsIgnoreCase(line.substr(0, colon), name)) {
      return std::string(Trim(line.substr(colon + 1)));
    }
    pos = end;
  }
  return "";
}

}  // namespace

std::string AnswerRequest(const std::string& head, const HttpHandler& handler) {
  // Request line: METHOD SP target SP HTTP/x.y
  const size_t eol = head.find("\r\n");
  const std::string line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0 ||
      line.compare(sp1 + 1, 1, "/") != 0) {
    return SerializeResponse(TextResponse(400, "malformed request line\n"), false);
  }
  HttpRequest req;
  req.method = line.substr(0, sp1);
  req.path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto q = req.path.find('?'); q != std::string::npos) {
    req.query = req.path.substr(q + 1);
    req.path.resize(q);
  }
  if (auto hash = req.query.find('#'); hash != std::string::npos) req.query.resize(hash);
  const bool head_only = req.method == "HEAD";
  if (req.method != "GET" && !head_only) {
    HttpResponse r = TextResponse(405, "only GET and HEAD\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return SerializeResponse(r, false);
  }
  req.host = HeaderValue(head, "Host");
  return SerializeResponse(handler(req), head_only);
}

namespace {

using Conns = HttpServer::Conns;
using PollSet = HttpServer::PollSet;

}  // namespace

// What one poll waits for: the wake-up eventfd, the listening socket, then
// every connection (index[i] is fds[i + 2]).
struct HttpServer::PollSet {
  std::vector<pollfd> fds;
  std::vector<Conns::iterator> index;
  int timeout_ms = 1000;
};

namespace {

PollSet WaitSet(int wake_fd, int listen_fd, Conns& conns) {
  PollSet set;
  set.fds.push_back({wake_fd, POLLIN, 0});
  set.fds.push_back({listen_fd, POLLIN, 0});
  const int64_t now = MonotonicMs();
  int64_t next_deadline = now + 1000;
  for (auto it = conns.begin(); it != conns.end(); ++it) {
    set.fds.push_back({it->fd.get(), static_cast<short>(it->writing ? POLLOUT : POLLIN), 0});
    set.index.push_back(it);
    next_deadline = std::min(next_deadline, it->deadline_ms);
  }
  set.timeout_ms = static_cast<int>(std::clamp<int64_t>(next_deadline - now, 0, 1000));
  return set;
}

// Reads what the peer sent; true when it closed its end (or failed).
bool ReceiveAvailable(Conn& c) {
  char buf[2048];
  while (c.in.size() <= kMaxRequestBytes) {
    const ssize_t got = ::recv(c.fd.get(), buf, sizeof(buf), 0);
    if (got > 0) {
      c.in.append(buf, static_cast<size_t>(got));
      continue;
    }
    return got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  return false;
}

enum class Progress { kWaiting, kAnswering, kClosed };

// Reads the request head; once complete (or too large) the answer is ready
// in c.out and the connection switches to writing.
Progress ReadRequest(Conn& c, const std::function<std::string(const std::string&)>& answer) {
  const bool closed = ReceiveAvailable(c);
  const size_t end = c.in.find("\r\n\r\n");
  if (end != std::string::npos && end + 4 <= kMaxRequestBytes) {
    c.out = answer(c.in.substr(0, end + 2));
  } else if (c.in.size() > kMaxRequestBytes) {
    c.out = SerializeResponse(
        TextResponse(431, "request head over " + std::to_string(kMaxRequestBytes) + " bytes\n"), false);
  } else {
    return closed ? Progress::kClosed : Progress::kWaiting;
  }
  c.in.clear();
  c.in.shrink_to_fit();
  c.writing = true;
  c.deadline_ms = MonotonicMs() + kRequestDeadlineMs;
  return Progress::kAnswering;
}

// Sends what the socket takes; true when the answer is out (or the peer gone).
bool SendAvailable(Conn& c) {
  while (c.sent < c.out.size()) {
    const ssize_t put = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (put > 0) {
      c.sent += static_cast<size_t>(put);
      continue;
    }
    if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
    c.sent = c.out.size() + 1;  // peer gone
  }
  return true;
}

}  // namespace

Conns::iterator HttpServer::Drop(Conns& conns, Conns::iterator it, bool counted) {
  if (counted) dropped_++;
  return conns.erase(it);  // closes the socket
}

// Connections first: a request already sent is answered before new arrivals
// can evict it.
void HttpServer::ServeConnections(Conns& conns, const PollSet& set) {
  const auto answer = [this](const std::string& head) { return AnswerRequest(head, handler_); };
  for (size_t i = 0; i < set.index.size(); ++i) {
    if (set.fds[i + 2].revents == 0) continue;
    auto it = set.index[i];
    if (!it->writing) {
      const Progress p = ReadRequest(*it, answer);
      if (p == Progress::kClosed) Drop(conns, it, false);
      if (p != Progress::kAnswering) continue;
    }
    if (SendAvailable(*it)) {
      ::shutdown(it->fd.get(), SHUT_WR);
      Drop(conns, it, false);
    }
  }
}

void HttpServer::DropExpired(Conns& conns) {
  const int64_t now = MonotonicMs();
  for (auto it = conns.begin(); it != conns.end();) {
    it = it->deadline_ms <= now ? Drop(conns, it, true) : std::next(it);
  }
}

// New connections; at the cap, the oldest one still sending its request goes.
void HttpServer::AcceptAll(Conns& conns) {
  while (true) {
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && !conns.empty()) {
        Drop(conns, conns.begin(), true);
        continue;
      }
      return;
    }
    if (static_cast<int>(conns.size()) >= kMaxConnections) {
      auto victim = std::find_if(conns.begin(), conns.end(), [](const Conn& c) { return !c.writing; });
      Drop(conns, victim != conns.end() ? victim : conns.begin(), true);
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    SetNonBlocking(fd.get());
    conns.push_back(Conn{std::move(fd), MonotonicMs() + kRequestDeadlineMs, false, {}, {}, 0});
  }
}

void HttpServer::Serve() {
  Conns conns;  // in accept order: the front is the oldest
  while (!stop_) {
    PollSet set = WaitSet(wake_fd_.get(), listen_fd_.get(), conns);
    const int n = ::poll(set.fds.data(), set.fds.size(), set.timeout_ms);
    if (n < 0 && errno != EINTR) {
      telemetry::LogError("HTTP endpoint stopped",
                          {{"address", address_}, {"error", std::generic_category().message(errno)}});
      break;
    }
    if (stop_) break;
    ServeConnections(conns, set);
    DropExpired(conns);
    if (set.fds[1].revents & POLLIN) AcceptAll(conns);
  }
}

}  // namespace sentinel::webui
