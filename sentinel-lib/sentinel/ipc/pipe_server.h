// The control channel on Windows (SPEC §15): the frames and requests of
// control_socket.h (frame.h, handlers.h) over a named pipe,
// \\.\pipe\<name> (procmond: "sentineld-procmond").
//
// Listen() creates the pipe's one instance with FILE_FLAG_FIRST_PIPE_INSTANCE:
// when another process already serves (or squats) the name, Listen fails
// with AlreadyExists instead of sharing it. The instance is kept for the
// server's life (disconnected and reconnected between clients), so the name
// is never free for someone else to take. Remote clients are rejected
// (PIPE_REJECT_REMOTE_CLIENTS), and the pipe's DACL grants access to
// LocalSystem, the Administrators group and the server's own user only.
//
// Start() serves on one thread, one client at a time (a second client gets
// ERROR_PIPE_BUSY and may WaitNamedPipe): each client's token is checked,
// through ImpersonateNamedPipeClient (or, where impersonation is not
// available, the client process's token): LocalSystem, a member of
// Administrators, the server's own user or a SID in allowed_sids may talk;
// anyone else gets an error frame naming their SID and is disconnected. Each
// request must arrive whole within request_timeout_ms, else the client is
// disconnected. A bad frame is answered with an error frame and the client
// disconnected (once it has closed its end, or request_timeout_ms passed:
// disconnecting at once would discard the unread answer); a bad request (JSON, unknown command) gets an error
// reply and the connection stays usable — as on Linux.
//
// Thread-safety: Listen/Start/Stop from one owning thread; stats() from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/ipc/frame.h"
#include "sentinel/ipc/handlers.h"

namespace sentinel::ipc {

inline constexpr const char* kProcmondPipe = "sentineld-procmond";

// "\\.\pipe\" + name.
std::string PipePath(const std::string& name);

struct PipeServerOptions {
  std::string pipe_name;  // kProcmondPipe
  std::vector<std::string>
      allowed_sids;                   // besides SYSTEM, Administrators and the server's user ("S-1-5-...")
  int64_t request_timeout_ms = 2000;  // to receive a whole request / send a reply
  std::string component;              // for logs ("procmond")
};

struct PipeServerStats {
  uint64_t accepted = 0;
  uint64_t requests = 0;
  uint64_t refused_peers = 0;  // token not allowed
  uint64_t bad_frames = 0;
  uint64_t bad_requests = 0;
  uint64_t timeouts = 0;
};

class PipeServer {
 public:
  // Creates the pipe (see the file comment). Errors: AlreadyExists (another
  // process holds the name), InvalidArgument (a bad name or SID), or the
  // Windows error of the call that failed.
  static Result<std::unique_ptr<PipeServer>> Listen(PipeServerOptions options, Handlers handlers);
  ~PipeServer();  // Stop()
  PipeServer(const PipeServer&) = delete;
  PipeServer& operator=(const PipeServer&) = delete;

  Status Start();  // the serving thread; once
  void Stop();     // stops the thread and closes the pipe; idempotent

  const std::string& path() const { return path_; }
  PipeServerStats stats() const;

 private:
  struct Impl;
  PipeServer(PipeServerOptions options, Handlers handlers);
  void Serve();
  void ServeClient();
  // Why the connected client may not talk (its token checked); nullopt when it may.
  std::optional<std::string> RefusedClient();
  // The reply frame to one request payload.
  std::string Reply(const std::string& payload);

  PipeServerOptions options_;
  Handlers handlers_;
  std::string path_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int64_t client_pid_ = -1;  // the connected client's (server thread only)
  std::atomic<uint64_t> accepted_{0}, requests_{0}, refused_{0}, bad_frames_{0}, bad_requests_{0},
      timeouts_{0};
};

}  // namespace sentinel::ipc
