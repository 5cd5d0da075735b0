#include "sentinel/ipc/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "sentinel/base/files.h"
#include "sentinel/base/time.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::ipc {

namespace {

Result<sockaddr_un> MakeAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgumentError("control socket path \"" + path + "\" is empty or longer than " +
                                std::to_string(sizeof(addr.sun_path) - 1) + " bytes (ipc.socket_dir)");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Connects a non-blocking socket to `path`, waiting up to timeout_ms.
Result<int> ConnectUnix(const std::string& path, int64_t timeout_ms) {
  ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return ErrnoError(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    if (err == EINPROGRESS || err == EAGAIN) {
      // A Unix socket whose backlog is full: wait for it to accept.
      pollfd p{fd.get(), POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout_ms)) <= 0) {
        return DeadlineExceededError("connecting to " + path + ": no answer within " +
                                     std::to_string(timeout_ms) + " ms");
      }
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
      if (soerr != 0) return UnavailableError("connecting to " + path + ": " + std::strerror(soerr));
    } else if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR) {
      return UnavailableError("connecting to " + path + ": " + std::strerror(err) + " (not running?)");
    } else if (err == EACCES || err == EPERM) {
      return PermissionDeniedError("connecting to " + path + ": " + std::strerror(err));
    } else {
      return UnavailableError("connecting to " + path + ": " + std::strerror(err));
    }
  }
  return fd.release();
}

Status WriteAll(int fd, std::string_view data, int64_t deadline_ms, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int64_t left = deadline_ms - MonotonicMs();
      if (left <= 0) return DeadlineExceededError("sending to " + what + ": timed out");
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(left));
      continue;
    }
    return UnavailableError("sending to " + what + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// Feeds one chunk of a reply to `dec`: the reply once a whole frame is in,
// nullopt while more is needed.
std::optional<Result<nlohmann::json>> DecodeReply(FrameDecoder& dec, std::string_view data,
                                                  const std::string& what) {
  size_t used = 0;
  auto st = dec.Feed(data, &used);
  if (st == FrameDecoder::State::kError) return DataLossError("reply from " + what + ": " + dec.error());
  if (st != FrameDecoder::State::kFrame) return std::nullopt;
  auto j = nlohmann::json::parse(dec.TakePayload(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return DataLossError("reply from " + what + " is not a JSON object");
  return Result<nlohmann::json>(std::move(j));
}

Result<nlohmann::json> ReadReply(int fd, int64_t deadline_ms, const std::string& what) {
  FrameDecoder dec;
  char buf[4096];
  while (true) {
    const int64_t left = deadline_ms - MonotonicMs();
    if (left <= 0) return DeadlineExceededError("waiting for a reply from " + what + ": timed out");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;  // EINTR or nothing yet: re-check the deadline
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return UnavailableError("reading from " + what + ": " + std::strerror(errno));
    if (n == 0) {
      return UnavailableError("reading from " + what + ": connection closed" +
                              (dec.mid_frame() ? " in the middle of a frame" : " without a reply"));
    }
    if (auto reply = DecodeReply(dec, std::string_view(buf, static_cast<size_t>(n)), what)) return *reply;
  }
}

// Makes sure the socket directory exists and is a real directory (created
// 0750 when missing); returns whether it was created.
Result<bool> PrepareSocketDir(const std::string& dir) {
  // The socket directory may belong to the service user, who can then swap
  // any name in it: nothing here follows a link, and the mode and owner of
  // what is created are set through descriptors (base/files.h).
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) return RefusedPathError(dir, "ipc.socket_dir is a symbolic link");
    if (!S_ISDIR(st.st_mode)) return FailedPreconditionError("ipc.socket_dir " + dir + " is not a directory");
    return false;
  }
  if (errno != ENOENT) return ErrnoError(errno, "ipc.socket_dir " + dir);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    return ErrnoError(errno, "creating ipc.socket_dir " + dir);
  RETURN_IF_ERROR(ChmodNoFollow(dir, S_IFDIR, 0750));  // whatever the umask
  return true;
}

// Whatever is at `path` before binding: nothing, or a stale socket of a dead
// process (removed). Refuses a link, a non-socket, and a socket someone
// still listens on.
Status ClearStaleSocket(const std::string& path, const std::string& component) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();
  if (S_ISLNK(st.st_mode)) return RefusedPathError(path, "it is a symbolic link");
  if (!S_ISSOCK(st.st_mode)) {
    return FailedPreconditionError(path + " exists and is not a socket; remove it or change ipc.socket_dir");
  }
  auto probe = ConnectUnix(path, 500);
  if (probe.ok()) {
    ::close(*probe);
    return AlreadyExistsError("another " + component + " is already listening on " + path);
  }
  if (probe.status().code() == StatusCode::kDeadlineExceeded) {
    return AlreadyExistsError("another " + component + " holds " + path + " (connect did not complete)");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoError(errno, "removing stale socket " + path);
  telemetry::LogInfo("removed a stale control socket", {{"path", path}});
  return Status::Ok();
}

// A listening socket bound at `path`, mode 0660.
Result<UniqueFd> BindAndListen(const std::string& path, const sockaddr_un& addr,
                               const std::string& component) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return ErrnoError(errno, "socket");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    if (err == EADDRINUSE) return AlreadyExistsError("another " + component + " took " + path + " just now");
    return ErrnoError(err, "binding " + path);
  }
  // bind() never follows a link, but the name can be swapped right after;
  // the mode is set on what the name holds only if it is a lone socket.
  if (Status st_mode = ChmodNoFollow(path, S_IFSOCK, 0660); !st_mode.ok()) {
    if (IsRefusedPath(st_mode)) return st_mode;  // not ours any more: left alone
    ::unlink(path.c_str());
    return st_mode.WithContext("chmod 0660");
  }
  if (::listen(fd.get(), 16) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return ErrnoError(err, "listen on " + path);
  }
  return fd;
}

