#include "sentinelagent/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "sentinel/base/files.h"
#include "sentinel/base/time.h"
#include "sentinel/telemetry/log.h"
#include "sentinelagent/privsep.h"

namespace sentinel::agent {
namespace {

using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

constexpr int64_t kMaxBackoffMs = 60'000;
constexpr int64_t kHealthyRunMs = 5 * 60'000;

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

Supervisor::Supervisor(std::string program, std::vector<std::string> args, Launcher* launcher)
    : program_(std::move(program)), args_(std::move(args)), launcher_(launcher) {}

Supervisor::~Supervisor() {
  if (pid_ > 0) Stop(10'000);
}

void Supervisor::Started(pid_t child, int64_t now_ms) {
  pid_ = child;
  started_ms_ = now_ms;
  if (ever_started_) ++restarts_;
  ever_started_ = true;
  LogInfo("procmond started", {{"pid", child},
                               {"program", program_},
                               {"restarts", restarts_},
                               {"launcher", launcher_ != nullptr ? launcher_->pid() : -1}});
}

void Supervisor::StartThroughLauncher(int64_t now_ms) {
  auto child = launcher_->Start();
  if (!child.ok()) {
    LogError("cannot start procmond", {{"error", child.status().message()}});
    if (child.status().code() == StatusCode::kUnavailable) launcher_lost_ = true;
    next_start_ms_ = now_ms + backoff_ms_;
    return;
  }
  Started(*child, now_ms);
}

bool WaitForProcessExit(pid_t pid, int64_t timeout_ms) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd.get() < 0) return errno == ESRCH;  // ESRCH: already gone (and reaped)
  const int64_t deadline = MonotonicMs() + timeout_ms;
  while (true) {
    pollfd p{pidfd.get(), POLLIN, 0};
    const int64_t left = std::max<int64_t>(0, deadline - MonotonicMs());
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT32_MAX)));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

bool Supervisor::Exited(int* status, int64_t wait_ms) {
  if (launcher_ == nullptr) {
    // Woken by the child's exit itself (a pidfd), not by polling.
    if (wait_ms > 0) WaitForProcessExit(pid_, wait_ms);
    const pid_t r = waitpid(pid_, status, WNOHANG);
    return r == pid_ || r < 0;
  }
  const int64_t deadline = MonotonicMs() + wait_ms;
  while (true) {
    const int64_t left = std::max<int64_t>(0, deadline - MonotonicMs());
    auto exit = launcher_->NextExit(static_cast<int>(left));
    if (!exit.ok()) {
      // The launcher took procmond with it (it stops procmond on its way out).
      LogError("the procmond launcher is gone", {{"error", exit.status().message()}});
      launcher_lost_ = true;
      *status = 0;
      return true;
    }
    if (exit->has_value() && (*exit)->pid == pid_) {
      *status = (*exit)->status;
      return true;
    }
    if (!exit->has_value() && left == 0) return false;
  }
}

void Supervisor::Signal(int sig) {
  if (pid_ <= 0) return;
  if (launcher_ == nullptr) {
    kill(pid_, sig);
  } else if (Status s = launcher_->Signal(sig); !s.ok()) {
    LogWarn("cannot signal procmond through the launcher", {{"error", s.message()}});
  }
}

void Supervisor::Start(int64_t now_ms) {
  if (launcher_ != nullptr) return StartThroughLauncher(now_ms);
  std::vector<char*> argv;
  argv.push_back(program_.data());
  for (auto& a : args_) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Prepared before fork: the child only calls async-signal-safe functions.
  const pid_t parent = getpid();
  const std::string parent_env = std::string(kSupervisorPidEnv) + "=" + std::to_string(parent);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kSupervisorPidEnv, std::strlen(kSupervisorPidEnv)) == 0 &&
        (*e)[std::strlen(kSupervisorPidEnv)] == '=')
      continue;
    envp.push_back(*e);
  }
  envp.push_back(const_cast<char*>(parent_env.c_str()));
  envp.push_back(nullptr);
  pid_t child = fork();
  if (child < 0) {
    LogError("cannot start procmond", {{"error", std::strerror(errno)}});
    next_start_ms_ = now_ms + backoff_ms_;
    return;
  }
  if (child == 0) {
    // The agent blocks the signals it waits for; the child must not inherit that.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // No orphan survives the agent: the kernel sends SIGTERM to procmond when
    // the agent dies, even by SIGKILL. The setting is cleared when procmond
    // changes its credentials, so procmond arms it again after its drop
    // (it is told the supervisor's pid through the environment).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);  // the agent died before the prctl
    execve(program_.c_str(), argv.data(), envp.data());
    std::fprintf(stderr, "sentinelagent: cannot execute %s: %s\n", program_.c_str(), std::strerror(errno));
    _exit(127);
  }
  Started(child, now_ms);
}

void Supervisor::Poll(int64_t now_ms) {
  if (launcher_lost_) return;
  if (pid_ > 0) {
    int status = 0;
    if (!Exited(&status, 0)) return;  // still running
    if (launcher_lost_) {
      pid_ = -1;
      return;
    }
    const int64_t ran_ms = now_ms - started_ms_;
    if (ran_ms >= kHealthyRunMs) backoff_ms_ = 1000;
    LogWarn("procmond exited; restarting after backoff",
            {{"pid", pid_}, {"how", DescribeExit(status)}, {"ran_ms", ran_ms}, {"backoff_ms", backoff_ms_}});
    pid_ = -1;
    next_start_ms_ = now_ms + backoff_ms_;
    backoff_ms_ = std::min(kMaxBackoffMs, backoff_ms_ * 2);
    return;
  }
  if (now_ms >= next_start_ms_) Start(now_ms);
}

void Supervisor::Stop(int64_t grace_ms) {
  if (pid_ <= 0) return;
  Signal(SIGTERM);
  int status = 0;
  if (!Exited(&status, grace_ms)) {
    LogWarn("procmond did not stop in time; killing it", {{"pid", pid_}});
    Signal(SIGKILL);
    if (launcher_ == nullptr) {
      waitpid(pid_, &status, 0);
    } else {
      Exited(&status, 10'000);
    }
  }
  LogInfo("procmond stopped", {{"pid", pid_}, {"how", DescribeExit(status)}});
  pid_ = -1;
}

std::string FindProcmond() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "procmond";
  const auto dir = self.parent_path();
  for (const auto& candidate :
       {dir / "procmond", dir / ".." / "procmond" / "procmond", dir / ".." / "sbin" / "procmond"}) {
    if (std::filesystem::exists(candidate, ec))
      return std::filesystem::weakly_canonical(candidate, ec).string();
  }
  return (dir / "procmond").string();
}

}  // namespace sentinel::agent
