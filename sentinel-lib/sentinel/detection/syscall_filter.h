// The seccomp filter of the query worker (query_worker.h): what a process
// evaluating attacker-influenced SQL may still ask of the kernel once its
// store connection is open.
//
// Allowed: reading (read, pread, lseek, fstat and friends on descriptors
// already open), memory management, locks on open files (fcntl), clocks and
// sleeps, exit. `write`/`writev` only to the result descriptor and stderr.
// Refused with EPERM: every other system call, notably opening or creating
// a file, ftruncate, unlink, rename, ioctl. The process is killed (SIGSYS)
// on exec, fork/clone, socket/connect and the rest of the network calls,
// ptrace, process_vm_*, kill: what an escape would need first. A foreign
// system-call ABI (x32, or a 32-bit one on a 64-bit kernel) is killed too.
//
// Linux on x86-64 and aarch64; elsewhere InstallQueryWorkerFilter returns
// Unimplemented and the worker refuses to run (fails closed).
#pragma once

#include "sentinel/base/status.h"

namespace sentinel::detection {

// Sets PR_SET_NO_NEW_PRIVS and installs the filter on the calling thread
// (the worker is single-threaded). `result_fd` is the one descriptor
// besides stderr (2) that may be written.
Status InstallQueryWorkerFilter(int result_fd);

}  // namespace sentinel::detection
