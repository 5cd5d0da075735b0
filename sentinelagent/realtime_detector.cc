#include "sentinelagent/realtime_detector.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "sentinel/base/time.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::agent {

using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

// The rules evaluated together on one batch: those whose cursor is `from`.
struct RealtimeDetector::Group {
  std::shared_ptr<const std::vector<detection::Rule>> set;  // keeps `rules` alive
  std::vector<const detection::Rule*> rules;
  std::map<std::string, detection::RuleState> states;
  int64_t from = 0;  // exclusive
  int64_t to = 0;    // inclusive
  int64_t max_id = 0;
  int64_t exec_rows = 0;
  detection::RunParams params;
};

RealtimeDetector::RealtimeDetector(RealtimeOptions options, AlertsHook on_alerts)
    : opts_(std::move(options)), on_alerts_(std::move(on_alerts)) {
  Reconfigure(opts_);
}

void RealtimeDetector::Reconfigure(const RealtimeOptions& o) {
  batch_ms_ = o.batch_ms;
  interval_ms_ = o.interval_ms;
  rule_timeout_ms_ = o.rule_timeout_ms;
  dedup_window_ms_ = o.dedup_window_ms;
}

RealtimeDetector::~RealtimeDetector() {
  Stop();
}

Status RealtimeDetector::Open() {
  ASSIGN_OR_RETURN(
      db_, storage::OpenStore(storage::DatabaseKind::kEvents,
                              {opts_.database_path, storage::OpenMode::kReadWrite, opts_.busy_timeout_ms}));
  wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wake_fd_.get() < 0) return ErrnoError(errno, "eventfd");
  return Status::Ok();
}

