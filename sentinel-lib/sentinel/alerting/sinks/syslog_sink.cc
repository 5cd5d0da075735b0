// syslog: RFC 5424 messages over UDP (one datagram each, RFC 5426), TCP
// (octet-counting framing, RFC 6587) or a Unix socket (datagram, as
// /dev/log; a stream socket gets octet-counting framing).
//
// TCP and stream connections are kept open and re-established after an
// error; before each send a connection the peer has closed is noticed and
// replaced, so a message is not written into a dead socket. (TCP syslog has
// no acknowledgement: "sent" is the best a sink can know.)
//
// Size: a message is never larger than max_message_bytes (default 8096,
// rsyslog's default maxMessageSize; over UDP never above the 65,507-byte
// datagram payload). A larger alert is cut to fit (FitAlertJson: marked
// "truncated": true, still valid JSON), never refused: an attacker with a
// huge argv cannot keep an alert from the receiver.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "sentinel/alerting/internal/formats.h"
#include "sentinel/alerting/sinks/sinks.h"
#include "sentinel/base/escape.h"
#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"

namespace sentinel::alerting::sinks {
namespace {

enum class Transport { kUdp, kTcp, kUnix };

struct Address {
  Transport transport;
  std::string host, port, path;
};

Result<Address> ParseAddress(const std::string& text) {
  Address a{};
  std::string_view rest;
  if (StartsWith(text, "udp://")) {
    a.transport = Transport::kUdp;
    rest = std::string_view(text).substr(6);
  } else if (StartsWith(text, "tcp://")) {
    a.transport = Transport::kTcp;
    rest = std::string_view(text).substr(6);
  } else if (StartsWith(text, "unix://")) {
    a.transport = Transport::kUnix;
    a.path = text.substr(7);
    if (a.path.empty() || a.path[0] != '/' || a.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return InvalidArgumentError("address: bad unix socket path " + QuoteForMessage(a.path));
    }
    return a;
  } else {
    return InvalidArgumentError("address: expected udp://, tcp:// or unix://, got " + QuoteForMessage(text));
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos)
    return InvalidArgumentError("address: no port in " + QuoteForMessage(text));
  a.host = std::string(rest.substr(0, colon));
  a.port = std::string(rest.substr(colon + 1));
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']')
    a.host = a.host.substr(1, a.host.size() - 2);
  return a;
}

class SyslogSink final : public AlertSink {
 public:
  SyslogSink(const config::SinkConfig& cfg, Address address, int facility, std::string hostname,
             size_t max_bytes)
      : AlertSink(cfg.name),
        max_bytes_(max_bytes),
        address_(std::move(address)),
        facility_(facility),
        hostname_(std::move(hostname)),
        timeout_ms_(cfg.timeout_ms) {}
  ~SyslogSink() override { Close(); }
  std::string_view type() const override { return "syslog"; }
  int MaxBatch() const override { return address_.transport == Transport::kUdp ? 64 : 1; }
  void Cancel() override { cancelled_ = true; }

  DeliveryResult Deliver(const DeliveryRequest& req) override {
    std::string msg = Message(req);
    if (fd_.get() >= 0 && Framed() && PeerClosed()) Close();
    if (fd_.get() < 0) {
      if (Status s = Connect(); !s.ok()) return {s};
    }
    Status s = SendAll(Framed() ? internal::OctetCounted(msg) : msg);
    if (!s.ok()) Close();
    return {s};
  }

 private:
  // The RFC 5424 message, its JSON cut to fit max_bytes_.
  std::string Message(const DeliveryRequest& req) const {
    const int64_t pid = ::getpid();
    std::string msg = internal::FormatRfc5424(req.alert, HardenJsonText(req.json), facility_, hostname_, pid);
    if (msg.size() <= max_bytes_) return msg;
    const size_t head = internal::FormatRfc5424(req.alert, "", facility_, hostname_, pid).size();
    const size_t budget = max_bytes_ > head ? max_bytes_ - head : 0;
    return internal::FormatRfc5424(req.alert, internal::FitAlertJson(req.json, budget), facility_, hostname_,
                                   pid);
  }

  bool Framed() const {
    return address_.transport == Transport::kTcp || (address_.transport == Transport::kUnix && stream_);
  }

  void Close() { fd_ = UniqueFd(); }

