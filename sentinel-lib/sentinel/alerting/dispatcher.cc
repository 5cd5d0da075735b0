#include "sentinel/alerting/dispatcher.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "sentinel/alerting/backoff.h"
#include "sentinel/models/severity.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::alerting {
namespace {

using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

std::string JsonText(const Alert& alert) {
  return alert.ToJson().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// A queue-full warning at most this often per sink; the counter counts every time.
constexpr int64_t kQueueFullLogEveryMs = 60'000;
// After a database error, a worker waits this long before reading the queue again.
constexpr int64_t kStoreErrorPauseMs = 1000;

}  // namespace

// One sink's delivery loop. Everything but the metrics and the stop/wake
// flags is touched by the worker thread only.
class Dispatcher::Worker {
 public:
  Worker(Dispatcher& d, SinkBinding binding)
      : d_(d),
        sink_(std::move(binding.sink)),
        breaker_(d.options_.circuit_breaker, d.clock_),
        backoff_(d.options_.retry, d.options_.uniform01) {
    metrics_.name = sink_->name();
    metrics_.type = std::string(sink_->type());
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Wake() {
    {
      std::lock_guard lock(mu_);
      rescan_ = true;
    }
    cv_.notify_all();
  }

  void RequestStop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    sink_->Cancel();
    cv_.notify_all();
  }

  // An alert the store could not record: delivered once, from memory.
  void PushUnrecorded(const Alert& alert) {
    {
      std::lock_guard lock(mu_);
      if (unrecorded_.size() >= std::max<size_t>(d_.options_.unrecorded_capacity, 1)) {
        LogError("unrecorded alert dropped: too many waiting for this sink",
                 {{"sink", sink_->name()}, {"rule", unrecorded_.front().rule_id}});
        unrecorded_.pop_front();
        UpdateMetrics([](SinkMetrics& m) { ++m.unrecorded_failed; });
      }
      unrecorded_.push_back(alert);
      rescan_ = true;
    }
    cv_.notify_all();
  }

  bool UnrecordedEmpty() {
    std::lock_guard lock(mu_);
    return unrecorded_.empty();
  }

  // True while a batch or an unrecorded alert is being delivered and
  // recorded: its rows may already be finished in the store, or the alert off
  // the queue, while its metrics are not counted yet.
  bool Busy() const { return busy_.load(); }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  SinkMetrics Snapshot() const {
    std::lock_guard lock(metrics_mu_);
    return metrics_;
  }

  const std::string& name() const { return sink_->name(); }

 private:
  bool Stopping() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  template <class F>
  void UpdateMetrics(F f) {
    std::lock_guard lock(metrics_mu_);
    f(metrics_);
    metrics_.circuit = breaker_.state();
  }

  // Reads the soonest pending entries of this sink into memory.
  bool Rescan() {
    const size_t capacity = std::max<size_t>(d_.options_.queue_capacity, 1);
    auto pending = d_.store_->Pending(sink_->name(), static_cast<int64_t>(capacity) + 1);
    if (!pending.ok()) {
      LogError("delivery queue unreadable", {{"sink", sink_->name()}, {"error", pending.status().message()}});
      return false;
    }
    cache_ = std::move(pending).value();
    int64_t total = static_cast<int64_t>(cache_.size());
    if (cache_.size() > capacity) {
      cache_.resize(capacity);
      auto count = d_.store_->PendingCount(sink_->name());
      total = count.ok() ? *count : total;
      const int64_t now = d_.clock_.MonotonicMs();
      UpdateMetrics([](SinkMetrics& m) { ++m.queue_full; });
      if (last_full_log_ms_ == 0 || now - last_full_log_ms_ >= kQueueFullLogEveryMs) {
        last_full_log_ms_ = now;
        LogWarn("delivery backlog exceeds the in-memory queue; the rest waits in the database",
                {{"sink", sink_->name()}, {"pending", total}, {"in_memory", capacity}});
      }
    }
    UpdateMetrics([total](SinkMetrics& m) { m.pending = total; });
    return true;
  }

