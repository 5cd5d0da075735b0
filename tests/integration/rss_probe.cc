// rss_probe FILE PROGRAM [ARG]...: runs PROGRAM, writes its peak resident set
// size in KiB (wait4 rusage ru_maxrss) to FILE and exits with its exit code
// (128+signal when killed).
//
// Why a separate program: Linux counts in ru_maxrss the pages a child
// inherited from fork() before exec, so a child forked by a large test
// process (sanitizers, earlier output) reports the test's size, not its own.
// Forked from this small, freshly exec'd process, the figure is the
// program's. Built without sanitizers for that reason.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: rss_probe FILE PROGRAM [ARG]...\n");
    return 125;
  }
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("rss_probe: fork");
    return 125;
  }
  if (pid == 0) {
    execv(argv[2], argv + 2);
    std::fprintf(stderr, "rss_probe: exec %s: %s\n", argv[2], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  while (wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) {
      std::perror("rss_probe: wait4");
      return 125;
    }
  }
  FILE* f = std::fopen(argv[1], "w");
  if (!f || std::fprintf(f, "%ld\n", usage.ru_maxrss) < 0 || std::fclose(f) != 0) {
    std::perror("rss_probe: writing the result");
    return 125;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