  // A stream whose peer has closed (or reset) reads as EOF/error without blocking.
  bool PeerClosed() {
    char c;
    ssize_t n = ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    return false;  // it sent us something; syslog receivers do not, but the link is alive
  }

  Status WaitWritable(int fd, std::string_view what) {
    pollfd p{fd, POLLOUT, 0};
    int left = static_cast<int>(timeout_ms_);
    while (true) {
      int step = std::min(left, 100);
      int n = ::poll(&p, 1, step);
      if (n > 0) return Status::Ok();
      if (n < 0 && errno != EINTR) return ErrnoError(errno, what);
      left -= step;
      if (cancelled_) return UnavailableError(std::string(what) + ": cancelled");
      if (left <= 0) return DeadlineExceededError(std::string(what) + ": timed out");
    }
  }

  Status ConnectFd(int fd, const sockaddr* sa, socklen_t len, const std::string& peer) {
    if (::connect(fd, sa, len) == 0) return Status::Ok();
    if (errno != EINPROGRESS) return ErrnoError(errno, "connecting to " + peer);
    RETURN_IF_ERROR(WaitWritable(fd, "connecting to " + peer));
    int err = 0;
    socklen_t elen = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) return ErrnoError(err, "connecting to " + peer);
    return Status::Ok();
  }

  Status Connect() {
    if (address_.transport == Transport::kUnix) {
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::memcpy(sa.sun_path, address_.path.data(), address_.path.size());
      for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (fd.get() < 0) return ErrnoError(errno, "socket");
        Status s = ConnectFd(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa, address_.path);
        if (s.ok()) {
          fd_ = std::move(fd);
          stream_ = type == SOCK_STREAM;
          return s;
        }
        // /dev/log is a datagram socket; a stream listener refuses datagrams with EPROTOTYPE.
        if (type == SOCK_STREAM || s.message().find("Protocol wrong type") == std::string::npos) return s;
      }
      return UnavailableError("connecting to " + address_.path);
    }
    addrinfo hints{};
    hints.ai_socktype = address_.transport == Transport::kUdp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(address_.host.c_str(), address_.port.c_str(), &hints, &res);
    if (rc != 0) return UnavailableError("resolving " + address_.host + ": " + gai_strerror(rc));
    Status last = UnavailableError("no address for " + address_.host);
    const std::string peer = address_.host + ":" + address_.port;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
      if (fd.get() < 0) {
        last = ErrnoError(errno, "socket");
        continue;
      }
      last = ConnectFd(fd.get(), ai->ai_addr, ai->ai_addrlen, peer);
      if (last.ok()) {
        fd_ = std::move(fd);
        break;
      }
    }
    ::freeaddrinfo(res);
    return last;
  }

  Status SendAll(const std::string& data) {
    std::string_view rest = data;
    const std::string peer =
        address_.transport == Transport::kUnix ? address_.path : address_.host + ":" + address_.port;
    while (!rest.empty()) {
      ssize_t n = ::send(fd_.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          RETURN_IF_ERROR(WaitWritable(fd_.get(), "sending to " + peer));
          continue;
        }
        return ErrnoError(errno, "sending to " + peer);
      }
      // A datagram goes whole or not at all.
      if (!Framed()) return Status::Ok();
      rest.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  size_t max_bytes_;
  Address address_;
  int facility_;
  std::string hostname_;
  int64_t timeout_ms_;
  UniqueFd fd_;
  bool stream_ = false;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

Result<std::unique_ptr<AlertSink>> MakeSyslogSink(const config::SinkConfig& cfg, const SinkEnvironment& env) {
  ASSIGN_OR_RETURN(Address address, ParseAddress(cfg.address));
  auto facility = internal::SyslogFacilityCode(cfg.facility);
  if (!facility)
    return InvalidArgumentError("facility: unknown syslog facility " + QuoteForMessage(cfg.facility));
  ASSIGN_OR_RETURN(size_t max_bytes, MaxMessageBytes(cfg, internal::kDefaultSyslogMessageBytes));
  if (address.transport == Transport::kUdp) max_bytes = std::min(max_bytes, internal::kMaxUdpPayload);
  return std::unique_ptr<AlertSink>(
      std::make_unique<SyslogSink>(cfg, std::move(address), *facility, env.hostname, max_bytes));
}

}  // namespace sentinel::alerting::sinks