  // Delivers the alerts the store could not record, each once, from memory.
  void DeliverUnrecordedQueue() {
    while (std::optional<Alert> alert = NextUnrecorded()) {
      const bool ok = DeliverUnrecordedAlert(*alert);
      UpdateMetrics([ok](SinkMetrics& m) { ++(ok ? m.unrecorded_delivered : m.unrecorded_failed); });
      busy_ = false;
    }
  }

  // The next unrecorded alert, or nullopt when none waits or stopping. The
  // worker is busy from then on (see Busy()) until its outcome is counted.
  std::optional<Alert> NextUnrecorded() {
    std::lock_guard lock(mu_);
    if (stop_ || unrecorded_.empty()) return std::nullopt;
    busy_ = true;
    Alert alert = std::move(unrecorded_.front());
    unrecorded_.pop_front();
    return alert;
  }

  bool DeliverUnrecordedAlert(const Alert& alert) {
    const std::string payload = JsonText(alert);
    DeliveryRequest req{alert, payload, 1,
                        "unrecorded-" + alert.dedup_key.substr(0, 16) + ":" + sink_->name()};
    DeliveryResult r = sink_->Deliver(req);
    Status st = r.status;
    if (st.ok() && !r.outcome_unknown) st = sink_->Flush();
    const bool ok = st.ok() && !r.outcome_unknown;
    if (ok) {
      LogWarn("alert delivered without a store record (the store cannot be written)",
              {{"sink", sink_->name()}, {"rule", alert.rule_id}, {"dedup_key", alert.dedup_key}});
    } else {
      LogError("alert neither stored nor delivered",
               {{"sink", sink_->name()},
                {"rule", alert.rule_id},
                {"dedup_key", alert.dedup_key},
                {"error", r.outcome_unknown ? std::string("cut short") : st.message()}});
    }
    return ok;
  }

  // When the worker last read the store's queue, and whether it must again.
  struct ScanState {
    int64_t last_scan_mono = -1;
    bool needed = true;
  };

  // The entries due now, soonest first, up to what the sink takes between
  // flushes; and when the first of the others falls due (wall clock).
  struct DueBatch {
    std::vector<QueueEntry> entries;
    int64_t next_due_ms = INT64_MAX;
  };

  void Run() {
    ScanState scan;
    while (!Stopping()) {
      // Before anything that needs the store: it may be what is failing.
      DeliverUnrecordedQueue();
      if (!RescanIfDue(scan)) {
        WaitUntil(d_.clock_.MonotonicMs() + kStoreErrorPauseMs);
        continue;
      }
      const int64_t now = d_.clock_.NowMs();
      DueBatch due = TakeDue(now);
      if (due.entries.empty()) {
        scan.needed = WaitUntil(NextWake(scan, due.next_due_ms, now));
        continue;
      }
      busy_ = true;
      const bool processed = Process(due.entries);
      busy_ = false;
      if (!processed) {
        WaitUntil(d_.clock_.MonotonicMs() + kStoreErrorPauseMs);
        scan.needed = true;
        continue;
      }
      ForgetProcessed(due.entries);
      if (cache_.empty()) scan.needed = true;
    }
  }

  // Re-reads the queue when woken for it, at start, or every poll_ms (which
  // picks up `sentinelcli alerts dlq retry`). False when the store failed.
  bool RescanIfDue(ScanState& scan) {
    const int64_t mono = d_.clock_.MonotonicMs();
    if (!scan.needed && scan.last_scan_mono >= 0 && mono - scan.last_scan_mono < d_.options_.poll_ms)
      return true;
    if (!Rescan()) return false;
    scan.last_scan_mono = d_.clock_.MonotonicMs();
    scan.needed = false;
    return true;
  }

  DueBatch TakeDue(int64_t now) const {
    DueBatch due;
    const size_t max_batch = static_cast<size_t>(std::max(sink_->MaxBatch(), 1));
    for (const QueueEntry& e : cache_) {
      if (e.next_attempt_ms > now) {
        due.next_due_ms = std::min(due.next_due_ms, e.next_attempt_ms);
      } else if (due.entries.size() < max_batch) {
        due.entries.push_back(e);
      }
    }
    return due;
  }

