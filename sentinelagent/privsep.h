// Privilege separation of sentinelagent (issue 14, item 7; docs/decisions.md #18).
//
// Started as root, the agent never keeps root: before it creates a thread or
// opens a store it
//   1. (when it supervises procmond) forks the launcher, a tiny process that
//      stays root and can only start procmond — a program, arguments and
//      environment fixed here, at start-up — report its exits and relay
//      SIGTERM, SIGKILL or SIGHUP to it, over a socketpair. It exits when the
//      agent goes (EOF on the socket, PR_SET_PDEATHSIG), stopping procmond
//      on its way out;
//   2. creates the data, ledger and socket directories that do not exist yet
//      and hands them to privileges.user;
//   3. drops to privileges.user for good: supplementary groups, gid and uid,
//      every capability set (bounding and ambient included) emptied,
//      PR_SET_NO_NEW_PRIVS, and checks that root cannot come back.
// Everything else (configuration reloads, rules, stores, sinks, sockets)
// runs unprivileged. Started as any other user the agent changes nothing and
// spawns procmond itself (sentinelagent/supervisor.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/base/files.h"
#include "sentinel/base/status.h"

namespace sentinel::agent {

struct ServiceUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Looks up privileges.user. NotFound when it does not exist, InvalidArgument
// when it is uid 0 (another name for root); both are configuration errors.
Result<ServiceUser> LookupServiceUser(const std::string& name);

// Creates each directory of `dirs` that does not exist (with its missing
// parents), mode 0750, and gives the ones it created to `user`. It walks from
// / on descriptors (mkdirat, openat with O_NOFOLLOW, fchown), following a
// symbolic link only when root owns it; a link anyone else owns is refused
// (PermissionDenied, naming it). Existing directories are left as they are.
// For root, before DropToUser.
Status PrepareDirectories(const std::vector<std::string>& dirs, const ServiceUser& user);

// Switches the whole (single-threaded) process to `user` with no capability
// at all and PR_SET_NO_NEW_PRIVS, then verifies it: uid/gid, empty
// capability sets, and that setresuid(0) fails. An error means the process
// must exit.
Status DropToUser(const ServiceUser& user);

// What the launcher runs: fixed when it is forked, never sent over the socket.
struct LaunchSpec {
  std::string program;            // absolute path of procmond
  std::vector<std::string> args;  // argv[1..]
};

// The agent's handle on the root launcher. Not thread-safe (the supervisor
// drives it from the main thread).
class Launcher {
 public:
  struct Exit {
    pid_t pid = -1;
    int status = 0;  // as from waitpid
  };

  // Forks the launcher. Call as root, before any thread exists and before
  // the agent opens anything it must not share (the launcher closes every
  // inherited descriptor but stdin/stdout/stderr).
  static Result<std::unique_ptr<Launcher>> Fork(LaunchSpec spec);
  ~Launcher();  // closes the socket (the launcher stops procmond and exits) and reaps it
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  pid_t pid() const { return pid_; }

  // Asks for procmond; its pid, or why it could not start.
  Result<pid_t> Start();
  // Relays SIGTERM, SIGKILL or SIGHUP to the running procmond (no-op when none).
  Status Signal(int sig);
  // An exit of procmond reported by the launcher, waiting up to timeout_ms
  // (0: only what has arrived). Unavailable when the launcher is gone.
  Result<std::optional<Exit>> NextExit(int timeout_ms);

 private:
  // One request or reply on the socket (SOCK_SEQPACKET: one message each).
  struct Message {
    int32_t op = 0;
    int32_t pid = 0;
    int32_t value = 0;
  };
  Launcher(pid_t pid, UniqueFd fd) : pid_(pid), fd_(std::move(fd)) {}
  Status Send(const Message& m);
  // Reads one reply, waiting up to timeout_ms; nullopt on timeout.
  Result<std::optional<Message>> Read(int timeout_ms);

  pid_t pid_ = -1;
  UniqueFd fd_;
  bool lost_ = false;
  std::deque<Exit> exits_;
};

}  // namespace sentinel::agent
