#include "procmond/realtime/event_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "procmond/batch_writer.h"
#include "procmond/platform/linux/boot_clock.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "procmond/realtime/proc_reads.h"
#include "sentinel/testing/temp_dir.h"

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
  ASSERT_NE(c.rows[0].command_encoded, nullptr);
  EXPECT_EQ(c.rows[0].command_encoded->json, models::EncodeCommandLine({"a", "b c"}));
  EXPECT_EQ(c.rows[0].command_encoded->text, "a b c");
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
  for (int i = 0; i < 100; ++i) EXPECT_EQ(c.rows[i].command_encoded->text, std::to_string(i)) << "order kept";
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

// Parent fields (issue 16): from the parent's own exec event, checked
// against the parent's start time (a reused pid is another process), and
// forgotten when the parent exits.
TEST(EventWriterTest, ParentFieldsComeFromTheParentsExecEventCheckedByStartTimeAndDroppedAtExit) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.proc_root = "/nonexistent-proc";  // no /proc fallback here
  opts.hash_executables = false;
  EventWriter w(Collect(&c), &stats, opts);
  RealtimeEvent parent = Exec(500, "/bin/sh", {"sh", "-c", "curl x | sh"});
  parent.comm = "sh";
  parent.start_boottime_ns = 1'000'000'000;
  const models::ProcessEvent prow = w.ToRow(parent);
  EXPECT_EQ(prow.start_time_ms, ProcessBootClock().StartTimeMs(1'000'000'000));

  RealtimeEvent child = Exec(501, "/usr/bin/curl", {"curl", "x"});
  child.ppid = 500;
  child.start_boottime_ns = 2'000'000'000;
  child.parent_start_boottime_ns = 1'000'000'000;
  models::ProcessEvent row = w.ToRow(child);
  EXPECT_EQ(row.parent_exe_path, "/bin/sh");
  EXPECT_EQ(row.parent_name, "sh");
  ASSERT_NE(row.parent_command_encoded, nullptr);
  EXPECT_EQ(row.parent_command_encoded->json, models::EncodeCommandLine({"sh", "-c", "curl x | sh"}));
  EXPECT_EQ(row.parent_command_encoded->text, "sh -c curl x | sh");
  EXPECT_EQ(row.parent_start_time_ms, prow.start_time_ms);

  // Same pid, another start time: not that parent.
  child.parent_start_boottime_ns = 3'000'000'000;
  row = w.ToRow(child);
  EXPECT_FALSE(row.parent_exe_path.has_value());
  EXPECT_EQ(row.parent_command_encoded, nullptr);
  EXPECT_EQ(row.parent_start_time_ms, ProcessBootClock().StartTimeMs(3'000'000'000));

  // An exit of an earlier process with that pid keeps the entry; the parent's own exit drops it.
  RealtimeEvent exit;
  exit.type = RealtimeEventType::kExit;
  exit.pid = 500;
  exit.start_boottime_ns = 500'000'000;
  w.ToRow(exit);
  child.parent_start_boottime_ns = 1'000'000'000;
  EXPECT_EQ(w.ToRow(child).parent_name, "sh");
  exit.start_boottime_ns = 1'000'000'000;
  w.ToRow(exit);
  EXPECT_FALSE(w.ToRow(child).parent_name.has_value());
}

// A parent that never exec'd while procmond watched: /proc/PPID, if it is
// still the process the kernel named (same start time).
TEST(EventWriterTest, AParentThatDidNotExecIsReadFromProcWhenItsStartTimeMatches) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.hash_executables = false;
  EventWriter w(Collect(&c), &stats, opts);
  std::string stat;
  ASSERT_TRUE(ReadSmallFile("/proc/self/stat", &stat));
  auto fields = linux_proc::ParseStat(stat);
  ASSERT_TRUE(fields.ok());
  RealtimeEvent child = Exec(999999, "/bin/true", {"true"});
  child.ppid = getpid();
  child.parent_start_boottime_ns = fields->starttime_ticks * NsPerClockTick();
  const models::ProcessEvent row = w.ToRow(child);
  EXPECT_EQ(row.parent_exe_path, ReadLinkText("/proc/self/exe"));
  EXPECT_EQ(row.parent_name, fields->comm);
  ASSERT_NE(row.parent_command_encoded, nullptr);
  EXPECT_NE(row.parent_command_encoded->json, "[]");
  EXPECT_EQ(row.parent_start_time_ms, ProcessBootClock().StartTimeMsFromTicks(fields->starttime_ticks));

  RealtimeEvent other = Exec(999998, "/bin/true", {"true"});
  other.ppid = getpid() + 1'000'000;  // no such process
  other.parent_start_boottime_ns = 1;
  EXPECT_FALSE(w.ToRow(other).parent_exe_path.has_value());
}

TEST(EventWriterTest, ExecContextReachesTheRow) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.proc_root = "/nonexistent-proc";
  opts.hash_executables = false;
  EventWriter w(Collect(&c), &stats, opts);
  RealtimeEvent ev = Exec(600, "/bin/true", {"true"});
  ev.argv_truncated = true;
  ev.start_boottime_ns = 7'000'000'000;
  ev.cwd = "/tmp/work dir";
  ev.login_uid = 1000;
  ev.tty = "pts/3";
  ev.euid = 0;
  ev.egid = 0;
  ev.cred_change = true;
  ev.env = ExecEnv{{{"LD_PRELOAD", "/tmp/x.so"}}, true};
  const models::ProcessEvent row = w.ToRow(ev);
  EXPECT_EQ(row.start_time_ms, ProcessBootClock().StartTimeMs(7'000'000'000));
  EXPECT_EQ(row.cwd, "/tmp/work dir");
  EXPECT_EQ(row.login_uid, 1000);
  EXPECT_EQ(row.tty, "pts/3");
  EXPECT_EQ(row.effective_uid, 0);
  EXPECT_EQ(row.cred_change, true);
  ASSERT_TRUE(row.env.has_value());
  EXPECT_EQ(*row.env, (std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", "/tmp/x.so"}}));
  EXPECT_EQ(row.env_truncated, true);
  EXPECT_EQ(row.args_truncated, true);
}

// The kernel's identity of the executed image: when the path still leads to
// it, the hash comes without /proc (and from the cache the second time); a
// path that leads to another file now is left to the /proc/PID/exe logic.
// The identity the kernel reports for the file at `path` now.
ExecImage ImageAt(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  ExecImage img;
  img.dev = st.st_dev;
  img.ino = st.st_ino;
  img.size = st.st_size;
  img.mtime_ns = IdentityNs(st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  img.ctime_ns = IdentityNs(st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  img.nlink = 1;
  return img;
}

TEST(EventWriterTest, AnImageTheKernelIdentifiedIsHashedByPathWhenThePathStillLeadsToIt) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.proc_root = "/nonexistent-proc";
  EventWriter w(Collect(&c), &stats, opts);
  RealtimeEvent ev = Exec(700, "/bin/sh", {"sh"});
  ev.image = ImageAt("/bin/sh");
  const auto first = w.ToRow(ev).exe_hash;
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(w.ToRow(ev).exe_hash, first);
  EXPECT_EQ(stats.Get().hashed_by_path, 2);

  ev.image->size += 1;  // the path leads to another file than the one executed
  const models::ProcessEvent row = w.ToRow(ev);
  EXPECT_EQ(row.exe_path, "/bin/sh");
  EXPECT_EQ(stats.Get().hashed_by_path, 3) << "the slow path: process gone, hashed by path";
}

// exe_host_mismatch reuses a path's lookup for a second only while execs of
// that path run the file it found: a file renamed over the path (a package
// upgrade) is looked up again, and so is an image the path does not lead to.
TEST(EventWriterTest, APathLookupIsReusedOnlyForTheImageItFound) {
  Collected c;
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.proc_root = "/nonexistent-proc";
  opts.hash_executables = false;
  EventWriter w(Collect(&c), &stats, opts);
  testing::TempDir dir;
  const std::string path = dir.File("tool");
  const std::string next = dir.File("tool.new");
  testing::WriteFile(path, "#!/bin/true\nv1\n");
  testing::WriteFile(next, "#!/bin/true\nversion 2\n");
  struct stat root {};
  ASSERT_EQ(::stat("/", &root), 0);
  RealtimeEvent ev = Exec(710, path, {"tool"});
  ev.root_dev_ino = std::make_pair(static_cast<uint64_t>(root.st_dev), static_cast<uint64_t>(root.st_ino));
  // After the files' last change (else a change at the path would excuse a mismatch).
  ev.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() +
               60'000;
  ev.image = ImageAt(path);
  EXPECT_EQ(w.ToRow(ev).exe_host_mismatch, false);
  EXPECT_EQ(w.ToRow(ev).exe_host_mismatch, false);
  ASSERT_EQ(::rename(next.c_str(), path.c_str()), 0);
  ev.image = ImageAt(path);
  EXPECT_EQ(w.ToRow(ev).exe_host_mismatch, false) << "the new file at the path is the image";
  ev.image = ImageAt("/bin/sh");
  EXPECT_EQ(w.ToRow(ev).exe_host_mismatch, true) << "an image the path does not lead to";
}

}  // namespace
}  // namespace sentinel::procmond