// Sends a refusal (best effort) and closes the connection.
void Refuse(int fd, const std::string& why) {
  auto frame = EncodeJsonFrame(MakeError(nullptr, why));
  if (frame.ok()) ::send(fd, frame->data(), frame->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

}  // namespace

std::string SocketPath(const std::string& socket_dir, const std::string& name) {
  if (!socket_dir.empty() && socket_dir.back() == '/') return socket_dir + name;
  return socket_dir + "/" + name;
}

struct ControlServer::Client {
  int fd = -1;
  uid_t uid = 0;
  pid_t pid = 0;
  FrameDecoder decoder;
  std::string out;           // bytes still to send
  bool close_after = false;  // close once `out` is sent
  int64_t deadline_ms = 0;
  bool subscribed = false;  // receives Publish()ed notices; no deadline
};

ControlServer::ControlServer(ServerOptions options, std::map<std::string, Handler> handlers)
    : options_(std::move(options)), handlers_(std::move(handlers)) {}

ControlServer::~ControlServer() {
  Stop();
}

Result<std::unique_ptr<ControlServer>> ControlServer::Listen(ServerOptions options,
                                                             std::map<std::string, Handler> handlers) {
  std::unique_ptr<ControlServer> s(new ControlServer(std::move(options), std::move(handlers)));
  const std::string& dir = s->options_.socket_dir;
  if (dir.empty()) return InvalidArgumentError("ipc.socket_dir is empty");
  s->path_ = SocketPath(dir, s->options_.socket_name);
  ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddress(s->path_));
  ASSIGN_OR_RETURN(s->created_dir_, PrepareSocketDir(dir));
  RETURN_IF_ERROR(ClearStaleSocket(s->path_, s->options_.component));
  ASSIGN_OR_RETURN(UniqueFd fd, BindAndListen(s->path_, addr, s->options_.component));
  struct stat st {};
  if (::lstat(s->path_.c_str(), &st) == 0) s->inode_ = st.st_ino;
  s->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd_ < 0) {
    const int err = errno;
    ::unlink(s->path_.c_str());
    return ErrnoError(err, "eventfd");
  }
  s->listen_fd_ = fd.release();
  return s;
}