  // The next poll, or the next due entry (its wall-clock distance) if sooner.
  int64_t NextWake(const ScanState& scan, int64_t next_due_ms, int64_t now) const {
    const int64_t poll = scan.last_scan_mono + d_.options_.poll_ms;
    if (next_due_ms == INT64_MAX) return poll;
    return std::min(poll, d_.clock_.MonotonicMs() + (next_due_ms - now));
  }

  // Keeps the cache in step with what the batch recorded.
  void ForgetProcessed(const std::vector<QueueEntry>& batch) {
    std::set<int64_t> done;
    for (const QueueEntry& e : batch) done.insert(e.id);
    std::erase_if(cache_, [&done](const QueueEntry& c) { return done.count(c.id) > 0; });
    for (const QueueEntry& e : rescheduled_) cache_.push_back(e);
    rescheduled_.clear();
  }

  // Waits through the clock for a wake-up, a stop or the monotonic time
  // `until_mono`; true when woken by Wake().
  bool WaitUntil(int64_t until_mono) {
    std::unique_lock lock(mu_);
    d_.clock_.WaitUntil(lock, cv_, until_mono, [this] { return stop_ || rescan_; });
    const bool woken = rescan_;
    rescan_ = false;
    return woken;
  }

  // One batch: load the alerts, record the starts, deliver, flush, decide
  // retries, record the outcomes, count them. False when the store failed
  // (the batch is read again later).
  bool Process(std::vector<QueueEntry>& batch) {
    std::optional<std::vector<std::optional<Alert>>> alerts = LoadAlerts(batch);
    if (!alerts) return false;
    if (!Recorded(d_.store_->BeginAttempts(batch, d_.clock_.NowMs()), "recording delivery attempts")) {
      return false;
    }
    std::vector<AttemptOutcome> outcomes(batch.size());
    bool any_success = false;
    for (size_t i = 0; i < batch.size(); ++i) {
      outcomes[i] = Attempt(batch[i], (*alerts)[i]);
      any_success = any_success || outcomes[i].status == AttemptStatus::kSuccess;
    }
    if (any_success) FlushSuccesses(outcomes);
    const int64_t now = d_.clock_.NowMs();
    ScheduleRetries(batch, outcomes, now);
    // On failure the in-flight rows stay; the next start records them as unknown and delivers again.
    if (!Recorded(d_.store_->FinishAttempts(batch, outcomes, now), "recording delivery outcomes"))
      return false;
    Account(batch, outcomes, now);
    return true;
  }

  // The batch's alerts, loaded before anything is recorded so a missing alert
  // never gets an in-flight row (a missing one is nullopt: dead-lettered).
  // nullopt when the store failed.
  std::optional<std::vector<std::optional<Alert>>> LoadAlerts(const std::vector<QueueEntry>& batch) {
    std::vector<std::optional<Alert>> alerts;
    for (const QueueEntry& e : batch) {
      auto alert = d_.store_->LoadAlert(e.alert_id);
      if (alert.ok()) {
        alerts.emplace_back(std::move(alert).value());
        continue;
      }
      if (alert.status().code() != StatusCode::kNotFound) {
        LogError("alert unreadable",
                 {{"sink", sink_->name()}, {"alert_id", e.alert_id}, {"error", alert.status().message()}});
        return std::nullopt;
      }
      // Cannot happen through SentinelD (retention keeps queued alerts); say so loudly.
      LogError("queued alert no longer exists; its delivery is dead-lettered",
               {{"sink", sink_->name()}, {"alert_id", e.alert_id}});
      alerts.emplace_back(std::nullopt);
    }
    return alerts;
  }

  // Notes a bookkeeping write in the dispatcher's write health; true when it succeeded.
  bool Recorded(const Status& s, const std::string& what) {
    if (s.ok()) {
      d_.store_writes_.Ok();
      return true;
    }
    LogError(what + " failed", {{"sink", sink_->name()}, {"error", s.message()}});
    d_.store_writes_.Failed(what + ": " + s.message());
    return false;
  }

