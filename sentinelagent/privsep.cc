#include "sentinelagent/privsep.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinelagent/supervisor.h"

extern char** environ;

namespace sentinel::agent {
namespace {

// Requests (agent -> launcher) and replies (launcher -> agent).
constexpr int32_t kOpStart = 1;          // start procmond
constexpr int32_t kOpSignal = 2;         // value: SIGTERM, SIGKILL or SIGHUP for the running procmond
constexpr int32_t kOpStarted = 101;      // pid
constexpr int32_t kOpStartFailed = 102;  // value: errno
constexpr int32_t kOpExited = 103;       // pid, value: wait status

// How long the launcher gives procmond to stop when the agent is gone.
constexpr int kStopGraceMs = 10'000;
// How long the agent waits for the launcher to answer a start request.
constexpr int kStartReplyMs = 10'000;

bool RelayableSignal(int sig) {
  return sig == SIGTERM || sig == SIGKILL || sig == SIGHUP;
}

struct Wire {
  int32_t op = 0;
  int32_t pid = 0;
  int32_t value = 0;
};

void Reply(int sock, int32_t op, int32_t pid, int32_t value) {
  const Wire m{op, pid, value};
  // Nothing to do when the agent is gone: EOF on the socket ends the loop.
  (void)::send(sock, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Starts procmond; the child only execs. -1 with errno on failure.
pid_t SpawnProcmond(char* const* argv, char* const* envp) {
  const pid_t launcher = ::getpid();
  const pid_t child = ::fork();
  if (child != 0) return child;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // procmond never outlives the launcher; it arms this again after its own
  // privilege drop (SENTINELD_SUPERVISOR_PID names the launcher).
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != launcher) _exit(0);
  ::execve(argv[0], argv, envp);
  std::fprintf(stderr, "sentinelagent: cannot execute %s: %s\n", argv[0], std::strerror(errno));
  _exit(127);
}

// procmond's argv and environment, fixed when the launcher starts: nothing
// the agent sends later can change them. Built before any fork (the child
// only execs); not copyable, the pointers point into the strings.
class FixedCommand {
 public:
  explicit FixedCommand(const LaunchSpec& spec) : args_{spec.program} {
    args_.insert(args_.end(), spec.args.begin(), spec.args.end());
    const std::string prefix = std::string(kSupervisorPidEnv) + "=";
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) env_.emplace_back(*e);
    }
    env_.push_back(prefix + std::to_string(::getpid()));
    for (auto& a : args_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    for (auto& e : env_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }
  FixedCommand(const FixedCommand&) = delete;
  FixedCommand& operator=(const FixedCommand&) = delete;

  char* const* argv() const { return argv_.data(); }
  char* const* envp() const { return envp_.data(); }

 private:
  std::vector<std::string> args_, env_;
  std::vector<char*> argv_, envp_;
};

// The launcher process after the fork: its name, its parent-death signal,
// the socket as descriptor 3 and nothing else the agent had open. Returns
// the socket.
int BecomeLauncher(int sock, pid_t agent) {
  prctl(PR_SET_NAME, "sentinel-launch");
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != agent) _exit(0);  // the agent died before the prctl
  // Keep stdin, stdout, stderr and the socket; nothing else the agent had.
  if (sock != 3) {
    if (::dup2(sock, 3) < 0) _exit(1);
    sock = 3;
  }
  ::fcntl(sock, F_SETFD, FD_CLOEXEC);
  ::close_range(4, ~0U, 0);
  return sock;
}

// SIGCHLD and SIGTERM as a signalfd; the rest of the signals the agent's
// process group gets stay blocked and unread.
int LauncherSignals() {
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&blocked, s);
  sigprocmask(SIG_BLOCK, &blocked, nullptr);
  // SIGINT (Ctrl-C reaches the whole process group), SIGHUP and the rest stay
  // blocked and unread: the agent decides; SIGTERM to the launcher stops it.
  sigset_t watched;
  sigemptyset(&watched);
  sigaddset(&watched, SIGCHLD);
  sigaddset(&watched, SIGTERM);
  const int sfd = ::signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) _exit(1);
  return sfd;
}

// The root launcher's loop: one request or signal at a time. Never returns.
class LauncherLoop {
 public:
  LauncherLoop(int sock, int sfd, const FixedCommand& command) : sock_(sock), sfd_(sfd), command_(command) {}