Status ControlServer::Start() {
  if (listen_fd_ < 0) return FailedPreconditionError("control server is not listening");
  if (thread_.joinable()) return FailedPreconditionError("control server already started");
  thread_ = std::thread([this] { Serve(); });
  return Status::Ok();
}

void ControlServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (listen_fd_ >= 0) {
    // Remove the file only if it is still the one we bound (a successor may
    // have replaced it).
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  std::lock_guard<std::mutex> lock(publish_mu_);
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
}

ServerStats ControlServer::stats() const {
  ServerStats s;
  s.accepted = stats_.accepted.load();
  s.requests = stats_.requests.load();
  s.refused_peers = stats_.refused_peers.load();
  s.busy = stats_.busy.load();
  s.bad_frames = stats_.bad_frames.load();
  s.bad_requests = stats_.bad_requests.load();
  s.timeouts = stats_.timeouts.load();
  s.published = stats_.published.load();
  s.subscribers = stats_.subscribers.load();
  return s;
}

void ControlServer::Publish(const nlohmann::json& notice) {
  auto frame = EncodeJsonFrame(notice);
  if (!frame.ok()) return;
  stats_.published++;
  {
    std::lock_guard<std::mutex> lock(publish_mu_);
    // Bounded while the server thread is not serving (before Start, stuck
    // client I/O never blocks it, but be safe): the oldest go first.
    if (published_.size() >= 256) published_.erase(published_.begin());
    published_.push_back(std::move(*frame));
    // Under the lock: Stop() closes the descriptor under it too.
    uint64_t one = 1;
    if (wake_fd_ >= 0) [[maybe_unused]]
      ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
}

void ControlServer::DeliverPublished(Clients& clients) {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof(count));
  std::vector<std::string> frames;
  {
    std::lock_guard<std::mutex> lock(publish_mu_);
    frames.swap(published_);
  }
  for (auto& c : clients) {
    if (!c->subscribed || c->close_after) continue;
    for (const auto& f : frames) {
      if (c->out.size() + f.size() > kMaxSubscriberBacklog) break;  // a wake-up it will get later
      c->out += f;
    }
  }
}

void ControlServer::QueueReply(Client& c, const nlohmann::json& reply) {
  auto frame = EncodeJsonFrame(reply);
  if (!frame.ok()) {
    frame = EncodeJsonFrame(MakeError(reply.value("id", nlohmann::json()), "reply too large"));
  }
  if (frame.ok()) c.out += *frame;
}

void ControlServer::Dispatch(Client& c, const std::string& payload) {
  stats_.requests++;
  auto req = ParseRequest(payload);
  if (!req.ok()) {
    stats_.bad_requests++;
    QueueReply(c, MakeError(nullptr, "bad request: " + req.status().message()));
    return;
  }
  req->peer_uid = static_cast<int64_t>(c.uid);
  req->peer_pid = static_cast<int64_t>(c.pid);
  if (!options_.subscribe_command.empty() && req->cmd == options_.subscribe_command) {
    c.subscribed = true;
    QueueReply(c, MakeReply(req->id, {{"subscribed", true}}));
    return;
  }
  bool unknown = false;
  QueueReply(c, Answer(handlers_, *req, &unknown));
  if (unknown) stats_.bad_requests++;
}

// A subscriber waits for notices as long as it likes; others get a request deadline.
int64_t ControlServer::NextDeadline(const Client& c) const {
  return c.subscribed ? INT64_MAX : MonotonicMs() + options_.request_timeout_ms;
}

void ControlServer::HandleReadable(Client& c) {
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      if (c.decoder.mid_frame()) {
        stats_.bad_frames++;
        telemetry::LogWarn("control client closed in the middle of a frame (truncated frame)",
                           {{"socket", path_}, {"uid", c.uid}});
      }
      c.close_after = true;
      c.out.clear();  // nobody to send it to
      return;
    }
    std::string_view data(buf, static_cast<size_t>(n));
    while (!data.empty() && !c.close_after) {
      size_t used = 0;
      auto st = c.decoder.Feed(data, &used);
      data.remove_prefix(used);
      if (st == FrameDecoder::State::kError) {
        stats_.bad_frames++;
        telemetry::LogWarn("bad control frame",
                           {{"socket", path_}, {"uid", c.uid}, {"error", c.decoder.error()}});
        QueueReply(c, MakeError(nullptr, "bad frame: " + c.decoder.error()));
        c.close_after = true;
        return;
      }
      if (st == FrameDecoder::State::kFrame) {
        Dispatch(c, c.decoder.TakePayload());
        c.deadline_ms = NextDeadline(c);
      } else {
        break;
      }
    }
    if (c.close_after) return;
  }
}

