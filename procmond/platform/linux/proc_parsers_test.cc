#include "procmond/platform/linux/proc_parsers.h"

#include <gtest/gtest.h>

namespace sentinel::procmond::linux_proc {
namespace {

// Captured from a real bash on this kernel.
constexpr std::string_view kBashStat =
    "4242 (bash) S 4000 4242 4242 34816 4300 4194560 1203 5030 0 1 2 3 7 4 20 0 1 0 123456 9572352 1290 "
    "18446744073709551615 1 1 0 0 0 0 65536 3686404 1266761467 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

TEST(ProcParsersTest, ParsesStat) {
  auto f = ParseStat(kBashStat);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->pid, 4242);
  EXPECT_EQ(f->comm, "bash");
  EXPECT_EQ(f->state, 'S');
  EXPECT_EQ(f->ppid, 4000);
  EXPECT_EQ(f->tty_nr, 34816);
  EXPECT_EQ(f->utime_ticks, 2u);
  EXPECT_EQ(f->stime_ticks, 3u);
  EXPECT_EQ(f->num_threads, 1);
  EXPECT_EQ(f->starttime_ticks, 123456u);
  EXPECT_EQ(f->rss_pages, 1290);
}

TEST(ProcParsersTest, HostileCommWithParensSpacesAndNewlines) {
  std::string stat = "77 (a) S 1 (b\n) c) R 99 77 77 0 -1 4194304 0 0 0 0 5 6 0 0 20 0 3 0 555 0 10 0 0 0\n";
  auto f = ParseStat(stat);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->comm, "a) S 1 (b\n) c");
  EXPECT_EQ(f->state, 'R');
  EXPECT_EQ(f->ppid, 99);
  EXPECT_EQ(f->num_threads, 3);
  EXPECT_EQ(f->starttime_ticks, 555u);
}

TEST(ProcParsersTest, KernelThreadAndZombie) {
  auto k = ParseStat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 1 0 0 0 0 0\n");
  ASSERT_TRUE(k.ok());
  EXPECT_NE(k->flags & 0x00200000, 0u);
  auto z = ParseStat("900 (defunct) Z 1 900 900 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 77 0 0 0 0 0\n");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(StateName(z->state), "zombie");
  EXPECT_EQ(StateName('D'), "disk-sleep");
  EXPECT_EQ(StateName('I'), "idle");
}