  // One entry's attempt: not made when stopping, dead-lettered when its alert
  // is gone, skipped while the circuit is open, else sent to the sink.
  AttemptOutcome Attempt(const QueueEntry& entry, const std::optional<Alert>& alert) {
    AttemptOutcome o;
    if (Stopping()) {
      o.status = AttemptStatus::kNotAttempted;
      return o;
    }
    if (!alert) {
      o.error = "alert " + std::to_string(entry.alert_id) + " no longer exists";
      o.payload = "{}";
      dead_letter_now_.insert(entry.id);
      return o;
    }
    o.payload = JsonText(*alert);
    if (!breaker_.Allow()) {
      o.status = AttemptStatus::kSkipped;
      o.error = "circuit open after " + std::to_string(breaker_.consecutive_failures()) +
                " consecutive failures; not attempted";
      return o;
    }
    Send(entry, *alert, o);
    return o;
  }

  void Send(const QueueEntry& entry, const Alert& alert, AttemptOutcome& o) {
    DeliveryRequest req{alert, o.payload, entry.attempts,
                        std::to_string(entry.alert_id) + ":" + sink_->name()};
    const int64_t t0 = d_.clock_.MonotonicMs();
    DeliveryResult r = sink_->Deliver(req);
    o.duration_ms = d_.clock_.MonotonicMs() - t0;
    o.http_status = r.http_status;
    if (r.outcome_unknown) {
      o.status = AttemptStatus::kUnknown;
      o.error = r.status.ok() ? "cut short" : r.status.message();
      return;  // not the peer's fault: the breaker is left as it was
    }
    if (r.status.ok()) {
      o.status = AttemptStatus::kSuccess;
      breaker_.RecordSuccess();
      NoteCircuit();
      return;
    }
    o.status = AttemptStatus::kFailure;
    o.error = r.status.message();
    if (r.permanent) dead_letter_now_.insert(entry.id);
    breaker_.RecordFailure();
    NoteCircuit();
  }

  // A circuit that opens, or closes again, is a state change the log shows
  // at the default level; a failed half-open trial (open again) is not a
  // new one, so an outage logs one line, not one per open_secs.
  void NoteCircuit() {
    const bool open = breaker_.state() != CircuitState::kClosed;
    if (open == circuit_logged_open_) return;
    circuit_logged_open_ = open;
    if (open) {
      LogWarn("sink circuit opened; deliveries to it wait until a trial attempt succeeds",
              {{"sink", sink_->name()},
               {"consecutive_failures", breaker_.consecutive_failures()},
               {"open_secs", d_.options_.circuit_breaker.open_secs}});
    } else {
      LogInfo("sink circuit closed; deliveries resume", {{"sink", sink_->name()}});
    }
  }

  // A write is a success only once the sink has made it durable.
  void FlushSuccesses(std::vector<AttemptOutcome>& outcomes) {
    const Status s = sink_->Flush();
    if (s.ok()) return;
    for (AttemptOutcome& o : outcomes) {
      if (o.status != AttemptStatus::kSuccess) continue;
      o.status = AttemptStatus::kFailure;
      o.error = "written but not made durable: " + s.message();
    }
    breaker_.RecordFailure();
    NoteCircuit();
  }

  // Retry (after the backoff; at once when cut short) or give up (no next
  // attempt: dead letter).
  void ScheduleRetries(const std::vector<QueueEntry>& batch, std::vector<AttemptOutcome>& outcomes,
                       int64_t now) {
    for (size_t i = 0; i < batch.size(); ++i) {
      AttemptOutcome& o = outcomes[i];
      if (o.status == AttemptStatus::kSuccess || o.status == AttemptStatus::kNotAttempted) continue;
      const bool give_up = dead_letter_now_.erase(batch[i].id) > 0 ||
                           (o.status != AttemptStatus::kUnknown && backoff_.Exhausted(batch[i].attempts));
      if (give_up) continue;
      o.next_attempt_ms =
          o.status == AttemptStatus::kUnknown ? now : now + backoff_.DelayMs(batch[i].attempts);
    }
  }

  // What a recorded batch did, for the metrics.
  struct BatchTally {
    uint64_t delivered = 0, failed = 0, skipped = 0, unknown = 0, dead = 0;
    int64_t last_duration_ms = 0;
    void Count(const AttemptOutcome& o) {
      switch (o.status) {
        case AttemptStatus::kSuccess: ++delivered; break;
        case AttemptStatus::kFailure: ++failed; break;
        case AttemptStatus::kSkipped: ++skipped; break;
        case AttemptStatus::kUnknown: ++unknown; break;
        case AttemptStatus::kNotAttempted: return;
      }
      last_duration_ms = o.duration_ms;
    }
  };

