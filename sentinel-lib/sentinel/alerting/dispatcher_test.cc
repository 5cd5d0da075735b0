#include "sentinel/alerting/dispatcher.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "sentinel/alertstore/test_util.h"
#include "sentinel/models/severity.h"
#include "sentinel/telemetry/log.h"
#include "sentinel/testing/fake_clock.h"

namespace sentinel::alerting {
namespace {

using internal::Eventually;
using internal::TempEventStore;
using testing::FakeClock;

// A sink whose behaviour the test decides; counts calls and what it accepted.
class FakeSink final : public AlertSink {
 public:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    int calls = 0;
    std::vector<int64_t> accepted;
    bool fail = false;
    bool gate_closed = false;  // Deliver blocks while closed
    bool cancelled = false;
    bool flush_gate_closed = false;  // Flush blocks while closed
    int flushes = 0;
  };
  FakeSink(std::string name, std::shared_ptr<State> state)
      : AlertSink(std::move(name)), s_(std::move(state)) {}
  std::string_view type() const override { return "fake"; }
  int MaxBatch() const override { return 4; }
  void Cancel() override {
    std::lock_guard lock(s_->mu);
    s_->cancelled = true;
    s_->cv.notify_all();
  }
  DeliveryResult Deliver(const DeliveryRequest& req) override {
    std::unique_lock lock(s_->mu);
    ++s_->calls;
    s_->cv.wait(lock, [this] { return !s_->gate_closed || s_->cancelled; });
    if (s_->cancelled && s_->gate_closed) {
      DeliveryResult r{UnavailableError("cancelled")};
      r.outcome_unknown = true;
      return r;
    }
    if (s_->fail) return {UnavailableError("peer down")};
    s_->accepted.push_back(req.alert.id);
    return {};
  }
  Status Flush() override {
    std::unique_lock lock(s_->mu);
    ++s_->flushes;
    s_->cv.notify_all();
    s_->cv.wait(lock, [this] { return !s_->flush_gate_closed || s_->cancelled; });
    return Status::Ok();
  }