namespace {

void CloseClientFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

}  // namespace

int ControlServer::PollClients(const Clients& clients, std::vector<pollfd>* fds) {
  fds->clear();
  fds->push_back({wake_fd_, POLLIN, 0});
  fds->push_back({listen_fd_, POLLIN, 0});
  const int64_t now = MonotonicMs();
  int64_t next_deadline = now + 1000;
  for (const auto& c : clients) {
    short ev = c->out.empty() ? POLLIN : POLLOUT;
    if (c->close_after && c->out.empty()) ev = 0;
    fds->push_back({c->fd, ev, 0});
    next_deadline = std::min(next_deadline, c->deadline_ms);
  }
  const int timeout = static_cast<int>(std::clamp<int64_t>(next_deadline - now, 0, 1000));
  return ::poll(fds->data(), fds->size(), timeout);
}

void ControlServer::ServeClient(Client& c, short revents, int64_t now) {
  if (revents & (POLLERR | POLLNVAL)) return CloseClientFd(&c.fd);
  if (revents & POLLOUT) {
    ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return CloseClientFd(&c.fd);
    }
  } else if (revents & (POLLIN | POLLHUP)) {
    HandleReadable(c);
  }
  if (c.close_after && c.out.empty()) return CloseClientFd(&c.fd);
  if (now >= c.deadline_ms) {
    // Idle between requests or stuck mid-request: either way, free the slot.
    stats_.timeouts++;
    if (c.decoder.mid_frame() || !c.out.empty()) {
      telemetry::LogWarn("control client timed out", {{"socket", path_}, {"uid", c.uid}});
    }
    CloseClientFd(&c.fd);
  }
}

void ControlServer::AcceptClients(Clients& clients) {
  while (true) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    stats_.accepted++;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      ::close(fd);
      continue;
    }
    const bool allowed = cred.uid == 0 || cred.uid == ::getuid() || options_.allowed_uids.count(cred.uid) > 0;
    if (!allowed) {
      stats_.refused_peers++;
      telemetry::LogWarn("control connection refused: peer uid not allowed",
                         {{"socket", path_}, {"uid", cred.uid}, {"pid", cred.pid}});
      Refuse(fd, "permission denied: uid " + std::to_string(cred.uid) + " may not use " + path_);
      continue;
    }
    if (clients.size() >= options_.max_clients) {
      stats_.busy++;
      Refuse(fd, "server busy: " + std::to_string(options_.max_clients) + " clients connected; try again");
      continue;
    }
    auto c = std::make_unique<Client>();
    c->fd = fd;
    c->uid = cred.uid;
    c->pid = cred.pid;
    c->deadline_ms = MonotonicMs() + options_.request_timeout_ms;
    clients.push_back(std::move(c));
  }
}