  [[noreturn]] void Run() {
    while (true) {
      pollfd fds[2] = {{sock_, POLLIN, 0}, {sfd_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        StopAndExit();
      }
      if (fds[1].revents & POLLIN) TakeSignals();
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) TakeRequest();
    }
  }

 private:
  // Reports procmond's exit when it has exited.
  void Reap() {
    if (child_ <= 0) return;
    int status = 0;
    if (::waitpid(child_, &status, WNOHANG) == child_) {
      Reply(sock_, kOpExited, child_, status);
      child_ = -1;
    }
  }

  void DrainSignals() {
    signalfd_siginfo si;
    while (::read(sfd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    }
  }

  // procmond gets SIGTERM and kStopGraceMs (its exit wakes the signalfd),
  // then SIGKILL; the launcher exits.
  [[noreturn]] void StopAndExit() {
    if (child_ > 0) {
      ::kill(child_, SIGTERM);
      const int64_t deadline = MonotonicMs() + kStopGraceMs;
      while (child_ > 0 && MonotonicMs() < deadline) {
        pollfd p{sfd_, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, deadline - MonotonicMs())));
        DrainSignals();
        Reap();
      }
      if (child_ > 0) {
        ::kill(child_, SIGKILL);
        int status = 0;
        while (::waitpid(child_, &status, 0) < 0 && errno == EINTR) {
        }
      }
    }
    _exit(0);
  }

  void TakeSignals() {
    signalfd_siginfo si;
    while (::read(sfd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGTERM) StopAndExit();  // the agent died, or root asked
    }
    Reap();
  }

  void Start() {
    Reap();
    if (child_ > 0) return Reply(sock_, kOpStartFailed, child_, EBUSY);
    child_ = SpawnProcmond(command_.argv(), command_.envp());
    if (child_ > 0) return Reply(sock_, kOpStarted, child_, 0);
    Reply(sock_, kOpStartFailed, 0, errno);
    child_ = -1;
  }

  void TakeRequest() {
    Wire m;
    const ssize_t n = ::recv(sock_, &m, sizeof m, MSG_DONTWAIT | MSG_TRUNC);
    if (n == 0) StopAndExit();  // the agent closed its end or died
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      StopAndExit();
    }
    if (n != static_cast<ssize_t>(sizeof m)) return;  // not a request: ignored
    if (m.op == kOpStart) {
      Start();
    } else if (m.op == kOpSignal && RelayableSignal(m.value) && child_ > 0) {
      ::kill(child_, m.value);
    }
  }

  const int sock_;
  const int sfd_;
  const FixedCommand& command_;
  pid_t child_ = -1;
};

// The root launcher's whole life. Never returns.
[[noreturn]] void RunLauncher(int sock, const LaunchSpec& spec, pid_t agent) {
  sock = BecomeLauncher(sock, agent);
  const int sfd = LauncherSignals();
  const FixedCommand command(spec);
  LauncherLoop(sock, sfd, command).Run();
}

// Capability masks of /proc/self/status, all of which must be empty after the drop.
Status CheckNoCapabilities() {
  std::ifstream f("/proc/self/status");
  if (!f) return InternalError("cannot read /proc/self/status to verify the privilege drop");
  std::string line;
  int seen = 0;
  bool no_new_privs = false;
  while (std::getline(f, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    const std::string value(Trim(line.substr(colon + 1)));
    if (key == "CapInh" || key == "CapPrm" || key == "CapEff" || key == "CapBnd" || key == "CapAmb") {
      ++seen;
      if (value.find_first_not_of('0') != std::string::npos)
        return InternalError("privilege drop incomplete: " + key + " is " + value);
    } else if (key == "NoNewPrivs") {
      no_new_privs = value == "1";
    }
  }
  if (seen != 5)
    return InternalError("privilege drop unverified: capability sets missing in /proc/self/status");
  if (!no_new_privs) return InternalError("privilege drop incomplete: NoNewPrivs is not set");
  return Status::Ok();
}

}  // namespace

Result<ServiceUser> LookupServiceUser(const std::string& name) {
  struct passwd pw {};
  struct passwd* result = nullptr;
  std::vector<char> buf(16384);
  const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result);
  if (rc != 0) return ErrnoError(rc, "privileges.user: looking up user " + QuoteForMessage(name));
  if (result == nullptr) {
    return NotFoundError("privileges.user: user " + QuoteForMessage(name) +
                         " does not exist (create it, e.g. useradd --system " + name +
                         ", or set privileges.user)");
  }
  if (pw.pw_uid == 0) {
    return InvalidArgumentError("privileges.user: expected an unprivileged user, got " +
                                QuoteForMessage(name) + " (uid 0 is root)");
  }
  return ServiceUser{name, pw.pw_uid, pw.pw_gid};
}

