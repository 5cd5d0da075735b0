// BatchWriter: the collector's only path to the event store.
//
// Scans are queued (bounded: `capacity` scans) and written by one writer
// thread, each scan in one transaction (EventStore::WriteScan). When the
// queue is full, Submit() blocks: backpressure slows the collector instead of
// dropping a scan. A failed write (disk full, database locked, I/O error) is
// logged, counted, and retried with exponential backoff; the scan stays at
// the head of the queue, so nothing is lost silently and scans keep their
// order. Stop() writes what is queued (bounded by a deadline) and joins;
// once Stop() is called a failing write gets at most kStopAttempts more
// tries, kStopRetryMs apart, so a full disk cannot hold a shutdown: what is
// still queued then is given up and counted in scans_lost.
//
// Thread-safety: Submit/Flush/Stop/stats from any one producer thread; the
// EventStore is used only by the writer thread once the writer is started.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "procmond/write_retry.h"
#include "sentinel/base/status.h"
#include "sentinel/base/write_health.h"
#include "sentinel/models/process.h"

namespace sentinel::procmond {

struct BatchWriterOptions {
  size_t capacity = 2;               // scans waiting to be written
  int64_t initial_backoff_ms = 100;  // after a failed write
  int64_t max_backoff_ms = 5000;
  WriteHealth* health = nullptr;  // told of every write attempt's outcome, when set
};

struct BatchWriterStats {
  int64_t scans_written = 0;
  int64_t write_failures = 0;  // failed attempts (each retried)
  int64_t scans_lost = 0;      // given up at Stop() or dropped by an interrupted Submit()
  int64_t queued = 0;
  int64_t last_scan_id = 0;
  int64_t last_write_ms = 0;
  std::string last_error;
};

class BatchWriter {
 public:
  // `write` performs one scan's transaction and returns its scan_id.
  using WriteFn = std::function<Result<int64_t>(const models::ScanRecord&)>;
  // Called on the writer thread after each successful write.
  using DoneFn = std::function<void(const models::ScanRecord&, int64_t scan_id, int64_t write_ms)>;

  // Called on the writer thread with each scan once written and done with
  // (Collector::Recycle: its records are reused by the next scan).
  using RecycleFn = std::function<void(models::ScanRecord&&)>;

  BatchWriter(WriteFn write, DoneFn done, BatchWriterOptions options = {}, RecycleFn recycle = nullptr);
  ~BatchWriter();
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  // Queues a scan, blocking while the queue is full. False after Stop(),
  // or when `interrupted` (polled every kStopRetryMs while blocked) turns
  // true: then the scan is dropped and counted in scans_lost.
  bool Submit(models::ScanRecord scan, const std::function<bool()>& interrupted = nullptr);
  // Blocks until everything queued is written or `timeout_ms` passes.
  // DeadlineExceeded (with the last write error) if scans remain.
  Status Flush(int64_t timeout_ms);
  // Flushes (up to timeout_ms; failing writes get kStopAttempts more tries),
  // then stops the thread. DeadlineExceeded naming how many scans were not
  // written (scans_lost: given up here or dropped by an interrupted Submit)
  // and the last write error.
  Status Stop(int64_t timeout_ms);

  BatchWriterStats stats() const;

 private:
  void Run();
  // The head of the queue was written as `scan_id`: done, dequeued, recycled.
  void Written(std::unique_lock<std::mutex>& lock, int64_t scan_id, int64_t took_ms);
  // After a failed write: false when the writer is to end (given up while
  // draining, or abandoned), else true once the backoff has passed.
  bool AfterFailure(std::unique_lock<std::mutex>& lock, const Status& error, WriteRetry* retry);

  WriteFn write_;
  DoneFn done_;
  BatchWriterOptions options_;
  RecycleFn recycle_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<models::ScanRecord> queue_;
  bool stopping_ = false;
  bool draining_ = false;  // Stop() called: failing writes are given up soon
  bool abandon_ = false;
  BatchWriterStats stats_;
  int failed_while_draining_ = 0;  // writer thread only
  std::thread thread_;
};

}  // namespace sentinel::procmond
