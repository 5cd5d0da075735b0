// Integration-test harness: runs the real procmond and sentinelcli binaries as
// a user would, each test in a fresh temporary directory with HOME and
// XDG_CONFIG_HOME pointed into it and every SENTINELD_* variable of the
// caller's environment removed, so the host's configuration never leaks in.
//
// Also: snapshots of database files (to prove "nothing changed"), a
// background child with RAII cleanup, a pseudo-terminal runner (colour
// tests) and small SQLite helpers that use the C API directly, not SentinelD
// code. Test-only; single-threaded except StopSignal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/testing/subprocess.h"
#include "sentinel/testing/temp_dir.h"
#include "sentinel/testing/wait.h"

namespace sentinel::itest {

using testing::RunResult;

std::string ProcmondBin();
std::string CliBin();
std::string AgentBin();
std::string RssProbeBin();

// Environment edits (for testing::Run) that isolate a child from the caller:
// HOME / XDG_CONFIG_HOME inside `root`, SENTINELD_*, NO_COLOR and COLUMNS
// removed, then `extra` applied ("NAME=VALUE" sets, "NAME" removes).
std::vector<std::string> IsolatedEnv(const std::string& root, const std::vector<std::string>& extra = {});

// The unprivileged user the daemons drop to in tests run as root: it exists
// on every Debian host.
inline constexpr const char* kServiceUser = "nobody";

// The value of the first sample line of Prometheus text `metrics` that
// starts with `prefix` (a metric name with its label text), or nullopt.
std::optional<double> MetricSample(const std::string& metrics, const std::string& prefix);

// Creates `dir` (mode 0750) and, when run as root, gives it to
// kServiceUser, like a data directory an install creates. False on failure.
bool MakeServiceDir(const std::string& dir);

// A fresh temporary directory per test. Run as root, it (and its home/)
// belongs to kServiceUser, like a data directory an install creates.
class Sandbox {
 public:
  Sandbox();
  const std::string& path() const { return dir_.path(); }
  std::string File(const std::string& name) const { return dir_.File(name); }

  RunResult Procmond(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) const;
  RunResult Cli(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) const;
  // sentinelagent with ProcmondEnv() (it may spawn procmond).
  RunResult Agent(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) const;
  std::vector<std::string> Env(const std::vector<std::string>& extra = {}) const {
    return IsolatedEnv(path(), extra);
  }
  // Env() for procmond and the agent. Started as root, both switch to
  // privileges.user, which may not be root, and a test host has no
  // `sentineld` user: they are told to switch to kServiceUser, which owns the
  // sandbox (see Sandbox()). The drops themselves are checked by privileged
  // tests (procmond/privileges_test.cc, agent_privileges_test.cc).
  std::vector<std::string> ProcmondEnv(const std::vector<std::string>& extra = {}) const;

  // Cli() through rss_probe: peak_rss_kib is sentinelcli's own peak RSS,
  // free of the pages a fork of this test process would bring along.
  RunResult CliMeasured(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) const;

  // Path of an event store holding one scan, made with `procmond --once`
  // (created on first call; fails the current test if procmond fails).
  std::string Database();

 private:
  testing::TempDir dir_;
  std::string db_;
};

// Environment edits for a detection test's binaries: `extra`, then the event
// store `db`, the audit ledger audit.db in the sandbox, `rules_dir` as the
// only rules directory and text logs.
std::vector<std::string> DetectionEnv(const Sandbox& sb, const std::string& db, const std::string& rules_dir,
                                      std::vector<std::string> extra = {});

// The component `name` of a health report (`sentinelcli health --json`, the
// agent's health reply), or an empty object when there is none.
nlohmann::json HealthComponent(const nlohmann::json& report, const std::string& name);

// A process as /proc/PID/stat shows it; ReadProc gives nullopt once it is gone.
struct ProcInfo {
  pid_t ppid = 0;
  char state = '?';
  std::string comm;
};
std::optional<ProcInfo> ReadProc(pid_t pid);
bool Alive(pid_t pid);  // exists and is neither a zombie nor dead
// The children of `parent` that are not zombies: pid and comm.
std::vector<std::pair<pid_t, std::string>> LiveChildren(pid_t parent);

// Ends the loop of a helper thread that works in rounds: the thread waits
// between rounds with WaitFor, which returns as soon as Stop is called (true)
// instead of sleeping out the pause. Thread-safe.
class StopSignal {
 public:
  void Stop();
  bool stopped() const;
  // Waits until Stop() or `timeout`; returns stopped().
  bool WaitFor(std::chrono::milliseconds timeout);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

// A database file and its sidecars ("", -wal, -shm, -journal): contents, or
// nullopt when absent.
struct DbSnapshot {
  std::map<std::string, std::optional<std::string>> files;
  bool operator==(const DbSnapshot&) const = default;
};
DbSnapshot SnapshotDb(const std::string& path);
std::string Describe(const DbSnapshot& s);            // for failure messages
void PrintTo(const DbSnapshot& s, std::ostream* os);  // gtest prints Describe()

// Names in a directory (not recursive, no "." / "..").
std::set<std::string> ListDir(const std::string& dir);

// A background process, killed (SIGKILL) and reaped on destruction.
class Child {
 public:
  // argv[0] must be a path. stdout/stderr go to the given files ("" keeps
  // /dev/null). `new_group` puts the child in its own process group.
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& env_edits,
        const std::string& stdout_file = "", const std::string& stderr_file = "", bool new_group = false);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();  // not yet exited (reaps if it has)
  void Signal(int sig);
  // Waits up to `timeout` for the exit; returns the exit code (128+signal)
  // or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// A copy of /bin/sleep at `path` (a new file), started ("sleep 600") and
// deleted while it runs: a process from a deleted executable, which the
// built-in rule proc-deleted-executable reports. Killed on destruction.
class DeletedBinary {
 public:
  explicit DeletedBinary(const std::string& path);
  pid_t pid() const { return child_->pid(); }

 private:
  std::unique_ptr<Child> child_;
};

// Runs argv with stdout and stderr on a pseudo-terminal (120 columns);
// returns what it printed and its exit code.
RunResult RunOnPty(const std::vector<std::string>& argv, const std::vector<std::string>& env_edits);
// Runs argv with stderr on a pseudo-terminal (120 columns) and stdout on a
// pipe: `out` is stdout, `err` what reached the terminal.
RunResult RunWithStderrOnPty(const std::vector<std::string>& argv, const std::vector<std::string>& env_edits);

// SQLite through the C API. QueryInt opens read-only and returns the first
// column of the first row (nullopt for no row / NULL); Exec opens read-write.
// Both fail the current test on an error.
std::optional<int64_t> QueryInt(const std::string& db, const std::string& sql);
void ExecSql(const std::string& db, const std::string& sql);
// QueryInt without failing the test (for polling a database being created).
std::optional<int64_t> TryQueryInt(const std::string& db, const std::string& sql);

std::vector<std::string> SplitLines(const std::string& text);  // on '\n', no trailing empty line
bool Contains(const std::string& haystack, const std::string& needle);

// Polls `pred` until it holds or `timeout` passes (sentinel/testing/wait.h).
using sentinel::testing::WaitFor;

}  // namespace sentinel::itest
