#include "procmond/realtime/event_writer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "procmond/batch_writer.h"

namespace sentinel::procmond {
namespace {

struct Collected {
  std::mutex mu;
  std::condition_variable written;  // notified after rows grew
  std::vector<models::ProcessEvent> rows;
  std::atomic<int> failures_left{0};
  std::atomic<int> calls{0};
};

EventWriter::WriteFn Collect(Collected* c) {
  return [c](const std::vector<models::ProcessEvent>& rows) -> Result<int64_t> {
    c->calls++;
    if (c->failures_left.load() > 0) {
      c->failures_left--;
      return UnavailableError("database is locked");
    }
    std::lock_guard lock(c->mu);
    c->rows.insert(c->rows.end(), rows.begin(), rows.end());
    c->written.notify_all();
    return static_cast<int64_t>(rows.size());
  };
}

RealtimeEvent Exec(int64_t pid, std::string path, std::vector<std::string> argv) {
  RealtimeEvent ev;
  ev.type = RealtimeEventType::kExec;
  ev.time_ms = 1000;
  ev.pid = pid;
  ev.ppid = 1;
  ev.uid = 0;
  ev.comm = "comm";
  ev.exe_path = std::move(path);
  ev.argv = std::move(argv);
  return ev;
}

TEST(EventWriterTest, StoresExecAndExitCountsForksWithoutStoringThem) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.flush_ms = 10;
  EventWriter w(Collect(&c), &stats, opts);
  RealtimeEvent fork;
  fork.type = RealtimeEventType::kFork;
  fork.pid = 5;
  EXPECT_TRUE(w.Push(fork));
  EXPECT_TRUE(w.Push(Exec(999999999, "/no/such/file", {"a", "b c"})));
  RealtimeEvent exit;
  exit.type = RealtimeEventType::kExit;
  exit.pid = 5;
  exit.exit_code = 3;
  exit.comm = "x";
  EXPECT_TRUE(w.Push(exit));
  ASSERT_TRUE(w.Stop(10'000).ok());
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[0].event_type, "exec");
  EXPECT_EQ(c.rows[0].command_line, (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(c.rows[0].user_name, "root");
  EXPECT_FALSE(c.rows[0].exe_hash.has_value()) << "neither the process nor the file exists";
  EXPECT_EQ(c.rows[1].event_type, "exit");
  EXPECT_EQ(c.rows[1].exit_code, 3);
  auto s = stats.Get();
  EXPECT_EQ(s.fork_not_stored, 1);
  EXPECT_EQ(s.stored_exec, 1);
  EXPECT_EQ(s.stored_exit, 1);
  EXPECT_EQ(s.hash_skipped, 1);
  EXPECT_FALSE(w.Push(exit)) << "stopped";
  EXPECT_EQ(stats.Get().lost_queue, 1);
}

TEST(EventWriterTest, HashesThroughProcExeAndPrefersTheKernelsLinkWhenThePathDoesNotLeadThere) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.flush_ms = 10;
  EventWriter w(Collect(&c), &stats, opts);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  const std::string self_path(self, static_cast<size_t>(n));
  w.Push(Exec(getpid(), self_path, {"t"}));
  w.Push(Exec(getpid(), "/dev/fd/3", {"t"}));  // fexecve: the link is the better name
  ASSERT_TRUE(w.Stop(10'000).ok());
  ASSERT_EQ(c.rows.size(), 2u);
  ASSERT_TRUE(c.rows[0].exe_hash.has_value());
  EXPECT_EQ(c.rows[0].exe_hash->size(), 64u);
  EXPECT_EQ(c.rows[0].exe_path, self_path);
  EXPECT_EQ(c.rows[1].exe_path, self_path);
  EXPECT_EQ(c.rows[1].exe_hash, c.rows[0].exe_hash);
  EXPECT_EQ(stats.Get().hashed_by_proc_exe, 2);
}

TEST(EventWriterTest, ExecOfAGoneProcessIsHashedByPath) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.flush_ms = 10;
  opts.proc_root = "/nonexistent-proc";
  EventWriter w(Collect(&c), &stats, opts);
  w.Push(Exec(123, "/bin/sh", {"sh"}));
  ASSERT_TRUE(w.Stop(10'000).ok());
  ASSERT_EQ(c.rows.size(), 1u);
  EXPECT_TRUE(c.rows[0].exe_hash.has_value());
  EXPECT_EQ(stats.Get().hashed_by_path, 1);
}

// collection.hash_executables changed by a SIGHUP reached the scans but not the real-time events
// (issue 14, item 8): events enriched after SetHashing follow the new values.
TEST(EventWriterTest, SetHashingAppliesToTheEventsEnrichedAfterIt) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.proc_root = "/nonexistent-proc";
  EventWriter w(Collect(&c), &stats, opts);
  EXPECT_TRUE(w.ToRow(Exec(123, "/bin/sh", {"sh"})).exe_hash.has_value());
  w.SetHashing(false, opts.max_hash_bytes);
  EXPECT_FALSE(w.ToRow(Exec(124, "/bin/sh", {"sh"})).exe_hash.has_value());
  w.SetHashing(true, 1);  // /bin/sh is larger than 1 byte: skipped as too large
  EXPECT_FALSE(w.ToRow(Exec(125, "/bin/sh", {"sh"})).exe_hash.has_value());
  w.SetHashing(true, opts.max_hash_bytes);
  EXPECT_TRUE(w.ToRow(Exec(126, "/bin/sh", {"sh"})).exe_hash.has_value());
  ASSERT_TRUE(w.Stop(10'000).ok());
}

// A lone event in a quiet moment is written after flush_ms, not held back
// until a batch fills up or procmond stops.
TEST(EventWriterTest, ALoneEventIsWrittenWithoutWaitingForABatch) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.flush_ms = 10;
  EventWriter w(Collect(&c), &stats, opts);
  w.Push(Exec(1, "/no", {"lone"}));
  {
    std::unique_lock lock(c.mu);
    EXPECT_TRUE(c.written.wait_for(lock, std::chrono::seconds(10), [&] { return !c.rows.empty(); }))
        << "the event was still queued after 10 s";
  }
  ASSERT_TRUE(w.Stop(10'000).ok());
}

TEST(EventWriterTest, AFailedWriteIsRetriedAndNothingIsLost) {
  Collected c;
  c.failures_left = 2;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.flush_ms = 5;
  opts.initial_backoff_ms = 5;
  EventWriter w(Collect(&c), &stats, opts);
  for (int i = 0; i < 100; ++i) w.Push(Exec(1000 + i, "/no", {std::to_string(i)}));
  ASSERT_TRUE(w.Stop(30'000).ok());
  ASSERT_EQ(c.rows.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ((*c.rows[i].command_line)[0], std::to_string(i)) << "order kept";
  EXPECT_GE(c.calls.load(), 3);
  EXPECT_EQ(stats.Get().lost_write, 0);
}

TEST(EventWriterTest, EventsThatCannotBeWrittenByTheDeadlineAreCountedAsLost) {
  Collected c;
  c.failures_left = 1'000'000;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.flush_ms = 5;
  opts.initial_backoff_ms = 5;
  EventWriter w(Collect(&c), &stats, opts);
  for (int i = 0; i < 10; ++i) w.Push(Exec(1000 + i, "/no", {"x"}));
  Status st = w.Stop(200);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not written"), std::string::npos);
  EXPECT_EQ(stats.Get().lost_write + static_cast<int64_t>(c.rows.size()), 10);
  EXPECT_EQ(stats.Get().lost_write, 10);
}

// A full disk at shutdown (issue 14 item 6): a failing batch gets
// kStopAttempts more tries once Stop() is called, then it and the queue are
// counted as lost_write, instead of retrying until the deadline.
TEST(EventWriterTest, StopOnAFailingStoreGivesUpAfterAFewTries) {
  Collected c;
  c.failures_left = 1'000'000'000;
  RealtimeStats stats;
  WriteHealth health;
  EventWriterOptions opts;
  opts.flush_ms = 1;
  opts.initial_backoff_ms = 1;
  opts.max_backoff_ms = 1;
  opts.health = &health;
  EventWriter w(Collect(&c), &stats, opts);
  for (int i = 0; i < 10; ++i) w.Push(Exec(1000 + i, "/no", {"x"}));
  while (c.calls.load() < 2) std::this_thread::yield();
  EXPECT_TRUE(health.Get().failing);
  const int before = c.calls.load();
  Status st = w.Stop(60'000);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("10 real-time event(s) not written"), std::string::npos) << st.message();
  EXPECT_EQ(stats.Get().lost_write, 10);
  EXPECT_LE(c.calls.load() - before, kStopAttempts + 1) << "retried up to the deadline";
}

}  // namespace
}  // namespace sentinel::procmond