// Fields 26-28 and 45-51 (code, stack, argv, environment addresses) make
// the exec signature: a new layout (an execve) gives a new one; all zero
// (kernel thread, zombie, not ptrace-readable) gives 0.
TEST(ProcParsersTest, ExecSignatureFollowsTheImageLayout) {
  auto line = [](const std::string& code, const std::string& stack, const std::string& args) {
    return "4242 (sshd) S 1 4242 4242 0 -1 4194560 0 0 0 0 2 3 0 0 20 0 1 0 123456 9000000 1290 "
           "18446744073709551615 " +
           code + " " + code + "9 " + stack + " 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 " + code + "7 " + code +
           "8 94000 " + args + " " + args + "5 " + args + "9 " + args + "99 0\n";
  };
  auto a = ParseStat(line("94660343390208", "140728809069056", "140728809073068"));
  auto same = ParseStat(line("94660343390208", "140728809069056", "140728809073068"));
  auto exec = ParseStat(line("94435188809728", "140727016272912", "140727016274371"));
  auto args_moved = ParseStat(line("94660343390208", "140728809069056", "140728809073100"));
  ASSERT_TRUE(a.ok() && same.ok() && exec.ok() && args_moved.ok()) << a.status().ToString();
  EXPECT_NE(a->exec_sig, 0u);
  EXPECT_EQ(a->exec_sig, same->exec_sig);
  EXPECT_NE(a->exec_sig, exec->exec_sig);
  EXPECT_NE(a->exec_sig, args_moved->exec_sig);
  EXPECT_EQ(a->rss_pages, 1290);  // the fields before are unaffected
  auto kthread = ParseStat(
      "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 1 0 0 "
      "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
  ASSERT_TRUE(kthread.ok());
  EXPECT_EQ(kthread->exec_sig, 0u);
  EXPECT_EQ(ParseStat("2 (k) S 0 0 0 0 -1 0 0 0 0 0 0 1 0 0 20 0 1 0 1 0 0 0\n")->exec_sig, 0u)
      << "short line";
}

TEST(ProcParsersTest, RejectsGarbledStat) {
  EXPECT_FALSE(ParseStat("").ok());
  EXPECT_FALSE(ParseStat("12 (x S 1").ok());
  EXPECT_FALSE(ParseStat("12 (x) S 1 2 3").ok());                                         // truncated
  EXPECT_FALSE(ParseStat("x (y) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0").ok());  // bad pid
  EXPECT_FALSE(ParseStat("1 (y) S z 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0").ok());  // bad ppid
}

TEST(ProcParsersTest, ParsesStatus) {
  auto s = ParseStatus(
      "Name:\tsudo\nUmask:\t0022\nState:\tS (sleeping)\nPPid:\t4242\nUid:\t1000\t0\t0\t0\n"
      "Gid:\t1000\t1000\t1000\t1000\nThreads:\t1\nVmRSS:\t    5120 kB\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name, "sudo");
  EXPECT_EQ(s->ppid, 4242);
  EXPECT_EQ(s->ruid, 1000);
  EXPECT_EQ(s->euid, 0);
  EXPECT_EQ(s->rgid, 1000);
  EXPECT_EQ(s->threads, 1);
  EXPECT_EQ(s->vm_rss_kb, 5120);
  EXPECT_FALSE(ParseStatus("Uid:\tabc\t0\t0\t0\n").ok());
  EXPECT_FALSE(ParseStatus("garbage").ok());
}

TEST(ProcParsersTest, ParsesCmdline) {
  EXPECT_EQ(ParseCmdline(std::string_view("ls\0-la\0/tmp\0", 11)),
            (std::vector<std::string>{"ls", "-la", "/tmp"}));
  EXPECT_TRUE(ParseCmdline("").empty());
  EXPECT_EQ(ParseCmdline("nginx: worker process"), (std::vector<std::string>{"nginx: worker process"}));
  EXPECT_EQ(ParseCmdline(std::string_view("a\0\0b\0", 5)), (std::vector<std::string>{"a", "", "b"}));
}

TEST(ProcParsersTest, BootTimeAndExe) {
  EXPECT_EQ(*ParseBootTime("cpu  1 2 3\nbtime 1764331200\nprocesses 5\n"), 1764331200);
  EXPECT_FALSE(ParseBootTime("cpu 1 2 3\n").ok());
  auto d = ClassifyExe("/tmp/x (deleted)");
  EXPECT_TRUE(d.deleted);
  EXPECT_FALSE(d.memfd);
  auto m = ClassifyExe("/memfd:payload (deleted)");
  EXPECT_TRUE(m.memfd);
  EXPECT_TRUE(m.deleted);
}

TEST(ProcParsersTest, TtyNames) {
  EXPECT_EQ(TtyName(0), std::nullopt);
  EXPECT_EQ(TtyName(34816), "pts/0");  // 136:0
  EXPECT_EQ(TtyName((136 << 8) | 3), "pts/3");
  EXPECT_EQ(TtyName((137 << 8) | 4), "pts/260");                  // 137:4
  EXPECT_EQ(TtyName((0x10 << 20) | (136 << 8) | 5), "pts/4101");  // minor 0x1005: high bits at 20+
  EXPECT_EQ(TtyName((4 << 8) | 1), "tty1");
  EXPECT_EQ(TtyName((4 << 8) | 64), "ttyS0");
  EXPECT_EQ(TtyName((5 << 8) | 1), "console");
  EXPECT_EQ(TtyName((188 << 8) | 2), "ttyUSB2");
  EXPECT_EQ(TtyName((250 << 8) | 7), "250:7");
}

TEST(ProcParsersTest, Cgroup) {
  EXPECT_EQ(*ParseCgroup("0::/user.slice/user-1000.slice/session-2.scope\n"),
            "/user.slice/user-1000.slice/session-2.scope");
  EXPECT_EQ(*ParseCgroup("0::/\n"), "/");
  // Captured on a hybrid host: v1 hierarchies first, the v2 entry last.
  EXPECT_EQ(*ParseCgroup("9:name=systemd:/\n4:memory:/process_api/14ba\n1:cpu:/\n0::/\n"), "/");
  EXPECT_EQ(*ParseCgroup("9:name=systemd:/system.slice/ssh.service\n4:memory:/x\n"),
            "/system.slice/ssh.service");
  // A cgroup whose name contains a newline (pure v2 host): kept whole.
  EXPECT_EQ(*ParseCgroup("0::/evil\nname\n"), "/evil\nname");
  EXPECT_EQ(*ParseCgroup("0::/a b:c\n"), "/a b:c");
  EXPECT_FALSE(ParseCgroup("").ok());
  EXPECT_FALSE(ParseCgroup("0::\n").ok());
  EXPECT_FALSE(ParseCgroup("garbage\n").ok());
  EXPECT_FALSE(ParseCgroup("4:memory:/x\n").ok());
}

TEST(ProcParsersTest, NamespaceLinks) {
  EXPECT_EQ(*ParseNsLink("pid:[4026531836]", "pid"), 4026531836u);
  EXPECT_EQ(*ParseNsLink("net:[4026531840]", "net"), 4026531840u);
  EXPECT_FALSE(ParseNsLink("net:[4026531840]", "pid").ok());
  EXPECT_FALSE(ParseNsLink("pid:[]", "pid").ok());
  EXPECT_FALSE(ParseNsLink("pid:[-5]", "pid").ok());
  EXPECT_FALSE(ParseNsLink("pid:[+5]", "pid").ok());
  EXPECT_FALSE(ParseNsLink("pid:[12x]", "pid").ok());
  EXPECT_FALSE(ParseNsLink("pid:[12", "pid").ok());
  EXPECT_FALSE(ParseNsLink("pid:12]", "pid").ok());
  EXPECT_FALSE(ParseNsLink("", "pid").ok());
}

TEST(ProcParsersTest, FdTargets) {
  auto pipe = ClassifyFdTarget("pipe:[123456]");
  EXPECT_EQ(pipe.type, "pipe");
  EXPECT_EQ(pipe.inode, 123456u);
  EXPECT_TRUE(pipe.path.empty());
  auto sock = ClassifyFdTarget("socket:[99]");
  EXPECT_EQ(sock.type, "socket");
  EXPECT_EQ(sock.inode, 99u);
  EXPECT_EQ(ClassifyFdTarget("/dev/null").type, "null");
  EXPECT_TRUE(ClassifyFdTarget("/dev/null").path.empty());
  EXPECT_EQ(ClassifyFdTarget("/dev/pts/3").type, "tty");
  EXPECT_EQ(ClassifyFdTarget("/dev/pts/3").path, "/dev/pts/3");
  EXPECT_EQ(ClassifyFdTarget("/dev/ttyS0").type, "tty");
  EXPECT_EQ(ClassifyFdTarget("/dev/console").type, "tty");
  auto file = ClassifyFdTarget("/var/log/app.log (deleted)");
  EXPECT_EQ(file.type, "file");
  EXPECT_EQ(file.path, "/var/log/app.log (deleted)");
  EXPECT_EQ(ClassifyFdTarget("/dev/nullx").type, "file");
  auto anon = ClassifyFdTarget("anon_inode:[eventfd]");
  EXPECT_EQ(anon.type, "anon");
  EXPECT_EQ(anon.path, "anon_inode:[eventfd]");
  // Lookalikes are not pipes or sockets.
  EXPECT_EQ(ClassifyFdTarget("pipe:[12x]").type, "anon");
  EXPECT_EQ(ClassifyFdTarget("pipe:[]").type, "anon");
  EXPECT_EQ(ClassifyFdTarget("socket:[-1]").type, "anon");
  EXPECT_EQ(ClassifyFdTarget("/tmp/pipe:[1]").type, "file");
  EXPECT_EQ(ClassifyFdTarget("").type, "anon");
}

TEST(ProcParsersTest, LoaderEnvNamesOnly) {
  using namespace std::string_literals;
  EXPECT_TRUE(LoaderEnvNames("").empty());
  EXPECT_TRUE(LoaderEnvNames("HOME=/root\0PATH=/bin\0"s).empty());
  EXPECT_EQ(LoaderEnvNames("LD_AUDIT=/a.so\0HOME=/\0LD_PRELOAD=/p.so\0LD_PRELOAD=/q.so\0"s),
            (std::vector<std::string>{"LD_PRELOAD", "LD_AUDIT"}));
  EXPECT_EQ(LoaderEnvNames("LD_LIBRARY_PATH="s),
            (std::vector<std::string>{"LD_LIBRARY_PATH"}));  // empty value, no NUL
  // Not variables or not these names: no '=', a prefix/suffix, a value that
  // looks like an assignment, different case.
  EXPECT_TRUE(
      LoaderEnvNames("LD_PRELOAD\0XLD_PRELOAD=1\0LD_PRELOADX=1\0A=LD_PRELOAD=1\0ld_preload=1\0"s).empty());
  // Garbage bytes and an unterminated last entry.
  EXPECT_EQ(LoaderEnvNames("\xff\xfe=\0\0\0=x\0LD_AUDIT=/x"s), (std::vector<std::string>{"LD_AUDIT"}));
}

TEST(ProcParsersTest, CmdlineIntoReusesAndTrims) {
  using namespace std::string_literals;
  std::vector<std::string> args = {std::string(100, 'x'), "b", "c", "d"};
  ParseCmdlineInto("one\0two\0"s, &args);
  EXPECT_EQ(args, (std::vector<std::string>{"one", "two"}));
  ParseCmdlineInto("a\0\0b c\0d\0e"s, &args);  // empty argument, spaces, unterminated last
  EXPECT_EQ(args, (std::vector<std::string>{"a", "", "b c", "d", "e"}));
  EXPECT_EQ(args, ParseCmdline("a\0\0b c\0d\0e"s));
  ParseCmdlineInto("", &args);
  EXPECT_TRUE(args.empty());
}

}  // namespace
}  // namespace sentinel::procmond::linux_proc
