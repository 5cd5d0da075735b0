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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/ipc/frame.h"

namespace sentinel::ipc {

inline constexpr const char* kProcmondSocket = "procmond.sock";
inline constexpr const char* kAgentSocket = "agent.sock";

// socket_dir + "/" + name.
std::string SocketPath(const std::string& socket_dir, const std::string& name);

// A command handler: the request in, the "result" object out, or an error
// (sent as {"ok": false, "error": message}).
using Handler = std::function<Result<nlohmann::json>(const Request&)>;

struct ServerOptions {
  std::string socket_dir;
  std::string socket_name;       // kProcmondSocket / kAgentSocket
  std::set<uid_t> allowed_uids;  // besides root and getuid()
  size_t max_clients = 16;
  int64_t request_timeout_ms = 2000;  // to receive a whole request / send a reply
  std::string component;              // for logs ("procmond")
};

struct ServerStats {
  uint64_t accepted = 0;
  uint64_t requests = 0;
  uint64_t refused_peers = 0;  // wrong uid
  uint64_t busy = 0;           // refused: max_clients reached
  uint64_t bad_frames = 0;     // bad magic/version/length, truncated
  uint64_t bad_requests = 0;   // bad JSON, unknown command
  uint64_t timeouts = 0;
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
  void Dispatch(Client& c, const std::string& payload);
  void QueueReply(Client& c, const nlohmann::json& reply);

  ServerOptions options_;
  std::map<std::string, Handler> handlers_;
  std::string path_;
  bool created_dir_ = false;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes poll()
  ino_t inode_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  struct AtomicStats {
    std::atomic<uint64_t> accepted{0}, requests{0}, refused_peers{0}, busy{0}, bad_frames{0}, bad_requests{0},
        timeouts{0};
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

}  // namespace sentinel::ipc