  // After the outcomes are recorded: logs, the dead-letter hook, the
  // rescheduled entries for the cache, and the metrics.
  void Account(const std::vector<QueueEntry>& batch, const std::vector<AttemptOutcome>& outcomes,
               int64_t now) {
    BatchTally tally;
    for (size_t i = 0; i < batch.size(); ++i) {
      const AttemptOutcome& o = outcomes[i];
      tally.Count(o);
      if (o.status == AttemptStatus::kSuccess || o.status == AttemptStatus::kNotAttempted) continue;
      if (o.next_attempt_ms) {
        Rescheduled(batch[i], o, now);
      } else {
        ++tally.dead;
        DeadLettered(batch[i], o);
      }
    }
    UpdateMetrics([&tally](SinkMetrics& m) {
      m.delivered += tally.delivered;
      m.failed += tally.failed;
      m.skipped += tally.skipped;
      m.unknown += tally.unknown;
      m.dead_lettered += tally.dead;
      m.pending = std::max<int64_t>(0, m.pending - static_cast<int64_t>(tally.delivered + tally.dead));
      m.last_duration_ms = tally.last_duration_ms;
    });
  }

  void DeadLettered(const QueueEntry& e, const AttemptOutcome& o) {
    LogWarn(
        "alert delivery gave up; moved to the dead-letter queue",
        {{"sink", sink_->name()}, {"alert_id", e.alert_id}, {"attempts", e.attempts}, {"error", o.error}});
    if (d_.options_.on_dead_letter)
      d_.options_.on_dead_letter(e.alert_id, sink_->name(), e.attempts, o.error);
  }

  void Rescheduled(const QueueEntry& e, const AttemptOutcome& o, int64_t now) {
    QueueEntry again = e;
    again.next_attempt_ms = *o.next_attempt_ms;
    rescheduled_.push_back(again);
    if (o.status != AttemptStatus::kFailure) return;
    LogWarn("alert delivery failed; will retry", {{"sink", sink_->name()},
                                                  {"alert_id", e.alert_id},
                                                  {"attempt", e.attempts},
                                                  {"retry_in_ms", *o.next_attempt_ms - now},
                                                  {"error", o.error}});
  }

  Dispatcher& d_;
  std::unique_ptr<AlertSink> sink_;
  CircuitBreaker breaker_;
  bool circuit_logged_open_ = false;  // the circuit state the log last reported
  std::atomic<bool> busy_{false};
  Backoff backoff_;
  std::vector<QueueEntry> cache_;
  std::vector<QueueEntry> rescheduled_;
  std::set<int64_t> dead_letter_now_;
  int64_t last_full_log_ms_ = 0;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool rescan_ = false;
  std::deque<Alert> unrecorded_;