namespace {

// Opens the directory `name` under `parent` (`at` is its whole path, for
// messages), creating it when missing (*created). A symbolic link is
// followed only when root owns it (such as /var/run -> /run); one planted
// by anyone else is refused.
Result<UniqueFd> OpenStep(int parent, const std::string& name, const std::string& at, bool* created) {
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  UniqueFd next(::openat(parent, name.c_str(), kFlags | O_NOFOLLOW));
  if (next.get() < 0 && errno == ENOENT) {
    if (::mkdirat(parent, name.c_str(), 0750) == 0) {
      *created = true;
    } else if (errno != EEXIST) {
      return ErrnoError(errno, "creating directory " + at);
    }
    next = UniqueFd(::openat(parent, name.c_str(), kFlags | O_NOFOLLOW));
  } else if (next.get() < 0 && (errno == ELOOP || errno == ENOTDIR)) {
    struct stat link {};
    if (::fstatat(parent, name.c_str(), &link, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(link.st_mode)) {
      return ErrnoError(ENOTDIR, "opening directory " + at);
    }
    if (link.st_uid != 0) {
      return PermissionDeniedError("refusing to follow " + at + ": a symbolic link owned by uid " +
                                   std::to_string(link.st_uid) + ", not root");
    }
    next = UniqueFd(::openat(parent, name.c_str(), kFlags));
  }
  if (next.get() < 0) return ErrnoError(errno, "opening directory " + at);
  return next;
}

// One directory of PrepareDirectories: walked from / one component at a
// time on descriptors, creating what is missing.
Status PrepareDirectory(const std::string& dir, const ServiceUser& user) {
  std::error_code ec;
  const std::filesystem::path want = std::filesystem::absolute(dir, ec).lexically_normal();
  if (ec) return InternalError("cannot resolve directory " + dir + ": " + ec.message());
  struct stat st {};
  if (::stat(want.c_str(), &st) == 0) return Status::Ok();  // exists: left as it is
  UniqueFd fd(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "opening /");
  std::filesystem::path at("/");
  for (const auto& part : want.relative_path()) {
    const std::string name = part.string();
    if (name.empty() || name == ".") continue;
    at /= name;
    bool created = false;
    ASSIGN_OR_RETURN(fd, OpenStep(fd.get(), name, at.string(), &created));
    if (created && (::fchown(fd.get(), user.uid, user.gid) != 0 || ::fchmod(fd.get(), 0750) != 0)) {
      return ErrnoError(errno, "giving directory " + at.string() + " to user " + user.name);
    }
  }
  return Status::Ok();
}

}  // namespace

Status PrepareDirectories(const std::vector<std::string>& dirs, const ServiceUser& user) {
  for (const std::string& dir : dirs) {
    if (!dir.empty()) RETURN_IF_ERROR(PrepareDirectory(dir, user));
  }
  return Status::Ok();
}

Status DropToUser(const ServiceUser& user) {
  if (user.uid == 0) return InvalidArgumentError("privileges.user: refusing to run as root");
  // The bounding set first (needs CAP_SETPCAP, still held): every capability
  // the kernel knows, whatever this build's headers list.
  for (int c = 0; c < 64; ++c) {
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
      return ErrnoError(errno, "dropping capability " + std::to_string(c) + " from the bounding set");
  }
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return ErrnoError(errno, "PR_SET_KEEPCAPS");
  const gid_t gid = user.gid;
  if (::setgroups(1, &gid) != 0) return ErrnoError(errno, "setgroups");
  if (::setresgid(gid, gid, gid) != 0) return ErrnoError(errno, "setresgid");
  if (::setresuid(user.uid, user.uid, user.uid) != 0) return ErrnoError(errno, "setresuid");
  // setresuid emptied the permitted and effective sets; the inheritable set
  // is emptied explicitly, the ambient set too.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, data) != 0) return ErrnoError(errno, "capset");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return ErrnoError(errno, "clearing ambient capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoError(errno, "PR_SET_NO_NEW_PRIVS");

  // Verify rather than trust.
  uid_t r = 0, e = 0, s = 0;
  gid_t rg = 0, eg = 0, sg = 0;
  if (::getresuid(&r, &e, &s) != 0 || r != user.uid || e != user.uid || s != user.uid ||
      ::getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid) {
    return InternalError("privilege drop did not take effect");
  }
  if (::setresuid(0, 0, 0) == 0 || ::setresgid(0, 0, 0) == 0)
    return InternalError("could regain root after dropping privileges");
  return CheckNoCapabilities();
}

Result<std::unique_ptr<Launcher>> Launcher::Fork(LaunchSpec spec) {
  if (::geteuid() != 0)
    return FailedPreconditionError("the procmond launcher is only for an agent started as root");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return ErrnoError(errno, "creating the launcher's socket pair");
  UniqueFd agent_end(sv[0]), launcher_end(sv[1]);
  const pid_t agent = ::getpid();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, "forking the procmond launcher");
  if (pid == 0) {
    agent_end = UniqueFd();
    RunLauncher(launcher_end.release(), spec, agent);
  }
  launcher_end = UniqueFd();
  return std::unique_ptr<Launcher>(new Launcher(pid, std::move(agent_end)));
}

