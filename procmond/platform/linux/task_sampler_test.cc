#include "procmond/platform/linux/task_sampler.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <linux/types.h>

#include "procmond/bpf/task_iter.h"
#include "procmond/platform/linux/proc_parsers.h"

namespace sentinel::procmond {
namespace {

namespace lp = linux_proc;

// ---------------------------------------------------------------------------
// The decoder, on hand-made streams.

sentinel_task_leader Leader(uint32_t pid, const char* comm) {
  sentinel_task_leader r{};
  r.kind = SENTINEL_TASK_LEADER;
  r.tgid = pid;
  r.ppid = 1;
  r.state = 0x1;  // TASK_INTERRUPTIBLE
  r.nr_threads = 1;
  r.runtime_ns = 1000;
  r.dead_runtime_ns = 20;
  r.rss_pages = 7;
  r.self_exec_id = 3;
  r.uid = 1000;
  r.euid = 0;
  r.gid = 100;
  r.egid = 101;
  r.flags = SENTINEL_TASK_HAS_MM | SENTINEL_TASK_HAS_EXE;
  r.exe_ino = 42;
  r.exe_dev = (8u << 20) | 1;
  std::memcpy(r.comm, comm, std::min(std::strlen(comm), sizeof r.comm - 1));
  return r;
}

sentinel_task_thread Thread(uint32_t tgid, uint64_t ns) {
  sentinel_task_thread t{};
  t.kind = SENTINEL_TASK_THREAD;
  t.tgid = tgid;
  t.runtime_ns = ns;
  return t;
}

template <typename... R>
std::string Stream(const R&... records) {
  std::string s;
  (s.append(reinterpret_cast<const char*>(&records), sizeof records), ...);
  return s;
}

TEST(TaskSamplerDecodeTest, LeadersWithTheirThreadsCpuAdded) {
  auto a = Leader(10, "sshd");
  auto b = Leader(12, "a-very-long-name");  // 15 bytes kept, like the kernel's comm
  std::vector<TaskSample> out;
  ASSERT_TRUE(DecodeTaskRecords(Stream(a, Thread(10, 500), b, Thread(10, 5), Thread(12, 1)), &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].pid, 10);
  EXPECT_EQ(out[0].comm(), "sshd");
  EXPECT_EQ(out[0].cpu_ns, 1000u + 20u + 500u + 5u);
  EXPECT_EQ(out[0].state, 'S');
  EXPECT_EQ(out[0].ruid, 1000u);
  EXPECT_EQ(out[0].euid, 0u);
  EXPECT_EQ(out[0].rgid, 100u);
  EXPECT_EQ(out[0].egid, 101u);
  EXPECT_EQ(out[0].rss_pages, 7);
  EXPECT_EQ(out[0].exec_id, 3u);
  EXPECT_TRUE(out[0].has_exe);
  EXPECT_FALSE(out[0].exe_unlinked);
  EXPECT_EQ(out[0].tty_nr, 0);
  EXPECT_EQ(out[1].comm(), "a-very-long-nam");
  EXPECT_EQ(out[1].cpu_ns, 1000u + 20u + 1u);
}

TEST(TaskSamplerDecodeTest, OutOfOrderIsSortedOrphanThreadsIgnored) {
  std::vector<TaskSample> out;
  ASSERT_TRUE(DecodeTaskRecords(Stream(Leader(30, "b"), Thread(99, 7), Leader(20, "a")), &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].pid, 20);
  EXPECT_EQ(out[1].pid, 30);
  EXPECT_EQ(out[1].cpu_ns, 1020u);
  EXPECT_TRUE(DecodeTaskRecords("", &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(TaskSamplerDecodeTest, DamagedStreamsAreRefusedWhole) {
  std::vector<TaskSample> out;
  const std::string good = Stream(Leader(10, "x"), Thread(10, 1));
  // Cut anywhere inside a record.
  for (size_t cut : {size_t{2}, size_t{30}, good.size() - 1}) {
    Status s = DecodeTaskRecords(good.substr(0, cut), &out);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << cut;
    EXPECT_NE(s.message().find("cut short"), std::string::npos) << s.message();
  }
  auto bad = Leader(10, "x");
  bad.kind = 9;
  Status s = DecodeTaskRecords(Stream(bad), &out);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("unknown record kind 9 at byte 0"), std::string::npos) << s.message();
  EXPECT_EQ(DecodeTaskRecords(Stream(Leader(10, "x"), Leader(5, "y"), Leader(10, "z")), &out).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeTaskRecords(Stream(Leader(0, "x")), &out).code(), StatusCode::kDataLoss);
}

TEST(TaskSamplerDecodeTest, StateLettersAsProcPrintsThem) {
  EXPECT_EQ(TaskStateLetter(0x0, 0), 'R');
  EXPECT_EQ(TaskStateLetter(0x1, 0), 'S');
  EXPECT_EQ(TaskStateLetter(0x2, 0), 'D');
  EXPECT_EQ(TaskStateLetter(0x104, 0), 'T');    // TASK_STOPPED = WAKEKILL | __TASK_STOPPED
  EXPECT_EQ(TaskStateLetter(0x108, 0), 't');    // TASK_TRACED
  EXPECT_EQ(TaskStateLetter(0x80, 0x20), 'Z');  // TASK_DEAD, EXIT_ZOMBIE
  EXPECT_EQ(TaskStateLetter(0x80, 0x10), 'X');  // EXIT_DEAD
  EXPECT_EQ(TaskStateLetter(0x40, 0), 'P');     // TASK_PARKED
  EXPECT_EQ(TaskStateLetter(0x402, 0), 'I');    // TASK_IDLE
  EXPECT_EQ(TaskStateLetter(0x1000, 0), 'D');   // TASK_RTLOCK_WAIT
}

TEST(TaskSamplerDecodeTest, TtyNumbersAsProcEncodesThem) {
  EXPECT_EQ(EncodeTtyNr(136, 3), (136 << 8) | 3);
  EXPECT_EQ(lp::TtyName(EncodeTtyNr(136, 3)), "pts/3");
  EXPECT_EQ(lp::TtyName(EncodeTtyNr(136, 300)), "pts/300");  // minor above 255
  EXPECT_EQ(lp::TtyName(EncodeTtyNr(4, 1)), "tty1");
  EXPECT_EQ(lp::TtyName(EncodeTtyNr(5, 1)), "console");
}

}  // namespace
}  // namespace sentinel::procmond
