// rule_probe: a stand-in process for the rule tests. The tests copy it under
// the name of a tool or daemon (xmrig, ncat, chisel, insmod, ...) and start
// it with that tool's command line; it ignores its arguments, never touches
// the network or the file system, and waits until it is killed.
//
// RULE_PROBE_COMM=NAME renames the process (prctl PR_SET_NAME, the same call
// malware uses to pose as "kworker/0:1" or "sshd").
//
// RULE_PROBE_MEMFD_REEXEC=NAME re-executes the probe once from a memfd named
// NAME holding a copy of its own image (/proc/self/exe), in the same process
// with the same argv, as runc does at start ("runc_cloned:/proc/self/exe").
// RULE_PROBE_MEMFD_SEALS=1 seals the copy as runc does (F_SEAL_SEAL,
// F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE) before the exec. A failure exits 3.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

extern char** environ;

namespace {

// Copies /proc/self/exe into a memfd named `name`; -1 on failure.
int CloneSelf(const char* name, bool seal) {
  const int src = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  const int mfd = ::memfd_create(name, MFD_CLOEXEC | (seal ? MFD_ALLOW_SEALING : 0U));
  if (src < 0 || mfd < 0) return -1;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(src, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(mfd, buf + off, static_cast<size_t>(n - off));
      if (w <= 0) return -1;
      off += w;
    }
  }
  ::close(src);
  if (n < 0) return -1;
  if (seal && ::fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
    return -1;
  return mfd;
}

void ReexecFromMemfd(char** argv, const char* name) {
  const char* seals = std::getenv("RULE_PROBE_MEMFD_SEALS");
  const int mfd = CloneSelf(name, seals && std::strcmp(seals, "1") == 0);
  if (mfd < 0) std::_Exit(3);
  // The copy must not clone itself again.
  ::unsetenv("RULE_PROBE_MEMFD_REEXEC");
  ::fexecve(mfd, argv, environ);
  std::_Exit(3);
}

// Busy loops on every thread until the process is killed.
[[noreturn]] void Spin(const char* threads) {
  const long n = std::strtol(threads, nullptr, 10);
  // Best effort: fails harmlessly without CAP_SYS_NICE.
  ::setpriority(PRIO_PROCESS, 0, -20);
  if (const int fd = ::open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC); fd >= 0) {
    (void)!::write(fd, "-20", 3);
    ::close(fd);
  }
  std::atomic<unsigned long> sink{0};
  std::vector<std::thread> workers;
  for (long i = 1; i < n && i < 16; ++i) {
    workers.emplace_back([&sink] {
      while (true) sink.fetch_add(1, std::memory_order_relaxed);
    });
  }
  while (true) sink.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

int main(int /*argc*/, char** argv) {
  if (const char* name = std::getenv("RULE_PROBE_MEMFD_REEXEC")) ReexecFromMemfd(argv, name);
  if (const char* comm = std::getenv("RULE_PROBE_COMM")) {
    ::prctl(PR_SET_NAME, comm, 0, 0, 0);
  }
  if (const char* spin = std::getenv("RULE_PROBE_SPIN")) Spin(spin);
  while (true) ::pause();
}
