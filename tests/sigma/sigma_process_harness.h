// Replays Sigma process_creation scenarios as real processes, and runs them
// through the real pipeline: procmond's eBPF real-time source
// -> process_events -> sentinelagent's `on: exec` detector -> alerts.
//
// A scenario is one exec: the executable path (Image), argv (CommandLine), the
// parent's executable and argv (ParentImage, ParentCommandLine), the working
// directory (CurrentDirectory), the user (User) and optionally the login uid
// (LogonId). ReplayProcesses makes each one happen for real (sigma_probe.cc):
// in a private mount namespace the probe executable is bind-mounted over
// every image path (paths that do not exist are created in an overlay over
// the nearest existing directory, so nothing on the host is created, changed
// or hidden), the parent is exec'd at its image with its argv, forks, and the
// child writes /proc/self/loginuid, chdir()s, drops to the user and execs the
// image with the argv. Users the host lacks are created for the test
// (ScenarioUsers) and removed afterwards.
//
// Needs root (mount namespace, users, login uid, procmond's real-time
// source). Test-only; single-threaded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace sentinel::sigma_test {

// One exec to replay.
struct ProcessScenario {
  std::string image;                     // absolute path execve() is given
  std::vector<std::string> argv;         // argv[0] included
  std::string parent_image;              // absolute path the parent is exec'd at
  std::vector<std::string> parent_argv;  // the parent's argv
  std::string cwd;                       // absolute; created privately if missing
  std::string user;                      // created (and removed) if the host lacks it
  std::optional<uint32_t> login_uid;     // written to /proc/self/loginuid before the exec
};

// What became of a scenario: the pids, or why it could not run.
struct ReplayedProcess {
  pid_t parent_pid = -1;
  pid_t pid = -1;  // the replayed exec (a child of parent_pid)
  int exit_code = -1;
  std::string error;  // empty when the exec happened
};

// argv joined with single spaces: Sigma's CommandLine / ParentCommandLine.
std::string JoinArgs(const std::vector<std::string>& argv);
// A command line split at single spaces; nullopt when joining the words
// again would not give `line` back (empty words: doubled, leading or
// trailing spaces), since then no argv is known to produce it.
std::optional<std::vector<std::string>> SplitCommandLine(const std::string& line);

// Users for scenarios: Resolve() looks a user up and, when the host has no
// such user, creates it (useradd --system --no-create-home). An existing user
// is never modified. The created ones are removed (userdel) on destruction.
class ScenarioUsers {
 public:
  struct Ids {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups, as initgroups() would set them
  };
  ScenarioUsers() = default;
  ~ScenarioUsers();
  ScenarioUsers(const ScenarioUsers&) = delete;
  ScenarioUsers& operator=(const ScenarioUsers&) = delete;

  // The user's ids; nullopt with `error` set when it could not be had.
  std::optional<Ids> Resolve(const std::string& name, std::string* error);
  const std::vector<std::string>& created() const { return created_; }

 private:
  std::vector<std::string> created_;
};

// The probe program (sigma_probe), built with the tests.
std::string ProbeBin();

// Replays `scenarios` in order, in one private mount namespace. `scratch_dir`
// is an empty directory of the test's own (a tmpfs is mounted on it inside
// the namespace). Returns one entry per scenario; nullopt with `error` set
// when the namespace could not be prepared (then nothing ran).
std::optional<std::vector<ReplayedProcess>> ReplayProcesses(const std::vector<ProcessScenario>& scenarios,
                                                            const std::string& scratch_dir,
                                                            ScenarioUsers& users, std::string* error);

// The host's view of every path the scenarios name (image, parent image,
// working directory): missing, or the file's identity (device, inode, mode,
// and for files size, mtime and ctime). Equal before and after a replay
// unless the replay created, replaced or changed something on the host.
std::string HostPathState(const std::vector<ProcessScenario>& scenarios);

// An exec as procmond stored it (process_events), the fields Sigma reads.
struct ExecRow {
  int64_t id = 0;
  int64_t start_time = 0;
  std::optional<std::string> exe_path, command_text, parent_exe_path, parent_command_text, cwd, user_name;
  std::optional<int64_t> login_uid;
};
// Mismatches between a stored exec and its scenario, "" when none.
std::string CompareExec(const ExecRow& row, const ProcessScenario& s);

// procmond (eBPF source: it reads the exec'd path and the argv in the kernel;
// the netlink fallback reads /proc, which a probe that exits at once has
// left) and sentinelagent (--no-collector, only the
// rules of rules_dir(), dedup off so any repeated evaluation shows as a
// second alert) in a Sandbox. Methods use gtest assertions.
class DetectionPipeline {
 public:
  explicit DetectionPipeline(itest::Sandbox& sb);
  ~DetectionPipeline();
  DetectionPipeline(const DetectionPipeline&) = delete;
  DetectionPipeline& operator=(const DetectionPipeline&) = delete;

  const std::string& rules_dir() const { return rules_dir_; }
  const std::string& db() const { return db_; }
  // `sentinelcli rules convert FILE --output rules_dir()`.
  itest::RunResult Convert(const std::string& sigma_file) const;
  // Starts procmond, then the agent; fails the test when either does not come up.
  void Start();
  // Stops the agent, then procmond (SIGTERM, waits).
  void Stop();

  // The stored exec event of `pid` (waits up to `timeout` for it).
  std::optional<ExecRow> WaitForExec(pid_t pid, std::chrono::milliseconds timeout) const;
  // Waits until the cursor of every rule in `rule_ids` has reached event `id`;
  // returns the rules whose cursor has not (none loaded, or stuck) by `timeout`.
  std::set<std::string> WaitEvaluated(const std::set<std::string>& rule_ids, int64_t id,
                                      std::chrono::milliseconds timeout) const;
  // Alerts of `rule_id` for the process (pid, start_time)
  // (-1 when the store cannot be read.) `of_pid` counts every alert of the
  // rule naming the pid, so an alert with a wrong start_time still counts.
  struct AlertCounts {
    int64_t of_pid = -1;
    int64_t of_process = -1;  // pid and start_time
  };
  AlertCounts Alerts(const std::string& rule_id, pid_t pid, int64_t start_time) const;
  // Every alert of `rule_id`: "pid N start_time T" lines, for failure messages.
  std::string DescribeAlerts(const std::string& rule_id) const;
  std::string Logs() const;  // procmond's and the agent's stderr

 private:
  std::vector<std::string> Env(std::vector<std::string> extra) const;

  itest::Sandbox& sb_;
  std::string db_;
  std::string rules_dir_;
  std::unique_ptr<itest::Child> procmond_;
  std::unique_ptr<itest::Child> agent_;
};

// cases.yaml (testdata/sigma): one process that must or must not match a rule.
struct SigmaCase {
  std::string rule_file;  // absolute path of the Sigma rule
  std::string rule_id;    // the translated rule's id: "sigma-" + the Sigma id
  bool must_match = false;
  ProcessScenario process;
  std::string why;
  std::string label;  // "<rule file> match #1" etc., for messages
};
// Reads cases.yaml; rule_file paths are resolved against its directory. On a
// malformed file returns nullopt with `error` set.
std::optional<std::vector<SigmaCase>> LoadCases(const std::string& cases_yaml, std::string* error);

}  // namespace sentinel::sigma_test