 private:
  std::shared_ptr<State> s_;
};

struct Harness {
  TempEventStore t;
  FakeClock clock;
  DispatcherOptions Options(int attempts, int threshold = 100) {
    DispatcherOptions o;
    o.database_path = t.path();
    o.retry = {.max_attempts = attempts, .initial_backoff_ms = 1000, .max_backoff_ms = 4000};
    o.circuit_breaker = {.failure_threshold = threshold, .open_secs = 30};
    o.clock = &clock;
    o.uniform01 = [] { return 0.0; };  // delays are exactly half the nominal backoff
    return o;
  }
  // A started dispatcher with the one sink `name`.
  static std::unique_ptr<Dispatcher> StartOne(const std::string& name,
                                              const std::shared_ptr<FakeSink::State>& state,
                                              DispatcherOptions o) {
    std::vector<SinkBinding> sinks;
    sinks.push_back(Bind(name, state));
    auto d = std::make_unique<Dispatcher>(std::move(o), std::move(sinks));
    EXPECT_TRUE(d->Start().ok());
    return d;
  }
  static SinkBinding Bind(const std::string& name, const std::shared_ptr<FakeSink::State>& state,
                          std::optional<models::Severity> min = std::nullopt) {
    return {std::make_unique<FakeSink>(name, state), min};
  }
};

int Calls(const std::shared_ptr<FakeSink::State>& s) {
  std::lock_guard lock(s->mu);
  return s->calls;
}
size_t Accepted(const std::shared_ptr<FakeSink::State>& s) {
  std::lock_guard lock(s->mu);
  return s->accepted.size();
}

TEST(DispatcherTest, ASlowSinkDoesNotHoldUpAnother) {
  Harness h;
  auto slow = std::make_shared<FakeSink::State>();
  auto fast = std::make_shared<FakeSink::State>();
  slow->gate_closed = true;
  std::vector<SinkBinding> sinks;
  sinks.push_back(Harness::Bind("slow", slow));
  sinks.push_back(Harness::Bind("fast", fast));
  Dispatcher d(h.Options(3), std::move(sinks));
  ASSERT_TRUE(d.Start().ok());
  h.t.InsertAlerts(20);
  auto queued = d.EnqueueNewAlerts();
  ASSERT_TRUE(queued.ok()) << queued.status().ToString();
  EXPECT_EQ(*queued, 40);
  ASSERT_TRUE(Eventually([&] { return Accepted(fast) == 20; }));
  // All of the fast sink's alerts went while the slow one is stuck in its first delivery (its
  // worker may reach that first call only after the fast sink is done: wait for it, then check it
  // made no second one).
  ASSERT_TRUE(Eventually([&] { return Calls(slow) >= 1; }));
  EXPECT_EQ(Calls(slow), 1);
  EXPECT_EQ(Accepted(slow), 0u);
  {
    std::lock_guard lock(slow->mu);
    slow->gate_closed = false;
    slow->cv.notify_all();
  }
  ASSERT_TRUE(Eventually([&] { return Accepted(slow) == 20; }));
  ASSERT_TRUE(Eventually([&] { return d.Idle().ok() && *d.Idle(); }));
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'success'"), 40);
  DeliveryMetrics m = d.Metrics();
  ASSERT_EQ(m.sinks.size(), 2u);
  EXPECT_EQ(m.sinks[0].delivered + m.sinks[1].delivered, 40u);
  EXPECT_EQ(m.enqueued, 40u);
  EXPECT_EQ(m.dlq_size, 0);
}

TEST(DispatcherTest, RetriesWithBackoffOnTheInjectedClockThenDeadLetters) {
  Harness h;
  auto down = std::make_shared<FakeSink::State>();
  down->fail = true;
  std::vector<std::tuple<int64_t, std::string, int>> dead;
  std::mutex dead_mu;
  DispatcherOptions o = h.Options(3);
  o.on_dead_letter = [&](int64_t id, const std::string& sink, int attempts, const std::string&) {
    std::lock_guard lock(dead_mu);
    dead.emplace_back(id, sink, attempts);
  };
  std::vector<SinkBinding> sinks;
  sinks.push_back(Harness::Bind("down", down));
  Dispatcher d(std::move(o), std::move(sinks));
  ASSERT_TRUE(d.Start().ok());
  h.t.InsertAlerts(1);
  ASSERT_TRUE(d.EnqueueNewAlerts().ok());
  auto attempts = [&] { return h.t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'failure'"); };
  ASSERT_TRUE(Eventually([&] { return attempts() == 1; }));
  // First retry after 1000/2 ms (jitter 0): not a millisecond before.
  // The worker asleep on the clock again, having seen the new time: whatever was due is done.
  h.clock.Advance(499);
  ASSERT_TRUE(h.clock.AwaitWaiters(1));
  EXPECT_EQ(attempts(), 1);
  EXPECT_EQ(Calls(down), 1);
  h.clock.Advance(1);
  ASSERT_TRUE(Eventually([&] { return attempts() == 2; }));
  // Second retry after 2000/2 ms.
  h.clock.Advance(999);
  ASSERT_TRUE(h.clock.AwaitWaiters(1));
  EXPECT_EQ(attempts(), 2);
  h.clock.Advance(1);
  ASSERT_TRUE(Eventually([&] { return h.t.Count("SELECT count(*) FROM dead_letter_queue") == 1; }));
  EXPECT_EQ(attempts(), 3);
  EXPECT_EQ(h.t.Count("SELECT attempts FROM dead_letter_queue"), 3);
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM delivery_queue"), 0);
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM alert_deliveries WHERE error = 'peer down'"), 3);
  ASSERT_TRUE(Eventually([&] { return d.Metrics().sinks[0].dead_lettered == 1; }));
  std::lock_guard lock(dead_mu);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(std::get<1>(dead[0]), "down");
  EXPECT_EQ(std::get<2>(dead[0]), 3);
}

// The log lines written while it lives, from a pipe (the logger is
// process-global: the test's own stderr again afterwards).
class CapturedLog {
 public:
  CapturedLog() {
    if (pipe2(fds_, O_NONBLOCK | O_CLOEXEC) == 0) {
      telemetry::InitLogging("test", telemetry::LogLevel::kInfo, telemetry::LogFormat::kText, fds_[1]);
    }
  }
  ~CapturedLog() {
    telemetry::InitLogging("test", telemetry::LogLevel::kInfo, telemetry::LogFormat::kText, 2);
    close(fds_[0]);
    close(fds_[1]);
  }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  // What was logged since the last call.
  std::string Take() {
    char buf[4096];
    for (ssize_t n; (n = read(fds_[0], buf, sizeof buf)) > 0;) text_.append(buf, static_cast<size_t>(n));
    return std::exchange(text_, "");
  }

 private:
  int fds_[2] = {-1, -1};
  std::string text_;
};

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(DispatcherTest, OpenCircuitSkipsThePeerAndHalfOpenProbes) {
  CapturedLog log;
  Harness h;
  auto peer = std::make_shared<FakeSink::State>();
  peer->fail = true;
  std::vector<SinkBinding> sinks;
  sinks.push_back(Harness::Bind("flaky", peer));
  Dispatcher d(h.Options(/*attempts=*/1, /*threshold=*/2), std::move(sinks));
  ASSERT_TRUE(d.Start().ok());
  h.t.InsertAlerts(5);
  ASSERT_TRUE(d.EnqueueNewAlerts().ok());
  ASSERT_TRUE(Eventually([&] { return h.t.Count("SELECT count(*) FROM dead_letter_queue") == 5; }));
  EXPECT_EQ(Calls(peer), 2);  // the circuit opened after two failures
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'skipped'"), 3);
  ASSERT_TRUE(Eventually([&] { return d.Metrics().sinks[0].skipped == 3; }));
  EXPECT_EQ(d.Metrics().sinks[0].circuit, CircuitState::kOpen);
  EXPECT_EQ(d.Metrics().dlq_size, 5);
  // The state change is one warning (SPEC §16: problems show at the default level).
  std::string opened = log.Take();
  EXPECT_EQ(Count(opened, "WARN  test: sink circuit opened"), 1u) << opened;
  EXPECT_NE(opened.find("consecutive_failures=2 open_secs=30 sink=flaky"), std::string::npos) << opened;

  // After open_secs a trial goes through; its success closes the circuit.
  {
    std::lock_guard lock(peer->mu);
    peer->fail = false;
  }
  h.clock.Advance(30'000);
  h.t.InsertAlerts(2);
  ASSERT_TRUE(d.EnqueueNewAlerts().ok());
  ASSERT_TRUE(Eventually([&] { return Accepted(peer) == 2; }));
  ASSERT_TRUE(Eventually([&] { return d.Metrics().sinks[0].circuit == CircuitState::kClosed; }));
  std::string closed = log.Take();
  EXPECT_EQ(Count(closed, "INFO  test: sink circuit closed; deliveries resume sink=flaky"), 1u) << closed;
  EXPECT_EQ(Count(closed, "sink circuit opened"), 0u) << closed;
}

TEST(DispatcherTest, ResumesAfterACrashAndRecordsTheUnknownAttempt) {
  Harness h;
  h.t.InsertAlerts(3);
  {
    // A previous agent queued the alerts and died in the middle of an attempt.
    auto store = DeliveryStore::Open(h.t.path(), 5000);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->EnqueueNewAlerts({{"s", std::nullopt}}, h.clock.NowMs()).ok());
    auto batch = *(*store)->Pending("s", 1);
    ASSERT_TRUE((*store)->BeginAttempts(batch, h.clock.NowMs()).ok());
  }
  auto peer = std::make_shared<FakeSink::State>();
  std::vector<SinkBinding> sinks;
  sinks.push_back(Harness::Bind("s", peer));
  Dispatcher d(h.Options(3), std::move(sinks));
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(Eventually([&] { return Accepted(peer) == 3; }));
  ASSERT_TRUE(Eventually([&] { return d.Idle().ok() && *d.Idle(); }));
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'unknown'"), 1);
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'success'"), 3);
  EXPECT_EQ(h.t.Count("SELECT max(attempt) FROM alert_deliveries WHERE status = 'success'"), 2);
}

TEST(DispatcherTest, AlertsCommittedButNeverQueuedAreQueuedAtStart) {
  Harness h;
  h.t.InsertAlerts(4, "low");
  h.t.InsertAlerts(1, "critical");
  auto all = std::make_shared<FakeSink::State>();
  auto urgent = std::make_shared<FakeSink::State>();
  std::vector<SinkBinding> sinks;
  sinks.push_back(Harness::Bind("all", all));
  sinks.push_back(Harness::Bind("urgent", urgent, models::Severity::kCritical));
  Dispatcher d(h.Options(3), std::move(sinks));
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(Eventually([&] { return Accepted(all) == 5 && Accepted(urgent) == 1; }));
}

TEST(DispatcherTest, BacklogBeyondTheMemoryQueueIsCountedAndStillDelivered) {
  Harness h;
  auto peer = std::make_shared<FakeSink::State>();
  DispatcherOptions o = h.Options(3);
  o.queue_capacity = 3;
  std::vector<SinkBinding> sinks;
  sinks.push_back(Harness::Bind("small", peer));
  Dispatcher d(std::move(o), std::move(sinks));
  ASSERT_TRUE(d.Start().ok());
  h.t.InsertAlerts(25);
  ASSERT_TRUE(d.EnqueueNewAlerts().ok());
  ASSERT_TRUE(Eventually([&] { return Accepted(peer) == 25; }));
  EXPECT_GT(d.Metrics().sinks[0].queue_full, 0u);
}

TEST(DispatcherTest, StopCancelsTheAttemptInProgressAndKeepsItPending) {
  Harness h;
  auto stuck = std::make_shared<FakeSink::State>();
  stuck->gate_closed = true;
  std::vector<SinkBinding> sinks;
  sinks.push_back(Harness::Bind("stuck", stuck));
  Dispatcher d(h.Options(3), std::move(sinks));
  ASSERT_TRUE(d.Start().ok());
  h.t.InsertAlerts(3);
  ASSERT_TRUE(d.EnqueueNewAlerts().ok());
  ASSERT_TRUE(Eventually([&] { return Calls(stuck) == 1; }));
  d.Stop();
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM delivery_queue"), 3);
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'unknown'"), 1);
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM alert_deliveries"), 1);  // the unsent ones left no row
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM dead_letter_queue"), 0);
}

// The worker waits through the injected clock: it sleeps until the clock
// reaches the next poll (or a due retry) and Advance wakes it, with no
// polling of its own, so a dead-letter retry from the CLI is picked up at the
// next poll of the fake clock.
TEST(DispatcherTest, TheWorkerSleepsOnTheInjectedClockUntilTheNextPoll) {
  Harness h;
  auto peer = std::make_shared<FakeSink::State>();
  DispatcherOptions o = h.Options(3);
  o.poll_ms = 5'000;
  auto d = Harness::StartOne("s", peer, std::move(o));
  ASSERT_TRUE(h.clock.AwaitWaiters(1)) << "the worker does not wait through the clock";
  // Rows queued behind the dispatcher's back, as `alerts dlq retry` does: seen at the next poll only.
  h.t.InsertAlerts(2);
  {
    auto store = DeliveryStore::Open(h.t.path(), 5000);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->EnqueueNewAlerts({{"s", std::nullopt}}, h.clock.NowMs()).ok());
  }
  h.clock.Advance(4'999);
  ASSERT_TRUE(h.clock.AwaitWaiters(1));
  EXPECT_EQ(Calls(peer), 0);
  h.clock.Advance(1);
  ASSERT_TRUE(Eventually([&] { return Accepted(peer) == 2; }));
}

// Idle() must not report idle while an unrecorded alert is still being
// delivered (here: held in the sink's Flush), or the caller reads metrics
// that do not count it yet.
TEST(DispatcherTest, NotIdleWhileAnUnrecordedAlertIsStillBeingDelivered) {
  Harness h;
  auto peer = std::make_shared<FakeSink::State>();
  peer->flush_gate_closed = true;
  auto d = Harness::StartOne("s", peer, h.Options(3));
  Alert a;
  a.rule_id = "test-rule";
  a.dedup_key = "k";
  d->DeliverUnrecorded({a});
  {
    std::unique_lock lock(peer->mu);
    ASSERT_TRUE(peer->cv.wait_for(lock, std::chrono::seconds(30), [&] { return peer->flushes == 1; }));
  }
  auto idle = d->Idle();
  ASSERT_TRUE(idle.ok());
  EXPECT_FALSE(*idle) << "the alert is off the queue but its delivery is not finished";
  {
    std::lock_guard lock(peer->mu);
    peer->flush_gate_closed = false;
    peer->cv.notify_all();
  }
  ASSERT_TRUE(Eventually([&] { return d->Idle().ok() && *d->Idle(); }));
  EXPECT_EQ(d->Metrics().sinks[0].unrecorded_delivered, 1u);
}

Alert Unstored(const std::string& key, models::Severity severity) {
  Alert a;
  a.alert_time = 1700000000000;
  a.rule_id = "test-rule";
  a.title = "Test alert";
  a.severity = severity;
  a.dedup_key = key;
  return a;
}

// When the store cannot be written (issue 14 item 6), alerts the detection
// cycle could not record still reach every sink whose filter takes them,
// from memory, counted as unrecorded; repeats within the dedup window are
// suppressed; the failing bookkeeping writes show in store_writes.
TEST(DispatcherTest, UnrecordedAlertsReachTheSinksFromMemoryWhileTheStoreCannotBeWritten) {
  Harness h;
  auto all = std::make_shared<FakeSink::State>();
  auto high = std::make_shared<FakeSink::State>();
  std::vector<SinkBinding> sinks;
  sinks.push_back(Harness::Bind("all", all));
  sinks.push_back(Harness::Bind("high", high, models::Severity::kHigh));
  DispatcherOptions o = h.Options(3);
  o.busy_timeout_ms = 50;
  o.dedup_window_ms = 3'600'000;
  Dispatcher d(o, std::move(sinks));
  ASSERT_TRUE(d.Start().ok());
  // Another connection holds the write lock: every write of the dispatcher fails.
  auto other = storage::Database::Open(h.t.path(), storage::OpenMode::kReadWrite, 50);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Exec("BEGIN IMMEDIATE").ok());
  EXPECT_FALSE(d.EnqueueNewAlerts().ok());
  EXPECT_TRUE(d.Metrics().store_writes.failing);
  EXPECT_EQ(d.Metrics().store_writes.failed, 1u);

  d.DeliverUnrecorded({Unstored("k1", models::Severity::kMedium), Unstored("k2", models::Severity::kCritical),
                       Unstored("k1", models::Severity::kMedium)});
  ASSERT_TRUE(Eventually([&] { return Accepted(all) == 2 && Accepted(high) == 1; }));
  ASSERT_TRUE(Eventually([&] { return d.Idle().ok() && *d.Idle(); }));
  DeliveryMetrics m = d.Metrics();
  EXPECT_EQ(m.unrecorded, 2u);
  EXPECT_EQ(m.unrecorded_suppressed, 1u);
  ASSERT_EQ(m.sinks.size(), 2u);
  EXPECT_EQ(m.sinks[0].unrecorded_delivered, 2u);
  EXPECT_EQ(m.sinks[1].unrecorded_delivered, 1u);
  EXPECT_EQ(m.sinks[0].delivered, 0u) << "no stored delivery happened";
  {
    std::lock_guard lock(all->mu);
    EXPECT_EQ(all->accepted, (std::vector<int64_t>{0, 0})) << "unrecorded alerts have no id";
  }

  ASSERT_TRUE((*other)->Exec("COMMIT").ok());
  EXPECT_EQ(h.t.Count("SELECT count(*) FROM alert_deliveries"), 0);
  ASSERT_TRUE(d.EnqueueNewAlerts().ok());
  EXPECT_FALSE(d.Metrics().store_writes.failing) << "the next good write clears it";
}

}  // namespace
}  // namespace sentinel::alerting
