// rule_probe: a stand-in process for the rule tests. The tests copy it under
// the name of a tool or daemon (xmrig, ncat, chisel, insmod, ...) and start
// it with that tool's command line; it ignores its arguments, never touches
// the network or the file system, and waits until it is killed.
//
// RULE_PROBE_COMM=NAME renames the process (prctl PR_SET_NAME, the same call
// malware uses to pose as "kworker/0:1" or "sshd").
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>

int main() {
  if (const char* comm = std::getenv("RULE_PROBE_COMM")) {
    ::prctl(PR_SET_NAME, comm, 0, 0, 0);
  }
  while (true) ::pause();
}