Launcher::~Launcher() {
  fd_ = UniqueFd();  // EOF: the launcher stops procmond (if any) and exits
  if (pid_ > 0) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

Status Launcher::Send(const Message& m) {
  if (lost_) return UnavailableError("the procmond launcher (pid " + std::to_string(pid_) + ") is gone");
  const Wire w{m.op, m.pid, m.value};
  if (::send(fd_.get(), &w, sizeof w, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof w)) {
    lost_ = true;
    return ErrnoError(errno, "asking the procmond launcher (pid " + std::to_string(pid_) + ")");
  }
  return Status::Ok();
}

Result<std::optional<Launcher::Message>> Launcher::Read(int timeout_ms) {
  if (lost_) return UnavailableError("the procmond launcher (pid " + std::to_string(pid_) + ") is gone");
  pollfd p{fd_.get(), POLLIN, 0};
  int n;
  while ((n = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
  }
  if (n < 0) return ErrnoError(errno, "waiting for the procmond launcher");
  if (n == 0) return std::optional<Message>();
  Wire w;
  const ssize_t got = ::recv(fd_.get(), &w, sizeof w, MSG_DONTWAIT | MSG_TRUNC);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return std::optional<Message>();
  if (got <= 0) {
    lost_ = true;
    return UnavailableError("the procmond launcher (pid " + std::to_string(pid_) + ") is gone");
  }
  if (got != static_cast<ssize_t>(sizeof w))
    return InternalError("malformed reply from the procmond launcher");
  return std::optional<Message>(Message{w.op, w.pid, w.value});
}

Result<pid_t> Launcher::Start() {
  RETURN_IF_ERROR(Send({kOpStart, 0, 0}));
  const int64_t deadline = MonotonicMs() + kStartReplyMs;
  while (true) {
    const int64_t left = deadline - MonotonicMs();
    if (left <= 0) return UnavailableError("the procmond launcher did not answer a start request");
    ASSIGN_OR_RETURN(std::optional<Message> m, Read(static_cast<int>(left)));
    if (!m) continue;
    if (m->op == kOpStarted) return static_cast<pid_t>(m->pid);
    if (m->op == kOpStartFailed) return ErrnoError(m->value, "starting procmond");
    if (m->op == kOpExited) exits_.push_back({m->pid, m->value});
  }
}

Status Launcher::Signal(int sig) {
  if (!RelayableSignal(sig))
    return InvalidArgumentError("the launcher relays only SIGTERM, SIGKILL and SIGHUP");
  return Send({kOpSignal, 0, sig});
}

Result<std::optional<Launcher::Exit>> Launcher::NextExit(int timeout_ms) {
  const int64_t deadline = MonotonicMs() + timeout_ms;
  while (exits_.empty()) {
    const int64_t left = std::max<int64_t>(0, deadline - MonotonicMs());
    ASSIGN_OR_RETURN(std::optional<Message> m, Read(static_cast<int>(left)));
    if (m && m->op == kOpExited) exits_.push_back({m->pid, m->value});
    if (!m && left == 0) break;
  }
  if (exits_.empty()) return std::optional<Exit>();
  Exit e = exits_.front();
  exits_.pop_front();
  return std::optional<Exit>(e);
}

}  // namespace sentinel::agent
