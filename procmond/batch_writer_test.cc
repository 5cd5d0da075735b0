#include "procmond/batch_writer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

models::ScanRecord ScanAt(int64_t t) {
  models::ScanRecord s;
  s.started_at_ms = t;
  s.completed_at_ms = t + 1;
  models::ProcessRecord p;
  p.pid = 1;
  p.name = "init";
  p.start_time_ms = 1;
  s.processes.push_back(p);
  return s;
}

// A write function that fails its first `failures` calls as a full disk
// would, then records the scans it writes (by started_at_ms).
struct FlakyStore {
  explicit FlakyStore(int failures) : fail_next(failures) {}
  BatchWriter::WriteFn Writer() {
    return [this](const models::ScanRecord& s) -> Result<int64_t> {
      if (fail_next > 0) {
        --fail_next;
        return ResourceExhaustedError("database or disk is full");
      }
      std::lock_guard l(mu);
      written.push_back(s.started_at_ms);
      return static_cast<int64_t>(written.size());
    };
  }
  std::atomic<int> fail_next;
  std::mutex mu;
  std::vector<int64_t> written;
};

// Each scan comes back once written (and only then), for its records to be
// reused; a failed write keeps it queued and recycles nothing.
TEST(BatchWriterTest, WrittenScansAreHandedBackForReuse) {
  FlakyStore store(1);
  std::mutex& mu = store.mu;
  std::vector<int64_t>& written = store.written;
  std::vector<int64_t> recycled;
  BatchWriter w(store.Writer(), nullptr, BatchWriterOptions{2, 5, 20}, [&](models::ScanRecord&& s) {
    std::lock_guard l(mu);
    EXPECT_EQ(s.processes.size(), 1u);
    // Written before it came back.
    EXPECT_NE(std::find(written.begin(), written.end(), s.started_at_ms), written.end());
    recycled.push_back(s.started_at_ms);
  });
  ASSERT_TRUE(w.Submit(ScanAt(100)));
  ASSERT_TRUE(w.Submit(ScanAt(200)));
  ASSERT_TRUE(w.Stop(5000).ok());
  EXPECT_EQ(recycled, (std::vector<int64_t>{100, 200}));
}

TEST(BatchWriterTest, FailedWritesAreRetriedInOrderAndNothingIsLost) {
  FlakyStore store(3);
  std::vector<int64_t>& written = store.written;
  BatchWriter w(store.Writer(), nullptr, BatchWriterOptions{2, 5, 20});
  ASSERT_TRUE(w.Submit(ScanAt(100)));
  ASSERT_TRUE(w.Submit(ScanAt(200)));
  ASSERT_TRUE(w.Submit(ScanAt(300)));  // blocks until a slot frees: backpressure
  ASSERT_TRUE(w.Flush(5000).ok());
  EXPECT_EQ(written, (std::vector<int64_t>{100, 200, 300}));
  auto st = w.stats();
  EXPECT_EQ(st.write_failures, 3);
  EXPECT_EQ(st.scans_written, 3);
  EXPECT_NE(st.last_error.find("full"), std::string::npos);
  EXPECT_TRUE(w.Stop(1000).ok());
  EXPECT_FALSE(w.Submit(ScanAt(400)));
}

TEST(BatchWriterTest, StopReportsScansThatCouldNotBeWritten) {
  BatchWriter w(
      [](const models::ScanRecord&) -> Result<int64_t> { return UnavailableError("database is locked"); },
      nullptr, BatchWriterOptions{4, 5, 10});
  ASSERT_TRUE(w.Submit(ScanAt(1)));
  Status s = w.Stop(100);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(s.message().find("database is locked"), std::string::npos) << s.message();
}