void RealtimeDetector::SetRules(const std::vector<detection::Rule>& rules) {
  {
    auto exec_rules = std::make_shared<std::vector<detection::Rule>>();
    for (const auto& r : rules) {
      if (r.on == detection::RuleTrigger::kExec) exec_rules->push_back(r);
    }
    std::lock_guard<std::mutex> lock(mu_);
    rules_ = std::move(exec_rules);
  }
  uint64_t one = 1;
  if (wake_fd_.get() >= 0) [[maybe_unused]]
    ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

RealtimeStats RealtimeDetector::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Status RealtimeDetector::Start() {
  if (!db_) return FailedPreconditionError("real-time detector: not open");
  if (thread_.joinable()) return FailedPreconditionError("real-time detector: already started");
  // The procmond the agent has just started binds procmond.sock a moment
  // later: not being able to reach it yet is not a problem to warn about at
  // every start (SPEC §16). Still unreachable after the grace period, it is.
  next_connect_log_ms_ = MonotonicMs() + kConnectLogGraceMs;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void RealtimeDetector::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (worker_) worker_->Cancel();
  }
  uint64_t one = 1;
  if (wake_fd_.get() >= 0) [[maybe_unused]]
    ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

Status RealtimeDetector::CatchUp() {
  while (!stopping_.load()) {
    ASSIGN_OR_RETURN(bool more, Step());
    if (!more) return Status::Ok();
  }
  return Status::Ok();
}

Status RealtimeDetector::EnsureWorker(std::optional<int64_t> scan_id) {
  if (worker_ && worker_->usable()) return Status::Ok();
  detection::WorkerSetup setup;
  setup.database_path = opts_.database_path;
  setup.busy_timeout_ms = opts_.busy_timeout_ms;
  setup.rule_snapshot = true;
  setup.scan_id = scan_id;
  setup.start_timeout_ms = rule_timeout_ms_.load() + opts_.busy_timeout_ms;
  auto started = detection::QueryWorker::Start(setup);
  if (!started.ok()) return started.status().WithContext("real-time query worker");
  std::lock_guard<std::mutex> lock(mu_);
  worker_ = std::move(*started);
  if (stopping_.load()) worker_->Cancel();
  return Status::Ok();
}

namespace {

// Where a rule without a cursor starts: after the newest event stamped at or
// before `before_ms` (0 when there is none). Read backwards in id order
// (`+` keeps SQLite off the time index), so it costs the events of the last
// interval, not the whole retained history.
Result<int64_t> StartCursor(storage::Database& db, int64_t before_ms) {
  ASSIGN_OR_RETURN(auto st, db.PrepareCached("SELECT id FROM process_events WHERE +event_time_ms <= ?1 "
                                             "ORDER BY id DESC LIMIT 1"));
  RETURN_IF_ERROR(st.BindInt(1, before_ms));
  ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.ColumnInt(0) : 0;
}

}  // namespace

namespace {

// A read transaction: the reads that plan a batch see one state of the
// store, and the connection's page cache, which SQLite drops whenever a read
// begins after procmond's last commit, is reloaded once for them instead of
// once per statement.
class ReadTransaction {
 public:
  static Result<ReadTransaction> Begin(storage::Database& db) {
    RETURN_IF_ERROR(db.Exec("BEGIN"));
    return ReadTransaction(&db);
  }
  ReadTransaction(ReadTransaction&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;
  ReadTransaction& operator=(ReadTransaction&&) = delete;
  ~ReadTransaction() {
    if (db_) [[maybe_unused]]
      Status s = db_->Exec("ROLLBACK");
  }
  Status End() { return std::exchange(db_, nullptr)->Exec("COMMIT"); }

 private:
  explicit ReadTransaction(storage::Database* db) : db_(db) {}
  storage::Database* db_;
};

}  // namespace

// What a batch is planned from, read in one transaction: the enabled exec
// rules, their cursors (a rule without one gets one, written afterwards),
// the newest event id and the scan ids.
Status RealtimeDetector::ReadPlan(Group* g, std::map<std::string, int64_t>* cursors,
                                  std::vector<const detection::Rule*>* rules) {
  std::vector<std::string> starting;
  std::optional<int64_t> start_cursor;
  {
    ASSIGN_OR_RETURN(auto tx, ReadTransaction::Begin(*db_));
    ASSIGN_OR_RETURN(g->states, detection::ReadRuleEnablement(*db_));
    for (const auto& r : *g->set) {
      if (detection::EffectiveEnabled(r, g->states)) rules->push_back(&r);
    }
    ASSIGN_OR_RETURN(*cursors, detection::ReadExecCursors(*db_));
    ASSIGN_OR_RETURN(auto max_id, db_->QueryInt("SELECT coalesce(max(id), 0) FROM process_events"));
    g->max_id = max_id.value_or(0);
    RETURN_IF_ERROR(detection::FillScanIds(*db_, &g->params));
    for (const detection::Rule* r : *rules) {
      if (cursors->count(r->id)) continue;
      if (!start_cursor) {
        ASSIGN_OR_RETURN(start_cursor, StartCursor(*db_, NowMs() - interval_ms_.load()));
      }
      starting.push_back(r->id);
    }
    RETURN_IF_ERROR(tx.End());
  }
  if (starting.empty()) return Status::Ok();
  RETURN_IF_ERROR(detection::SetExecCursors(*db_, starting, *start_cursor, NowMs()));
  // One info line (at a first start every exec rule starts), each rule at debug.
  LogInfo("exec rules start evaluating events",
          {{"rules", starting.size()}, {"after_event_id", *start_cursor}});
  for (const auto& id : starting) {
    telemetry::LogDebug("exec rule starts evaluating events",
                        {{"rule", id}, {"after_event_id", *start_cursor}});
    (*cursors)[id] = *start_cursor;
  }
  return Status::Ok();
}

// Picks the lowest-cursor group and its batch (from, to]; false when every
// enabled exec rule has evaluated every stored event.
Result<bool> RealtimeDetector::PlanGroup(Group* g) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    g->set = rules_;
  }
  std::map<std::string, int64_t> cursors;
  std::vector<const detection::Rule*> rules;
  RETURN_IF_ERROR(ReadPlan(g, &cursors, &rules));
  int64_t from = std::numeric_limits<int64_t>::max();
  for (const detection::Rule* r : rules) from = std::min(from, cursors[r->id]);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.rules = static_cast<int64_t>(rules.size());
    stats_.last_event_id = g->max_id;
    stats_.cursor = rules.empty() ? g->max_id : from;
  }
  if (rules.empty() || from >= g->max_id) return false;
  int64_t to = std::min(g->max_id, from + opts_.chunk_events);
  for (const detection::Rule* r : rules) {
    const int64_t c = cursors[r->id];
    if (c == from) g->rules.push_back(r);
    if (c > from) to = std::min(to, c);  // the group catches up with the next one first
  }
  g->from = from;
  g->to = to;
  return true;
}

Result<bool> RealtimeDetector::Step() {
  Group g;
  ASSIGN_OR_RETURN(bool pending, PlanGroup(&g));
  if (!pending) return false;
  RETURN_IF_ERROR(EvaluateGroup(g));
  return true;
}

