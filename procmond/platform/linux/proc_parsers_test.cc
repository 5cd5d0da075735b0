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

TEST(ProcParsersTest, RejectsGarbledStat) {
  EXPECT_FALSE(ParseStat("").ok());
  EXPECT_FALSE(ParseStat("12 (x S 1").ok());
  EXPECT_FALSE(ParseStat("12 (x) S 1 2 3").ok());                         // truncated
  EXPECT_FALSE(ParseStat("x (y) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0").ok());  // bad pid
  EXPECT_FALSE(ParseStat("1 (y) S z 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0").ok());  // bad ppid
}

TEST(ProcParsersTest, ParsesStatus) {
  auto s = ParseStatus("Name:\tsudo\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\n"
                       "Gid:\t1000\t1000\t1000\t1000\nThreads:\t1\nVmRSS:\t    5120 kB\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name, "sudo");
  EXPECT_EQ(s->ruid, 1000);
  EXPECT_EQ(s->euid, 0);
  EXPECT_EQ(s->rgid, 1000);
  EXPECT_EQ(s->threads, 1);
  EXPECT_EQ(s->vm_rss_kb, 5120);
  EXPECT_FALSE(ParseStatus("Uid:\tabc\t0\t0\t0\n").ok());
  EXPECT_FALSE(ParseStatus("garbage").ok());
}

TEST(ProcParsersTest, ParsesCmdline) {
  EXPECT_EQ(ParseCmdline(std::string_view("ls\0-la\0/tmp\0", 11)), (std::vector<std::string>{"ls", "-la", "/tmp"}));
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

}  // namespace
}  // namespace sentinel::procmond::linux_proc
