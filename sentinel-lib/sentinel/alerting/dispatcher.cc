#include "sentinel/alerting/dispatcher.h"

#include <algorithm>
#include <deque>
#include <map>

#include "sentinel/alerting/backoff.h"
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

  // True while a batch is being delivered and recorded: its rows may already
  // be finished in the store while its metrics are not counted yet.
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

  void DeliverUnrecordedQueue() {
    while (true) {
      Alert alert;
      {
        std::lock_guard lock(mu_);
        if (stop_ || unrecorded_.empty()) return;
        alert = std::move(unrecorded_.front());
        unrecorded_.pop_front();
      }
      const std::string payload = JsonText(alert);
      DeliveryRequest req{alert, payload, 1,
                          "unrecorded-" + alert.dedup_key.substr(0, 16) + ":" + sink_->name()};
      DeliveryResult r = sink_->Deliver(req);
      Status st = r.status;
      if (st.ok() && !r.outcome_unknown) st = sink_->Flush();
      const bool ok = st.ok() && !r.outcome_unknown;
      UpdateMetrics([ok](SinkMetrics& m) { ++(ok ? m.unrecorded_delivered : m.unrecorded_failed); });
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
    }
  }

  void Run() {
    int64_t last_scan = -1;
    bool need_scan = true;
    while (!Stopping()) {
      // Before anything that needs the store: it may be what is failing.
      DeliverUnrecordedQueue();
      const int64_t mono = d_.clock_.MonotonicMs();
      if (need_scan || last_scan < 0 || mono - last_scan >= d_.options_.poll_ms) {
        if (!Rescan()) {
          WaitUntil(mono + kStoreErrorPauseMs);
          continue;
        }
        last_scan = d_.clock_.MonotonicMs();
        need_scan = false;
      }
      // The batch: due entries, soonest first, up to what the sink takes between flushes.
      const int64_t now = d_.clock_.NowMs();
      std::vector<QueueEntry> batch;
      int64_t next_due = INT64_MAX;
      const size_t max_batch = static_cast<size_t>(std::max(sink_->MaxBatch(), 1));
      for (const QueueEntry& e : cache_) {
        if (e.next_attempt_ms <= now) {
          if (batch.size() < max_batch) batch.push_back(e);
        } else {
          next_due = std::min(next_due, e.next_attempt_ms);
        }
      }
      if (batch.empty()) {
        // Sleep until the next due entry (wall-clock distance) or the next poll.
        int64_t wake = last_scan + d_.options_.poll_ms;
        if (next_due != INT64_MAX) wake = std::min(wake, d_.clock_.MonotonicMs() + (next_due - now));
        need_scan = WaitUntil(wake);
        continue;
      }
      busy_ = true;
      const bool processed = Process(batch);
      busy_ = false;
      if (!processed) {
        WaitUntil(d_.clock_.MonotonicMs() + kStoreErrorPauseMs);
        need_scan = true;
        continue;
      }
      // Keep the cache in step with what was recorded.
      for (const QueueEntry& e : batch) {
        cache_.erase(
            std::remove_if(cache_.begin(), cache_.end(), [&e](const QueueEntry& c) { return c.id == e.id; }),
            cache_.end());
      }
      for (const QueueEntry& e : rescheduled_) cache_.push_back(e);
      rescheduled_.clear();
      if (cache_.empty()) need_scan = true;
    }
  }

  // Waits for a wake-up, a stop or the monotonic time `until_mono`; true when woken by Wake().
  bool WaitUntil(int64_t until_mono) {
    std::unique_lock lock(mu_);
    while (!stop_ && !rescan_) {
      const int64_t left = until_mono - d_.clock_.MonotonicMs();
      if (left <= 0) break;
      // Bounded waits keep an injected (frozen) test clock from stalling the worker for long.
      cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(left, 50)));
    }
    bool woken = rescan_;
    rescan_ = false;
    return woken;
  }

  // One batch: record the starts, deliver, flush, record the outcomes.
  bool Process(std::vector<QueueEntry>& batch) {
    // Load before recording anything, so a missing alert never gets an in-flight row.
    std::vector<std::optional<Alert>> alerts;
    std::vector<QueueEntry> runnable;
    for (const QueueEntry& e : batch) {
      auto alert = d_.store_->LoadAlert(e.alert_id);
      if (!alert.ok()) {
        if (alert.status().code() != StatusCode::kNotFound) {
          LogError("alert unreadable",
                   {{"sink", sink_->name()}, {"alert_id", e.alert_id}, {"error", alert.status().message()}});
          return false;
        }
        // Cannot happen through SentinelD (retention keeps queued alerts); say so loudly.
        LogError("queued alert no longer exists; its delivery is dead-lettered",
                 {{"sink", sink_->name()}, {"alert_id", e.alert_id}});
      }
      runnable.push_back(e);
      alerts.push_back(alert.ok() ? std::optional<Alert>(std::move(alert).value()) : std::nullopt);
    }
    batch = std::move(runnable);
    if (Status s = d_.store_->BeginAttempts(batch, d_.clock_.NowMs()); !s.ok()) {
      LogError("recording delivery attempts failed", {{"sink", sink_->name()}, {"error", s.message()}});
      d_.store_writes_.Failed("recording delivery attempts: " + s.message());
      return false;
    }
    d_.store_writes_.Ok();
    std::vector<AttemptOutcome> outcomes(batch.size());
    std::vector<std::string> payloads(batch.size());
    bool any_success = false;
    for (size_t i = 0; i < batch.size(); ++i) {
      AttemptOutcome& o = outcomes[i];
      if (Stopping()) {
        o.status = AttemptStatus::kNotAttempted;
        continue;
      }
      if (!alerts[i]) {
        o.status = AttemptStatus::kFailure;
        o.error = "alert " + std::to_string(batch[i].alert_id) + " no longer exists";
        o.payload = "{}";
        dead_letter_now_.insert(batch[i].id);
        continue;
      }
      payloads[i] = JsonText(*alerts[i]);
      o.payload = payloads[i];
      if (!breaker_.Allow()) {
        o.status = AttemptStatus::kSkipped;
        o.error = "circuit open after " + std::to_string(breaker_.consecutive_failures()) +
                  " consecutive failures; not attempted";
        continue;
      }
      DeliveryRequest req{*alerts[i], payloads[i], batch[i].attempts,
                          std::to_string(batch[i].alert_id) + ":" + sink_->name()};
      const int64_t t0 = d_.clock_.MonotonicMs();
      DeliveryResult r = sink_->Deliver(req);
      o.duration_ms = d_.clock_.MonotonicMs() - t0;
      o.http_status = r.http_status;
      if (r.outcome_unknown) {
        o.status = AttemptStatus::kUnknown;
        o.error = r.status.ok() ? "cut short" : r.status.message();
        // Not the peer's fault: the breaker is left as it was.
        continue;
      }
      if (r.status.ok()) {
        o.status = AttemptStatus::kSuccess;
        any_success = true;
        breaker_.RecordSuccess();
      } else {
        o.status = AttemptStatus::kFailure;
        o.error = r.status.message();
        if (r.permanent) dead_letter_now_.insert(batch[i].id);
        breaker_.RecordFailure();
      }
    }
    if (any_success) {
      if (Status s = sink_->Flush(); !s.ok()) {
        for (auto& o : outcomes) {
          if (o.status != AttemptStatus::kSuccess) continue;
          o.status = AttemptStatus::kFailure;
          o.error = "written but not made durable: " + s.message();
        }
        breaker_.RecordFailure();
      }
    }
    // Retry or give up.
    const int64_t now = d_.clock_.NowMs();
    for (size_t i = 0; i < batch.size(); ++i) {
      AttemptOutcome& o = outcomes[i];
      if (o.status == AttemptStatus::kSuccess || o.status == AttemptStatus::kNotAttempted) continue;
      const bool give_up = dead_letter_now_.count(batch[i].id) > 0 ||
                           (o.status != AttemptStatus::kUnknown && backoff_.Exhausted(batch[i].attempts));
      dead_letter_now_.erase(batch[i].id);
      if (give_up) continue;  // next_attempt_ms stays empty: dead letter
      o.next_attempt_ms =
          o.status == AttemptStatus::kUnknown ? now : now + backoff_.DelayMs(batch[i].attempts);
    }
    if (Status s = d_.store_->FinishAttempts(batch, outcomes, now); !s.ok()) {
      // The in-flight rows stay; the next start records them as unknown and delivers again.
      LogError("recording delivery outcomes failed", {{"sink", sink_->name()}, {"error", s.message()}});
      d_.store_writes_.Failed("recording delivery outcomes: " + s.message());
      return false;
    }
    d_.store_writes_.Ok();
    uint64_t delivered = 0, failed = 0, skipped = 0, unknown = 0, dead = 0;
    int64_t last_duration = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      const AttemptOutcome& o = outcomes[i];
      switch (o.status) {
        case AttemptStatus::kSuccess: ++delivered; break;
        case AttemptStatus::kFailure: ++failed; break;
        case AttemptStatus::kSkipped: ++skipped; break;
        case AttemptStatus::kUnknown: ++unknown; break;
        case AttemptStatus::kNotAttempted: break;
      }
      if (o.status != AttemptStatus::kNotAttempted) last_duration = o.duration_ms;
      if (o.status == AttemptStatus::kSuccess || o.status == AttemptStatus::kNotAttempted) continue;
      if (!o.next_attempt_ms) {
        ++dead;
        LogWarn("alert delivery gave up; moved to the dead-letter queue", {{"sink", sink_->name()},
                                                                           {"alert_id", batch[i].alert_id},
                                                                           {"attempts", batch[i].attempts},
                                                                           {"error", o.error}});
        if (d_.options_.on_dead_letter) {
          d_.options_.on_dead_letter(batch[i].alert_id, sink_->name(), batch[i].attempts, o.error);
        }
      } else {
        QueueEntry again = batch[i];
        again.next_attempt_ms = *o.next_attempt_ms;
        rescheduled_.push_back(again);
        if (o.status == AttemptStatus::kFailure) {
          LogWarn("alert delivery failed; will retry", {{"sink", sink_->name()},
                                                        {"alert_id", batch[i].alert_id},
                                                        {"attempt", batch[i].attempts},
                                                        {"retry_in_ms", *o.next_attempt_ms - now},
                                                        {"error", o.error}});
        }
      }
    }
    UpdateMetrics([&](SinkMetrics& m) {
      m.delivered += delivered;
      m.failed += failed;
      m.skipped += skipped;
      m.unknown += unknown;
      m.dead_lettered += dead;
      m.pending = std::max<int64_t>(0, m.pending - static_cast<int64_t>(delivered + dead));
      m.last_duration_ms = last_duration;
    });
    return true;
  }

  Dispatcher& d_;
  std::unique_ptr<AlertSink> sink_;
  CircuitBreaker breaker_;
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
              {"severity", std::string(detection::SeverityName(a.severity))},
              {"dedup_key", a.dedup_key}});
    for (size_t i = 0; i < routes_.size(); ++i) {
      if (routes_[i].min_severity && a.severity < *routes_[i].min_severity) continue;
      workers_[i]->PushUnrecorded(a);
    }
  }
}

Result<bool> Dispatcher::Idle() {
  if (!started_) return FailedPreconditionError("dispatcher not started");
  for (auto& w : workers_) {
    if (!w->UnrecordedEmpty() || w->Busy()) return false;
  }
  for (const SinkRoute& r : routes_) {
    ASSIGN_OR_RETURN(int64_t n, store_->PendingCount(r.name));
    if (n > 0) return false;
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