// A usable worker holding the group's batch in its exec_events.
Status RealtimeDetector::LoadBatch(Group& g) {
  RETURN_IF_ERROR(EnsureWorker(g.params.scan_id));
  auto rows = worker_->LoadExecBatch(g.from, g.to, g.params.scan_id, rule_timeout_ms_.load());
  if (!rows.ok()) {
    return rows.status().WithContext("loading exec events " + std::to_string(g.from + 1) + ".." +
                                     std::to_string(g.to));
  }
  g.exec_rows = *rows;
  return Status::Ok();
}

Status RealtimeDetector::EvaluateGroup(Group& g) {
  g.params.now_ms = NowMs();  // the scan ids were read with the plan
  RETURN_IF_ERROR(LoadBatch(g));
  detection::RunLimits limits;
  limits.guard.timeout_ms = rule_timeout_ms_.load();
  // The Sigma prefilter of all rules in one request (decision 70): a rule
  // whose detection matches no row of the batch has no findings and is not
  // sent. On an error every rule runs.
  std::vector<bool> candidates(g.rules.size(), true);
  const bool any_sigma = std::any_of(g.rules.begin(), g.rules.end(),
                                     [](const detection::Rule* r) { return r->sigma_detection != nullptr; });
  if (g.exec_rows > 0 && any_sigma) {
    auto c = worker_->SigmaCandidates(g.rules, rule_timeout_ms_.load());
    if (c.ok()) candidates = std::move(*c);
  }
  // Every rule left in one request; only fork/exit events in the range, or
  // ruled out by the prefilter: no findings.
  std::vector<Result<detection::RuleResult>> results(g.rules.size(), detection::RuleResult{});
  std::vector<const detection::Rule*> to_run;
  std::vector<std::size_t> index;
  for (std::size_t i = 0; g.exec_rows > 0 && i < g.rules.size(); ++i) {
    if (!candidates[i]) continue;
    to_run.push_back(g.rules[i]);
    index.push_back(i);
  }
  std::vector<Result<detection::RuleResult>> ran = worker_->RunRules(to_run, g.params, limits);
  for (std::size_t k = 0; k < to_run.size(); ++k) {
    // A rule after one killed at its deadline did not run: the worker is
    // replaced, with the batch, and it runs alone.
    if (!ran[k].ok() && detection::QueryWorker::NotRun(ran[k].status()) && !stopping_.load()) {
      if (!worker_->usable()) {
        if (Status s = LoadBatch(g); !s.ok()) {
          results[index[k]] = s;
          continue;
        }
      }
      results[index[k]] = worker_->RunRule(*to_run[k], g.params, limits);
      continue;
    }
    results[index[k]] = std::move(ran[k]);
  }
  if (stopping_.load()) return UnavailableError("real-time detector stopping; the batch is evaluated again");
  return Commit(g, results);
}

// Whether rule `id`, which failed on the group's batch, gives up on it now.
bool RealtimeDetector::GiveUp(const std::string& id, const Status& error, const Group& g) {
  const int n = ++failures_[id];
  LogError("exec rule failed on a batch",
           {{"rule", id},
            {"events", std::to_string(g.from + 1) + ".." + std::to_string(g.to)},
            {"failures", n},
            {"error", error.message()}});
  if (n < kMaxRuleFailures) return false;
  LogError("exec rule skips a batch it failed on repeatedly",
           {{"rule", id}, {"events", std::to_string(g.from + 1) + ".." + std::to_string(g.to)}});
  return true;
}

// The batch's alerts of every rule and the cursors of the rules that are
// done with it, in one transaction.
Status RealtimeDetector::Commit(Group& g, const std::vector<Result<detection::RuleResult>>& results) {
  std::vector<alerting::Alert> created;
  uint64_t failed = 0, skipped = 0;
  std::vector<std::string> done;  // rules whose cursor moves to g.to
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(*db_));
  for (std::size_t i = 0; i < g.rules.size(); ++i) {
    const detection::Rule& rule = *g.rules[i];
    if (!results[i].ok()) {
      ++failed;
      if (!GiveUp(rule.id, results[i].status(), g)) continue;
      ++skipped;
    } else if (!results[i]->rows.empty()) {
      auto st = g.states.find(rule.id);
      const int64_t version = st == g.states.end() ? 1 : st->second.version;
      ASSIGN_OR_RETURN(
          auto rec, alerting::RecordFindingsInTransaction(*db_, rule, version, *results[i], g.params.scan_id,
                                                          NowMs(), dedup_window_ms_.load()));
      for (auto& a : rec.created) created.push_back(std::move(a));
    }
    done.push_back(rule.id);
  }
  RETURN_IF_ERROR(detection::SetExecCursors(*db_, done, g.to, NowMs()));
  RETURN_IF_ERROR(tx.Commit());
  for (const detection::Rule* rule : g.rules) {
    if (failures_.count(rule->id) && failures_[rule->id] >= kMaxRuleFailures) failures_.erase(rule->id);
  }
  for (std::size_t i = 0; i < g.rules.size(); ++i) {
    if (results[i].ok()) failures_.erase(g.rules[i]->id);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.batches++;
    stats_.exec_events += static_cast<uint64_t>(g.exec_rows);
    stats_.alerts += created.size();
    stats_.rule_failures += failed;
    stats_.skipped_batches += skipped;
    stats_.last_batch_ms = NowMs();
  }
  if (!created.empty() && on_alerts_) on_alerts_(created);
  return Status::Ok();
}