// A full disk at shutdown (issue 14 item 6): Stop() gives a failing store
// kStopAttempts more tries, then counts everything queued as lost instead
// of retrying until the deadline; the write path reads as failing.
TEST(BatchWriterTest, StopOnAFailingStoreGivesUpAfterAFewTriesAndCountsTheLostScans) {
  std::atomic<int> calls{0};
  std::atomic<bool> stopping{false};
  std::atomic<int> calls_after_stop{0};
  WriteHealth health;
  BatchWriterOptions opts{2, 1, 1};
  opts.health = &health;
  BatchWriter w(
      [&](const models::ScanRecord&) -> Result<int64_t> {
        calls++;
        if (stopping) calls_after_stop++;
        return ResourceExhaustedError("database or disk is full");
      },
      nullptr, opts);
  ASSERT_TRUE(w.Submit(ScanAt(1)));
  ASSERT_TRUE(w.Submit(ScanAt(2)));
  while (calls.load() < 2) std::this_thread::yield();
  EXPECT_TRUE(health.Get().failing);
  EXPECT_NE(health.Get().last_error.find("full"), std::string::npos);
  stopping = true;
  Status s = w.Stop(60'000);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(s.message().find("2 scan(s) not written"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("disk is full"), std::string::npos) << s.message();
  EXPECT_EQ(w.stats().scans_lost, 2);
  EXPECT_LE(calls_after_stop.load(), kStopAttempts + 1) << "retried up to the deadline";
}

// A stop signal while Submit() waits behind a stuck writer ends the wait;
// the scan it carried is counted as lost.
TEST(BatchWriterTest, InterruptedSubmitReturnsAndCountsTheScanAsLost) {
  BatchWriter w(
      [](const models::ScanRecord&) -> Result<int64_t> { return ResourceExhaustedError("disk is full"); },
      nullptr, BatchWriterOptions{1, 1000, 1000});
  ASSERT_TRUE(w.Submit(ScanAt(1)));
  std::atomic<int> polled{0};
  EXPECT_FALSE(w.Submit(ScanAt(2), [&] { return ++polled >= 2; }));
  EXPECT_EQ(polled.load(), 2);
  EXPECT_EQ(w.stats().scans_lost, 1);
  Status s = w.Stop(60'000);
  EXPECT_NE(s.message().find("2 scan(s) not written"), std::string::npos) << s.message();
  EXPECT_EQ(w.stats().scans_lost, 2);
}

TEST(BatchWriterTest, LockedDatabaseIsWaitedOutWithRealSqlite) {
  testing::TempDir dir;
  auto store = storage::EventStore::Open({dir.File("e.db"), storage::OpenMode::kReadWrite, 50});
  ASSERT_TRUE(store.ok());
  // Another connection holds the write lock for a while.
  auto other = storage::Database::Open(dir.File("e.db"), storage::OpenMode::kReadWrite, 50);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Exec("BEGIN IMMEDIATE").ok());
  std::atomic<int64_t> done_scan{0};
  std::mutex mu;
  std::condition_variable failed_cv;
  int failed = 0;  // attempts refused by the lock
  BatchWriter w(
      [&](const models::ScanRecord& s) {
        Result<int64_t> r = (*store)->WriteScan(s);
        if (!r.ok()) {
          std::lock_guard lock(mu);
          ++failed;
          failed_cv.notify_all();
        }
        return r;
      },
      [&](const models::ScanRecord&, int64_t id, int64_t) { done_scan = id; }, BatchWriterOptions{2, 20, 50});
  ASSERT_TRUE(w.Submit(ScanAt(1000)));
  {
    // Retried while the lock is held: at least two refused attempts.
    std::unique_lock lock(mu);
    ASSERT_TRUE(failed_cv.wait_for(lock, std::chrono::seconds(30), [&] { return failed >= 2; }));
  }
  EXPECT_EQ(done_scan.load(), 0);
  EXPECT_GT(w.stats().write_failures, 0);
  ASSERT_TRUE((*other)->Exec("COMMIT").ok());
  ASSERT_TRUE(w.Flush(5000).ok());
  EXPECT_EQ(done_scan.load(), 1);
  EXPECT_EQ((*store)->db().QueryInt("SELECT count(*) FROM processes")->value_or(0), 1);
}

}  // namespace
}  // namespace sentinel::procmond
