// Shared machinery of the built-in rule tests (tests/rules/).
//
// A rule test creates a real condition on this host with real processes
// (TestProcess), takes one scan with the real procmond binary into a fresh
// event store (RuleLiveTest::Scan), runs the rule file from rules/ through the
// real sandboxed runner (RuleLiveTest::Run) and looks for the rows of its own
// processes by pid. It never asserts anything about other processes: the host
// running the tests may legitimately match rules (test binaries under /tmp,
// for instance).
//
// Every process a test starts leads its own session and process group (no
// controlling terminal is inherited from whoever runs the tests) and is
// killed (SIGKILL to the group, by id) and reaped when its TestProcess is
// destroyed.
// Sockets are loopback only. Test-only; single-threaded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/detection/rule_runner.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::rules_test {

using namespace std::chrono_literals;

// A row's integer column, or `missing` when it is absent or NULL. A rule's
// row can hold NULL where the process is not in the latest scan (a parent
// started since), and the host's other processes (tests running beside
// this one) can be reported too: json::value() would throw on those.
inline int64_t IntOf(const nlohmann::json& row, const char* column, int64_t missing = -1) {
  auto it = row.find(column);
  return it != row.end() && it->is_number_integer() ? it->get<int64_t>() : missing;
}

// Paths of the tree and of the binaries under test.
std::string RulesDir();                       // <source>/rules
std::string RuleFile(const std::string& id);  // <source>/rules/<id>.yaml
std::string DocsRulesFile();                  // <source>/docs/rules.md
std::string ProcmondBin();
std::string ProbeBin();  // tests/rules/rule_probe
// An installed program ("sleep" -> /usr/bin/sleep or /bin/sleep); "" if none.
std::string SystemBinary(const std::string& name);
// The dynamic loader programs name as their interpreter (/lib64/ld-linux-x86-64.so.2); "" if unknown.
std::string ProgramInterpreter();
// A directory that is neither world-writable nor hidden (next to procmond in the build tree).
std::string PlainDirectory();

struct SpawnOptions {
  // Environment edits applied to ours: "NAME=VALUE" sets, "NAME" removes.
  // LD_PRELOAD and LD_AUDIT are always removed first.
  std::vector<std::string> env;
  // Descriptors for the child's 0, 1, 2 (dup2'ed); -1 is /dev/null.
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  // Run as this uid (gid and supplementary groups set to the same id). Root only.
  std::optional<uid_t> uid;
  // Make this terminal (a pty slave) the controlling terminal of the new session.
  int controlling_tty = -1;
  // Copy the executable into a memfd and fexecve() it (fileless execution).
  bool from_memfd = false;
};

// A process started by a test: the leader of its own session and process group.
class TestProcess {
 public:
  // fork + exec `path` with `argv` (argv[0] may differ from the path, as with
  // `exec -a`). Returns once the exec succeeded (fails the test and returns
  // nullptr when it did not).
  static std::unique_ptr<TestProcess> Start(const std::string& path, const std::vector<std::string>& argv,
                                            const SpawnOptions& options = {});
  // fork and run `body` in the child, which exits when `body` returns.
  static std::unique_ptr<TestProcess> Fork(const std::function<void()>& body);

  ~TestProcess();
  TestProcess(const TestProcess&) = delete;
  TestProcess& operator=(const TestProcess&) = delete;

  pid_t pid() const { return pid_; }

 private:
  explicit TestProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

// /proc readers for readiness checks ("" / nullopt when the process is gone).
std::string ExeLink(pid_t pid);
std::string Comm(pid_t pid);
std::optional<uid_t> EffectiveUid(pid_t pid);

// Polls `pred` every 20 ms until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s);
// The first child of `parent` whose comm satisfies `pred`, waited for.
std::optional<pid_t> WaitForChild(pid_t parent, const std::function<bool(const std::string&)>& pred,
                                  std::chrono::milliseconds timeout = 10s);

// A TCP listener on 127.0.0.1 (ephemeral port) and a connected client
// socket, for shells whose standard streams are a network connection.
class LoopbackConnection {
 public:
  LoopbackConnection();
  ~LoopbackConnection();
  LoopbackConnection(const LoopbackConnection&) = delete;
  LoopbackConnection& operator=(const LoopbackConnection&) = delete;
  int port() const { return port_; }
  int client_fd() const { return client_; }  // hand this to the shell
  bool ok() const { return client_ >= 0; }

