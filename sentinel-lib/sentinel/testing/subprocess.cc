#include "sentinel/testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

extern char** environ;

namespace sentinel::testing {

std::vector<std::string> EditedEnvironment(const std::vector<std::string>& edits) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e; ++e) {
    std::string s(*e);
    auto eq = s.find('=');
    if (eq != std::string::npos) vars[s.substr(0, eq)] = s.substr(eq + 1);
  }
  for (const auto& e : edits) {
    auto eq = e.find('=');
    if (eq == std::string::npos)
      vars.erase(e);
    else
      vars[e.substr(0, eq)] = e.substr(eq + 1);
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
  return out;
}

namespace {

// A NULL-terminated array over `strings` (which must outlive it).
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// The child's standard streams as the parent holds them; -1 once closed.
struct ChildIo {
  int in = -1;  // write end of the child's stdin
  int out = -1;
  int err = -1;
};

// Appends what is ready on fd to `to`; closes fd at EOF or on error.
void Drain(int& fd, std::string& to) {
  char buf[65536];
  const ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) {
    to.append(buf, static_cast<size_t>(n));
  } else {
    CloseFd(fd);
  }
}

// Writes what the pipe takes of the rest of `data`; closes fd once all is written or on error.
void Feed(int& fd, const std::string& data, size_t& written) {
  const ssize_t n = write(fd, data.data() + written, data.size() - written);
  if (n > 0) written += static_cast<size_t>(n);
  if (n < 0 || written == data.size()) CloseFd(fd);
}

// Feeds stdin_data to the child and collects its output until both outputs close.
void Pump(ChildIo& io, const std::string& stdin_data, RunResult& r) {
  constexpr short kReadable = POLLIN | POLLHUP | POLLERR;
  size_t written = 0;
  if (stdin_data.empty()) CloseFd(io.in);
  while (io.out >= 0 || io.err >= 0) {
    pollfd fds[3] = {{io.out, POLLIN, 0}, {io.err, POLLIN, 0}, {io.in, POLLOUT, 0}};  // poll skips fds < 0
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].fd >= 0 && (fds[0].revents & kReadable)) Drain(io.out, r.out);
    if (fds[1].fd >= 0 && (fds[1].revents & kReadable)) Drain(io.err, r.err);
    if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) Feed(io.in, stdin_data, written);
  }
  CloseFd(io.in);
  CloseFd(io.out);
  CloseFd(io.err);
}

// Waits for the child: its exit code (128+signal) and peak RSS.
void Reap(pid_t pid, RunResult& r) {
  int status = 0;
  struct rusage usage {};
  pid_t waited;
  while ((waited = wait4(pid, &status, 0, &usage)) < 0 && errno == EINTR) {
  }
  if (waited == pid) r.peak_rss_kib = usage.ru_maxrss;
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.exit_code = 128 + WTERMSIG(status);
  }
}

}  // namespace

RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
              const std::string& stdin_data) {
  // Everything the child needs is built before fork: it only dups and execs.
  std::vector<std::string> env_strings = EditedEnvironment(env);
  std::vector<char*> envp = CStrings(env_strings);
  std::vector<std::string> argv_copy = argv;
  std::vector<char*> args = CStrings(argv_copy);

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(args[0], args.data(), envp.data());
    dprintf(2, "execve %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  ChildIo io{in[1], out[0], err[0]};
  RunResult r;
  Pump(io, stdin_data, r);
  Reap(pid, r);
  return r;
}

}  // namespace sentinel::testing