void ControlServer::Serve() {
  Clients clients;
  std::vector<pollfd> fds;
  while (!stopping_.load()) {
    const int pr = PollClients(clients, &fds);
    if (pr < 0 && errno != EINTR) {
      telemetry::LogError("control socket poll failed", {{"socket", path_}, {"error", std::strerror(errno)}});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (stopping_.load()) break;
    const int64_t now = MonotonicMs();
    // Clients first (indices match `clients`), then new connections.
    for (size_t i = 0; i < clients.size(); ++i)
      ServeClient(*clients[i], pr > 0 ? fds[i + 2].revents : 0, now);
    std::erase_if(clients, [](const std::unique_ptr<Client>& c) { return c->fd < 0; });
    stats_.subscribers = static_cast<uint64_t>(
        std::count_if(clients.begin(), clients.end(), [](const auto& c) { return c->subscribed; }));
    if (pr > 0 && (fds[0].revents & POLLIN)) DeliverPublished(clients);
    if (pr > 0 && (fds[1].revents & POLLIN)) AcceptClients(clients);
  }
  for (auto& c : clients) CloseClientFd(&c->fd);
}

Result<nlohmann::json> CallRaw(const std::string& path, const std::string& raw, int64_t timeout_ms,
                               bool half_close) {
  const int64_t deadline = MonotonicMs() + timeout_ms;
  ASSIGN_OR_RETURN(int raw_fd, ConnectUnix(path, timeout_ms));
  UniqueFd fd(raw_fd);
  // A refusal (wrong uid, busy) may already be waiting; sending into a
  // closed connection then fails, so read what is there first.
  Status sent = WriteAll(fd.get(), raw, deadline, path);
  if (half_close) ::shutdown(fd.get(), SHUT_WR);
  auto reply = ReadReply(fd.get(), deadline, path);
  if (!reply.ok() && !sent.ok()) return sent;
  return reply;
}

Result<std::unique_ptr<Subscription>> Subscription::Open(const std::string& path, const std::string& command,
                                                         int64_t timeout_ms) {
  const int64_t deadline = MonotonicMs() + timeout_ms;
  ASSIGN_OR_RETURN(std::string frame, EncodeJsonFrame({{"cmd", command}, {"id", 1}}));
  ASSIGN_OR_RETURN(int raw_fd, ConnectUnix(path, timeout_ms));
  std::unique_ptr<Subscription> sub(new Subscription(raw_fd));
  Status sent = WriteAll(sub->fd(), frame, deadline, path);
  // Only the acknowledgement is read here: byte by byte, so no notice that
  // follows it is consumed (they are Read() later).
  while (true) {
    const int64_t left = deadline - MonotonicMs();
    if (left <= 0) return DeadlineExceededError("subscribing to " + path + ": no acknowledgement in time");
    pollfd p{sub->fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char byte = 0;
    const ssize_t n = ::recv(sub->fd(), &byte, 1, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      if (!sent.ok()) return sent;
      return UnavailableError("subscribing to " + path + ": connection closed without a reply");
    }
    auto reply = DecodeReply(sub->decoder_, std::string_view(&byte, 1), path);
    if (!reply) continue;
    if (!reply->ok()) return reply->status();
    if (!(**reply).value("ok", false)) {
      return FailedPreconditionError("subscribing to " + path + ": " + (**reply).value("error", "refused"));
    }
    return sub;
  }
}

Result<std::vector<nlohmann::json>> Subscription::Read() {
  std::vector<nlohmann::json> out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return out;
    if (n < 0) return UnavailableError(std::string("subscription: ") + std::strerror(errno));
    if (n == 0) return UnavailableError("subscription: the server closed the connection");
    std::string_view data(buf, static_cast<size_t>(n));
    while (!data.empty()) {
      size_t used = 0;
      const auto st = decoder_.Feed(data, &used);
      data.remove_prefix(used);
      if (st == FrameDecoder::State::kError) return DataLossError("subscription: " + decoder_.error());
      if (st != FrameDecoder::State::kFrame) break;
      auto j = nlohmann::json::parse(decoder_.TakePayload(), nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return DataLossError("subscription: a notice is not a JSON object");
      out.push_back(std::move(j));
    }
  }
}

Result<nlohmann::json> Call(const std::string& path, const std::string& cmd, int64_t timeout_ms) {
  ASSIGN_OR_RETURN(std::string frame, EncodeJsonFrame({{"cmd", cmd}, {"id", 1}}));
  return CallRaw(path, frame, timeout_ms);
}

Result<nlohmann::json> Call(const std::string& path, const std::string& cmd, const nlohmann::json& args,
                            int64_t timeout_ms) {
  ASSIGN_OR_RETURN(std::string frame, EncodeJsonFrame({{"cmd", cmd}, {"id", 1}, {"args", args}}));
  return CallRaw(path, frame, timeout_ms);
}

}  // namespace sentinel::ipc
