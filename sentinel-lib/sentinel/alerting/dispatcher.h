// The delivery engine (SPEC §7): delivers stored alerts to every sink in
// parallel, with per-sink retries (exponential backoff with jitter), a
// circuit breaker per sink and a dead-letter queue, all recorded in the
// event store through DeliveryStore.
//
// Threads: one worker thread per sink, so a slow or dead sink holds up only
// its own alerts; the caller (the agent's main loop) only writes queue rows
// (EnqueueNewAlerts, a short local transaction) and never waits on a sink.
// Each worker keeps at most `queue_capacity` of its sink's pending entries
// in memory and reads the rest from the database as it drains; a backlog
// beyond that is logged and counted (queue_full) but never dropped. Workers
// also re-read the queue every `poll_ms`, which picks up `sentinelcli alerts
// dlq retry`. Between batches a worker sleeps through the injected clock
// (Clock::WaitUntil) until the next poll, the next due retry, a wake-up or
// Stop(): no polling, and a test's FakeClock::Advance wakes it.
//
// Delivery is at least once: an attempt is recorded before it is sent, so
// after a crash the records show which attempts may have reached the peer
// ('unknown'), and the alert is delivered again. Webhooks carry a stable
// X-Sentinel-Delivery-Id so a receiver can drop duplicates.
//
// Public methods are thread-safe. Stop() (also run by the destructor) lets
// each worker finish or cancel its current attempt and keeps everything
// still pending in the store.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sentinel/alerting/circuit_breaker.h"
#include "sentinel/alerting/sink.h"
#include "sentinel/alertstore/delivery_store.h"
#include "sentinel/base/status.h"
#include "sentinel/base/time.h"
#include "sentinel/base/write_health.h"
#include "sentinel/config/config.h"
#include "sentinel/models/severity.h"

namespace sentinel::alerting {

// Counters since Start (monotonic), and gauges as of the snapshot.
struct SinkMetrics {
  std::string name;
  std::string type;
  uint64_t delivered = 0;      // attempts that succeeded
  uint64_t failed = 0;         // attempts that failed (to be retried or dead-lettered)
  uint64_t skipped = 0;        // attempts refused by the open circuit
  uint64_t unknown = 0;        // attempts cut short (shutdown) or found in flight at start
  uint64_t dead_lettered = 0;  // deliveries that gave up
  uint64_t queue_full = 0;     // times the backlog exceeded the in-memory queue
  int64_t pending = 0;         // gauge: entries in the store for this sink (last read)
  CircuitState circuit = CircuitState::kClosed;
  int64_t last_duration_ms = 0;
  uint64_t unrecorded_delivered = 0;  // alerts not in the store, delivered from memory
  uint64_t unrecorded_failed = 0;     // ... whose one attempt failed (not retried: nothing records it)
};

struct DeliveryMetrics {
  std::vector<SinkMetrics> sinks;
  int64_t dlq_size = 0;   // gauge: dead_letter_queue rows
  uint64_t enqueued = 0;  // queue rows created since Start
  // Alerts the store could not record, handed to DeliverUnrecorded() (after
  // its in-memory dedup) since Start, and those it suppressed as repeats.
  uint64_t unrecorded = 0;
  uint64_t unrecorded_suppressed = 0;
  // The delivery bookkeeping writes (queue rows, attempts, outcomes).
  WritePathState store_writes;
};

// An enabled sink and its filter.
struct SinkBinding {
  std::unique_ptr<AlertSink> sink;
  std::optional<models::Severity> min_severity;
};

struct DispatcherOptions {
  std::string database_path;
  int64_t busy_timeout_ms = 5000;
  config::RetryConfig retry;
  config::CircuitBreakerConfig circuit_breaker;
  // Every sink name in the configuration, enabled or not (pending rows of
  // other names are dead-lettered at Start). Empty: the bound sinks' names.
  std::set<std::string> configured_sinks;
  const Clock* clock = nullptr;       // nullptr: Clock::Real()
  std::function<double()> uniform01;  // jitter source; empty: a PRNG
  int64_t poll_ms = 1000;
  size_t queue_capacity = 1024;  // per sink, in memory
  // Repeats of one dedup key among unrecorded alerts within this window are
  // suppressed (the store cannot do it for them); 0: none are.
  int64_t dedup_window_ms = 0;
  size_t unrecorded_capacity = 1000;  // per sink, in memory; the oldest goes first
  // Called (on a worker thread) for each delivery that enters the DLQ:
  // alert id, sink, attempts, last error. The audit hook.
  std::function<void(int64_t, const std::string&, int, const std::string&)> on_dead_letter;
};

class Dispatcher {
 public:
  Dispatcher(DispatcherOptions options, std::vector<SinkBinding> sinks);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Opens the store, recovers a previous run's state, enqueues alerts
  // committed but not yet queued, and starts the workers.
  Status Start();

  // Queues every alert committed since the last call (the store's cursor,
  // so nothing is missed across crashes) and wakes the workers. Returns the
  // number of queue rows created.
  Result<int64_t> EnqueueNewAlerts();

  // Alerts the store could not record (id 0): each is offered once to every
  // sink whose filter takes it, from memory, on the sink's worker; there is
  // no retry, dead letter or delivery row (nothing can be written). Logged
  // and counted as unrecorded (DeliveryMetrics). Repeats of a dedup key
  // within dedup_window_ms are suppressed.
  void DeliverUnrecorded(std::vector<Alert> alerts);

  // True when no bound sink has anything pending in the store or unrecorded
  // alerts waiting in memory.
  Result<bool> Idle();

  // Stops the workers (see the file comment). Idempotent.
  void Stop();

  DeliveryMetrics Metrics() const;

 private:
  class Worker;
  DispatcherOptions options_;
  const Clock& clock_;
  std::vector<SinkRoute> routes_;
  std::unique_ptr<DeliveryStore> store_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<uint64_t> enqueued_{0};
  std::atomic<uint64_t> unrecorded_{0}, unrecorded_suppressed_{0};
  std::mutex unrecorded_mu_;
  std::map<std::string, int64_t> unrecorded_seen_;  // dedup key -> when last offered
  WriteHealth store_writes_;
  bool started_ = false;
};

}  // namespace sentinel::alerting
