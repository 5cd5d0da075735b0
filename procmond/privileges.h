// Dropping root after start (SPEC §1): procmond opens what needs root, then
// switches to privileges.user keeping only the configured capabilities
// (normally CAP_SYS_PTRACE to read other users' /proc entries and
// CAP_DAC_READ_SEARCH to hash executables it could not otherwise read),
// clears every other capability from the bounding and ambient sets, and
// sets PR_SET_NO_NEW_PRIVS so nothing it could ever exec regains privilege.
//
// Called once, from the main thread, before any other thread starts (the
// credential changes apply to the calling thread only on Linux unless done
// through glibc's process-wide wrappers, which setresuid/setresgid are).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "sentinel/base/status.h"

namespace sentinel::procmond {

struct PrivilegeOptions {
  std::string user;                            // privileges.user
  std::vector<std::string> keep_capabilities;  // privileges.keep_capabilities, e.g. "CAP_SYS_PTRACE"
  std::vector<std::string> chown_paths;        // data files/dirs the unprivileged process must write
};

struct PrivilegeReport {
  bool was_root = false;
  bool dropped = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;
  std::vector<std::string> kept;     // capabilities kept (effective + permitted)
  std::vector<std::string> missing;  // what an unprivileged run cannot see
};

// Looks up `user`; NotFound if it does not exist (a configuration error).
Result<std::pair<uid_t, gid_t>> LookupUser(const std::string& user);

// Drops privileges as described above when running as root; otherwise
// returns a report of what an unprivileged collector cannot see.
// Errors: NotFound (no such user), InvalidArgument (unknown capability),
// PermissionDenied/Internal (a system call failed: the process must exit),
// FailedPrecondition (IsRefusedPath: a chown path is a symbolic link or a
// hard-linked file; nothing was given away through it).
// Missing chown paths are skipped.
Result<PrivilegeReport> DropPrivileges(const PrivilegeOptions& options);

// Reads the calling process's capability sets from /proc/self/status as
// hex masks, for logging and tests.
struct CapabilityState {
  uint64_t effective = 0, permitted = 0, inheritable = 0, bounding = 0, ambient = 0;
  bool no_new_privs = false;
};
Result<CapabilityState> ReadCapabilityState(pid_t pid);

}  // namespace sentinel::procmond

namespace sentinel::procmond {

// When procmond runs under sentinelagent (SENTINELD_SUPERVISOR_PID is set to
// the agent's pid), arms PR_SET_PDEATHSIG = SIGTERM again (the kernel clears
// it when credentials change) so procmond never outlives its supervisor.
// Returns false when the supervisor is already gone (procmond should stop);
// true when armed or when not supervised.
bool WatchSupervisor();

// Whether procmond runs under sentinelagent (SENTINELD_SUPERVISOR_PID is
// set): the agent's summary line then covers procmond's scans and events.
// Reads the environment: call it from the main thread.
bool Supervised();

}  // namespace sentinel::procmond
