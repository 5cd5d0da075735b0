// Supervision of procmond (SPEC §1): spawn it, notice when it exits, restart
// it with exponential backoff (1 s doubling to 60 s; reset after it has run
// for 5 minutes), and stop it with SIGTERM (then SIGKILL after a grace
// period) when the agent stops. Only the child it started is ever signalled.
//
// Started as root, the agent runs unprivileged and procmond is started by the
// root launcher (sentinelagent/privsep.h): the supervisor then asks the
// launcher instead of forking, and keeps its backoff and restart logic.
//
// Driven by one thread through Poll(); not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sentinel::agent {

// Set in procmond's environment to its parent's pid (the agent, or the
// launcher when the agent started as root): procmond re-arms
// PR_SET_PDEATHSIG after dropping privileges and exits if that process is
// no longer its parent.
inline constexpr const char* kSupervisorPidEnv = "SENTINELD_SUPERVISOR_PID";

class Launcher;

class Supervisor {
 public:
  // `launcher` (not owned, outlives the supervisor): start procmond through
  // it; null: fork it directly.
  Supervisor(std::string program, std::vector<std::string> args, Launcher* launcher = nullptr);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the child if it is not running and its backoff has passed; reaps
  // it if it exited. Call about once a second.
  void Poll(int64_t now_ms);

  // SIGTERM, wait up to grace_ms, then SIGKILL. Returns the exit status seen.
  void Stop(int64_t grace_ms);

  // Sends `sig` (SIGHUP, SIGTERM, SIGKILL) to the running procmond.
  void Signal(int sig);

  // The launcher is gone: procmond can no longer be started or signalled.
  bool launcher_lost() const { return launcher_lost_; }

  pid_t pid() const { return pid_; }
  int64_t restarts() const { return restarts_; }

 private:
  void Start(int64_t now_ms);
  void StartThroughLauncher(int64_t now_ms);
  void Started(pid_t child, int64_t now_ms);
  // Whether procmond exited (its wait status in *status); waits up to wait_ms.
  bool Exited(int* status, int64_t wait_ms);

  std::string program_;
  std::vector<std::string> args_;
  pid_t pid_ = -1;
  int64_t started_ms_ = 0;
  int64_t next_start_ms_ = 0;
  int64_t backoff_ms_ = 1000;
  int64_t restarts_ = 0;
  bool ever_started_ = false;
  Launcher* launcher_ = nullptr;
  bool launcher_lost_ = false;
};

// Waits up to timeout_ms for the process `pid` (a child, not yet reaped) to
// exit, woken by the exit itself (pidfd); true when it has exited. Does not
// reap it.
bool WaitForProcessExit(pid_t pid, int64_t timeout_ms);

// procmond beside this executable (build tree) or in ../sbin (installed).
std::string FindProcmond();

}  // namespace sentinel::agent