 private:
  int listener_ = -1, client_ = -1, accepted_ = -1;
  int port_ = 0;
};

// procmond as a daemon: the store paths, the control socket directory and
// $HOME under `dir` plus `settings` ("SENTINELD_...=value"; the caller's own
// SENTINELD_ variables are dropped), stderr in `dir`/`log_name`; as root it
// drops to nobody. Stopped with SIGTERM (queued writes flushed) by Stop() or
// the destructor.
class ProcmondDaemon {
 public:
  ProcmondDaemon(const std::string& dir, const std::string& db, const std::vector<std::string>& settings,
                 const std::string& log_name);
  ~ProcmondDaemon() { Stop(); }
  ProcmondDaemon(const ProcmondDaemon&) = delete;
  ProcmondDaemon& operator=(const ProcmondDaemon&) = delete;
  bool running() const { return pid_ > 0; }
  void Stop();
  std::string Log() const;

 private:
  std::string err_;
  pid_t pid_ = -1;
};

// Copies `src` to `dst` (creating parent directories) with mode `mode`.
void CopyExecutable(const std::string& src, const std::string& dst, unsigned mode = 0755);

// A directory made with mkdtemp under `parent` (default /tmp, regardless of
// TMPDIR, so tests know exactly where their binaries are), removed with
// everything in it on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent = "/tmp");
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& rel) const { return path_ + "/" + rel; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

int64_t NowMs();

// The probe at `bin` re-executing itself from a memfd named `memfd_name`
// (RULE_PROBE_MEMFD_REEXEC, rule_probe.cc), sealed as runc seals its copy
// when `sealed`; returns once it runs from the memfd (a test failure and
// nullptr otherwise).
std::unique_ptr<TestProcess> StartMemfdReexec(const std::string& bin, const std::string& memfd_name,
                                              bool sealed);

// An installed container runtime: the probe as /usr/local/sbin/runc
// (root-owned, 0755) on a tmpfs mounted there; call it inside a
// PrivateMountNamespace. *foreign: another image (the probe with a byte
// appended) in `work`. Returns the runtime's path ("" and a test failure when
// the mount failed).
std::string InstallRuntimeBinary(const ScratchDir& work, std::string* foreign);

// Moves this (single-threaded) test process, and so every process it starts
// from then on (procmond included), into a mount namespace of its own with
// private propagation: mounts made meanwhile never reach the host. Back to
// the original namespace on destruction. Root only.
class PrivateMountNamespace {
 public:
  PrivateMountNamespace();
  ~PrivateMountNamespace();
  PrivateMountNamespace(const PrivateMountNamespace&) = delete;
  PrivateMountNamespace& operator=(const PrivateMountNamespace&) = delete;
  const std::string& error() const { return error_; }  // "" when it worked

 private:
  int original_ = -1;
  std::string error_;
};

// Base fixture: a scratch directory under /tmp, scans, rule runs, row checks.
class RuleLiveTest : public ::testing::Test {
 protected:
  // Runs `procmond --once` into a fresh event store; returns its path ("" and
  // a test failure when procmond fails).
  std::string Scan();
  // Loads rules/<id>.yaml and runs it over `db` (read-only) with the scan ids
  // filled in. A load, sandbox or run error fails the test.
  detection::RuleResult Run(const std::string& id, const std::string& db);
  // Scan() then Run().
  detection::RuleResult ScanAndRun(const std::string& id);
  // Run() of an `on: exec` rule: over the scan's processes, then over every
  // stored exec event; one row per dedup key (as alerts are).
  static detection::RuleResult RunExecRule(storage::Database& store, const detection::Rule& rule,
                                           const detection::RunParams& params);

  // The rows whose "pid" column is `pid`.
  static std::vector<nlohmann::ordered_json> RowsFor(const detection::RuleResult& r, pid_t pid);
  // Expects exactly one row for `pid`, with the columns every rule must
  // return (pid, name, exe_path); returns it (an empty object otherwise).
  static nlohmann::ordered_json ExpectOneRow(const detection::RuleResult& r, pid_t pid);
  // Expects no row for any of `pids`.
  static void ExpectNoRows(const detection::RuleResult& r, const std::vector<pid_t>& pids);
  static std::string Describe(const detection::RuleResult& r);

  const ScratchDir& work() const { return work_; }
  static bool IsRoot();

 private:
  ScratchDir work_;
  int scans_ = 0;
};

}  // namespace sentinel::rules_test