  mutable std::mutex metrics_mu_;
  SinkMetrics metrics_;
};

Dispatcher::Dispatcher(DispatcherOptions options, std::vector<SinkBinding> sinks)
    : options_(std::move(options)), clock_(options_.clock ? *options_.clock : Clock::Real()) {
  for (SinkBinding& b : sinks) {
    routes_.push_back({b.sink->name(), b.min_severity});
    options_.configured_sinks.insert(b.sink->name());
    workers_.push_back(std::make_unique<Worker>(*this, std::move(b)));
  }
}

Dispatcher::~Dispatcher() {
  Stop();
}

Status Dispatcher::Start() {
  if (started_) return Status::Ok();
  ASSIGN_OR_RETURN(store_, DeliveryStore::Open(options_.database_path, options_.busy_timeout_ms));
  ASSIGN_OR_RETURN(RecoveryReport recovered, store_->Recover(options_.configured_sinks, clock_.NowMs()));
  nlohmann::json pending = nlohmann::json::object();
  for (const auto& [sink, n] : recovered.pending) pending[sink] = n;
  if (recovered.unknown > 0 || recovered.orphaned > 0 || !recovered.pending.empty()) {
    LogInfo("resuming alert delivery", {{"pending", pending},
                                        {"interrupted_attempts", recovered.unknown},
                                        {"dead_lettered_unconfigured", recovered.orphaned}});
  }
  if (recovered.orphaned > 0) {
    LogWarn("deliveries to sinks no longer configured were moved to the dead-letter queue",
            {{"count", recovered.orphaned}});
  }
  ASSIGN_OR_RETURN(auto queued, store_->EnqueueNewAlerts(routes_, clock_.NowMs()));
  for (const auto& [sink, n] : queued) enqueued_ += static_cast<uint64_t>(n);
  started_ = true;
  for (auto& w : workers_) w->Start();
  return Status::Ok();
}

Result<int64_t> Dispatcher::EnqueueNewAlerts() {
  if (!started_) return FailedPreconditionError("dispatcher not started");
  auto enq = store_->EnqueueNewAlerts(routes_, clock_.NowMs());
  if (!enq.ok()) {
    store_writes_.Failed("queueing alerts for delivery: " + enq.status().message());
    return enq.status();
  }
  store_writes_.Ok();
  auto queued = std::move(enq).value();
  int64_t total = 0;
  for (const auto& [sink, n] : queued) total += n;
  enqueued_ += static_cast<uint64_t>(total);
  for (auto& w : workers_) {
    auto it = queued.find(w->name());
    if (it != queued.end() && it->second > 0) w->Wake();
  }
  return total;
}

void Dispatcher::DeliverUnrecorded(std::vector<Alert> alerts) {
  const int64_t now = clock_.NowMs();
  for (Alert& a : alerts) {
    {
      std::lock_guard lock(unrecorded_mu_);
      if (options_.dedup_window_ms > 0) {
        auto it = unrecorded_seen_.find(a.dedup_key);
        if (it != unrecorded_seen_.end() && now - it->second < options_.dedup_window_ms) {
          unrecorded_suppressed_++;
          continue;
        }
        if (unrecorded_seen_.size() >= 10'000) {
          std::erase_if(unrecorded_seen_,
                        [&](const auto& kv) { return now - kv.second >= options_.dedup_window_ms; });
        }
        unrecorded_seen_[a.dedup_key] = now;
      }
    }
    unrecorded_++;
    LogError("alert could not be stored; delivering it from memory",
             {{"rule", a.rule_id},
              {"severity", std::string(models::SeverityName(a.severity))},
              {"dedup_key", a.dedup_key}});
    for (size_t i = 0; i < routes_.size(); ++i) {
      if (routes_[i].min_severity && a.severity < *routes_[i].min_severity) continue;
      workers_[i]->PushUnrecorded(a);
    }
  }
}

Result<bool> Dispatcher::Idle() {
  if (!started_) return FailedPreconditionError("dispatcher not started");
  // The store first, then the workers: a batch leaves the queue (FinishAttempts)
  // while its worker is still busy counting it, so a worker found idle after
  // an empty queue has counted everything that left it. The other order could
  // see a worker about to start, then the queue it has just emptied.
  for (const SinkRoute& r : routes_) {
    ASSIGN_OR_RETURN(int64_t n, store_->PendingCount(r.name));
    if (n > 0) return false;
  }
  for (auto& w : workers_) {
    // Empty, then not busy: an unrecorded alert is taken off the queue busy.
    if (!w->UnrecordedEmpty() || w->Busy()) return false;
  }
  return true;
}

void Dispatcher::Stop() {
  for (auto& w : workers_) w->RequestStop();
  for (auto& w : workers_) w->Join();
}

DeliveryMetrics Dispatcher::Metrics() const {
  DeliveryMetrics m;
  for (const auto& w : workers_) m.sinks.push_back(w->Snapshot());
  m.enqueued = enqueued_.load();
  m.unrecorded = unrecorded_.load();
  m.unrecorded_suppressed = unrecorded_suppressed_.load();
  m.store_writes = store_writes_.Get();
  if (store_) {
    auto dlq = store_->DeadLetterCount();
    m.dlq_size = dlq.ok() ? *dlq : -1;
  }
  return m;
}

}  // namespace sentinel::alerting
