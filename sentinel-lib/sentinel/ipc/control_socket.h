// Unix-domain control sockets (SPEC §10, docs/operations.md): a small
// server that procmond and sentinelagent run on their own thread, and the
// client that sentinelcli and the agent use to reach them.
//
// ControlServer::Listen prepares `ipc.socket_dir` (created 0750 when
// missing), refuses to start when a live process already listens on the
// path (connect succeeds: AlreadyExists), replaces a stale socket file left
// by a dead process, binds and sets the socket file to mode 0660. Start()
// then serves on one thread with poll(): at most `max_clients` connections
// (more are answered "server busy" and closed), each peer's uid checked with
// SO_PEERCRED against root, the server's own uid and `allowed_uids` (others
// get an error frame and are closed), a deadline per request (a client that
// sends nothing or half a frame is closed when it passes), frames decoded
// with FrameDecoder. A bad frame is answered with an error frame naming the
// problem, then the connection is closed; a bad request (bad JSON, unknown
// command) gets an error reply and the connection stays usable.
//
// Subscriptions (docs/realtime.md "Wake-up"): when `subscribe_command` is
// set, a client that sends it gets {"subscribed": true} and stays connected:
// from then on it receives every frame given to Publish() (from any thread;
// it wakes the server thread) and is exempt from the request deadline. The
// peer was uid-checked at accept like every client. A subscriber that does
// not read is not waited for: a notice that would grow its unsent backlog
// beyond kMaxSubscriberBacklog is dropped for it (notices are wake-ups; the
// subscriber reads the state itself).
//
// Handlers run on the server thread, one at a time: they must be quick and
// thread-safe with respect to the daemon's own threads (they typically read
// atomics or snapshots and wake the main loop).
//
// Thread-safety: Listen/Start/Stop from one owning thread; stats() from any.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/files.h"
#include "sentinel/base/status.h"
#include "sentinel/ipc/frame.h"
#include "sentinel/ipc/handlers.h"

namespace sentinel::ipc {

inline constexpr const char* kProcmondSocket = "procmond.sock";
inline constexpr const char* kAgentSocket = "agent.sock";
// procmond.sock's subscription: an "events_written" notice after each committed event batch.
inline constexpr const char* kSubscribeEvents = "subscribe_events";

// socket_dir + "/" + name.
std::string SocketPath(const std::string& socket_dir, const std::string& name);

struct ServerOptions {
  std::string socket_dir;
  std::string socket_name;       // kProcmondSocket / kAgentSocket
  std::set<uid_t> allowed_uids;  // besides root and getuid()
  size_t max_clients = 16;
  int64_t request_timeout_ms = 2000;  // to receive a whole request / send a reply
  std::string component;              // for logs ("procmond")
  std::string subscribe_command;      // e.g. "subscribe_events"; "" = no subscriptions
};

// Unsent bytes a subscriber may have queued before further notices are dropped for it.
inline constexpr size_t kMaxSubscriberBacklog = 64 * 1024;

struct ServerStats {
  uint64_t accepted = 0;
  uint64_t requests = 0;
  uint64_t refused_peers = 0;  // wrong uid
  uint64_t busy = 0;           // refused: max_clients reached
  uint64_t bad_frames = 0;     // bad magic/version/length, truncated
  uint64_t bad_requests = 0;   // bad JSON, unknown command
  uint64_t timeouts = 0;
  uint64_t published = 0;    // Publish() calls
  uint64_t subscribers = 0;  // subscribed connections now
};

class ControlServer {
 public:
  // Prepares the directory and binds the socket (see the file comment).
  // Errors: AlreadyExists (a live instance listens), FailedPrecondition (the
  // path exists and is not a socket), InvalidArgument (path too long),
  // PermissionDenied / Unavailable for the system calls, with the path.
  static Result<std::unique_ptr<ControlServer>> Listen(ServerOptions options,
                                                       std::map<std::string, Handler> handlers);
  ~ControlServer();  // Stop()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Starts the serving thread. Call once.
  Status Start();
  // Stops the thread, closes every connection and removes the socket file
  // (when it is still ours). Idempotent.
  void Stop();

  // Thread-safe: sends `notice` (one JSON object) to every subscriber, from
  // the server thread, which this call wakes. Never blocks on a client.
  void Publish(const nlohmann::json& notice);

  const std::string& path() const { return path_; }
  ServerStats stats() const;
  // Whether the directory was created by Listen (the caller may chown it).
  bool created_dir() const { return created_dir_; }

 private:
  ControlServer(ServerOptions options, std::map<std::string, Handler> handlers);
  void Serve();
  struct Client;
  using Clients = std::vector<std::unique_ptr<Client>>;
  // One poll() over the wake fd, the listening socket and every client.
  int PollClients(const Clients& clients, std::vector<pollfd>* fds);
  void ServeClient(Client& c, short revents, int64_t now);
  void AcceptClients(Clients& clients);
  void HandleReadable(Client& c);
  int64_t NextDeadline(const Client& c) const;
  void Dispatch(Client& c, const std::string& payload);
  void QueueReply(Client& c, const nlohmann::json& reply);
  // The wake fd fired: hands the published notices to the subscribers.
  void DeliverPublished(Clients& clients);

  ServerOptions options_;
  std::map<std::string, Handler> handlers_;
  std::string path_;
  bool created_dir_ = false;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() and Publish() wake poll()
  std::mutex publish_mu_;
  std::vector<std::string> published_;  // encoded frames not yet handed to subscribers
  ino_t inode_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  struct AtomicStats {
    std::atomic<uint64_t> accepted{0}, requests{0}, refused_peers{0}, busy{0}, bad_frames{0}, bad_requests{0},
        timeouts{0}, published{0}, subscribers{0};
  } stats_;
};

// Sends one request ({"cmd": cmd, "id": 1}) to the socket at `path` and
// returns the reply object (check "ok"). Errors: Unavailable (no socket or
// nobody listening), PermissionDenied (cannot connect), DeadlineExceeded
// (no whole reply within timeout_ms), DataLoss (malformed reply).
Result<nlohmann::json> Call(const std::string& path, const std::string& cmd, int64_t timeout_ms);
// The same with an "args" object.
Result<nlohmann::json> Call(const std::string& path, const std::string& cmd, const nlohmann::json& args,
                            int64_t timeout_ms);

// Sends `raw` bytes as they are and reads one reply frame (tests and
// tooling). `half_close` shuts down the writing side after sending. Errors as
// Call; Unavailable "connection closed" when the server closed without a reply.
Result<nlohmann::json> CallRaw(const std::string& path, const std::string& raw, int64_t timeout_ms,
                               bool half_close = false);

// The client side of a subscription: connected, subscribed (the server's
// acknowledgement read), then poll fd() for POLLIN and call Read().
// Thread-compatible: one thread drives it.
class Subscription {
 public:
  // Errors as Call, plus FailedPrecondition when the server refused the
  // command (its error message).
  static Result<std::unique_ptr<Subscription>> Open(const std::string& path, const std::string& command,
                                                    int64_t timeout_ms);
  int fd() const { return fd_.get(); }
  // The notices that have arrived (none when nothing is there yet; it does
  // not block). Unavailable once the server closed the connection, DataLoss
  // on a malformed frame: reconnect.
  Result<std::vector<nlohmann::json>> Read();

 private:
  explicit Subscription(int fd) : fd_(fd) {}
  UniqueFd fd_;
  FrameDecoder decoder_;
};

}  // namespace sentinel::ipc
