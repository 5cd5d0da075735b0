// The daemons' signal handling: the signals their main loops wait for are
// blocked (taken with sigtimedwait), and a long step checks whether a stop
// (SIGTERM, SIGINT) is waiting.
//
// Thread-safety: free functions; call BlockSignals before any thread starts
// (threads inherit the mask).
#pragma once

#include <signal.h>

#include <initializer_list>

namespace sentinel {

// Blocks `signals` for this thread; the set, for sigtimedwait.
inline sigset_t BlockSignals(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// True when SIGTERM or SIGINT is pending (blocked and not yet taken).
inline bool StopSignalPending() {
  sigset_t pending;
  sigemptyset(&pending);
  return sigpending(&pending) == 0 &&
         (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

}  // namespace sentinel