void RealtimeDetector::TryConnect() {
  if (sub_ || MonotonicMs() < next_connect_ms_) return;
  next_connect_ms_ = MonotonicMs() + opts_.reconnect_ms;
  auto sub = ipc::Subscription::Open(opts_.procmond_socket, ipc::kSubscribeEvents, 2000);
  const bool was = Stats().connected;
  if (!sub.ok()) {
    if (was || next_connect_log_ms_ <= MonotonicMs()) {
      LogWarn("real-time detector: procmond.sock unreachable; evaluating pending exec events every second",
              {{"path", opts_.procmond_socket}, {"error", sub.status().message()}});
      next_connect_log_ms_ = MonotonicMs() + 60'000;
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.connected = false;
    return;
  }
  sub_ = std::move(*sub);
  LogInfo("real-time detector subscribed to procmond's events", {{"path", opts_.procmond_socket}});
  std::lock_guard<std::mutex> lock(mu_);
  stats_.connected = true;
}

namespace {

// Waits until one of `fds` is readable or timeout_ms passed (-1: no limit).
void PollFor(std::vector<pollfd>& fds, int64_t timeout_ms) {
  for (auto& f : fds) f.revents = 0;
  const int t = timeout_ms < 0 ? -1 : static_cast<int>(std::min<int64_t>(timeout_ms, 60'000));
  ::poll(fds.data(), fds.size(), t);
}

void Drain(int fd) {
  uint64_t n = 0;
  [[maybe_unused]] ssize_t r = ::read(fd, &n, sizeof n);
}

}  // namespace

// Blocks until there is something to evaluate: a notice (then at most
// batch_ms after the previous evaluation started, so notices coalesce), a
// wake-up (rules changed, stop), or the reconnect timer without procmond.
void RealtimeDetector::Wait() {
  std::vector<pollfd> fds{{wake_fd_.get(), POLLIN, 0}};
  if (sub_) fds.push_back({sub_->fd(), POLLIN, 0});
  PollFor(fds, sub_ ? -1 : std::max<int64_t>(0, next_connect_ms_ - MonotonicMs()));
  if (fds[0].revents & POLLIN) Drain(wake_fd_.get());
  if (sub_ && fds.size() > 1 && fds[1].revents != 0) {
    auto notices = sub_->Read();
    if (!notices.ok()) {
      LogWarn("real-time detector: procmond.sock subscription ended; reconnecting",
              {{"error", notices.status().message()}});
      sub_.reset();
      std::lock_guard<std::mutex> lock(mu_);
      stats_.connected = false;
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.notices += notices->size();
    }
    // Pace: at most one evaluation per batch_ms; what arrives meanwhile joins the batch.
    std::vector<pollfd> stop{{wake_fd_.get(), POLLIN, 0}};
    const int64_t left = last_eval_ms_ + batch_ms_.load() - MonotonicMs();
    if (left > 0 && !stopping_.load()) PollFor(stop, left);
  }
}

void RealtimeDetector::Loop() {
  std::string last_error;
  while (!stopping_.load()) {
    TryConnect();
    last_eval_ms_ = MonotonicMs();
    if (Status s = CatchUp(); !s.ok() && !stopping_.load()) {
      if (s.message() != last_error) {
        LogError("real-time detection failed; retried at the next notice", {{"error", s.message()}});
      }
      last_error = s.message();
      std::lock_guard<std::mutex> lock(mu_);
      worker_.reset();
    } else {
      last_error.clear();
    }
    if (stopping_.load()) break;
    Wait();
  }
  std::lock_guard<std::mutex> lock(mu_);
  worker_.reset();
}

}  // namespace sentinel::agent
