#include <signal.h>

#include <chrono>
#include <ctime>

#include "sentinel/base/signals.h"
#include "sentinel/base/time.h"
#include "sentinel/base/version.h"
#include "sentinel/config/bootstrap.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/telemetry/log.h"
#include "sentinelfleet/commands.h"
#include "sentinelfleet/ingest.h"
#include "sentinelfleet/web_link.h"

namespace sentinel::console {
namespace {

constexpr int kFetchBatch = 256;
constexpr int64_t kFetchWaitMs = 1000;  // also how long a SIGTERM may wait for the round to end
constexpr int64_t kRetryMs = 2000;      // before binding again after a failure
constexpr auto kRetentionEvery = std::chrono::hours(1);  // and the host expiry
constexpr auto kExpiryRetry = std::chrono::minutes(1);   // after a host expiry that failed

// Waits up to `ms` for a stop signal (SIGTERM/SIGINT, blocked): true when one came.
bool WaitForStop(const sigset_t& signals, int64_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  const int sig = ::sigtimedwait(&signals, nullptr, &ts);
  return sig == SIGTERM || sig == SIGINT;
}

// Logs `s` when it differs from the last failure logged (a broker that
// stays down is one line, not one per retry); health reports it.
void LogFailure(const Status& s, std::string& last, IngestState& state) {
  state.Waiting(s.message());
  if (s.message() == last) return;
  last = s.message();
  telemetry::LogWarn("serve: waiting for the fleet", {{"error", s.message()}});
}

// A round that stored or refused alerts is info; one of heartbeats alone
// (every host, every 30 s) is debug, or the log would be a line per round
// (SPEC §16: no routine line per cycle at the default level).
void LogRound(const RoundStats& r) {
  if (r.stored == 0 && r.rejected == 0 && r.heartbeats == 0) return;
  const bool alerts = r.stored > 0 || r.rejected > 0 || r.ack_errors > 0;
  telemetry::Log(alerts ? telemetry::LogLevel::kInfo : telemetry::LogLevel::kDebug, "serve: stored",
                 {{"alerts", r.stored},
                  {"duplicates", r.duplicates},
                  {"rejected", r.rejected},
                  {"heartbeats", r.heartbeats},
                  {"ack_errors", r.ack_errors}});
}

// console.alert_retention_days, at start and hourly: a failure is logged and
// tried again at the next turn, never the end of serve.
void ApplyRetention(ConsoleStore& store, int64_t days) {
  auto deleted = store.ApplyRetention(NowMs(), days);
  if (!deleted.ok()) {
    telemetry::LogWarn("serve: alert retention failed", {{"error", deleted.status().message()}});
  } else if (*deleted > 0) {
    telemetry::LogInfo("serve: alert retention", {{"deleted", *deleted}, {"retention_days", days}});
  }
}

// console.host_expiry_days, at the same turns: a host whose last heartbeat
// arrived longer ago is forgotten, its key in sentineld_hosts first (or the
// next watch, and `hosts`, would bring it back), then its row. Its alerts
// stay (they go by alert_retention_days). A live host is back with its next
// heartbeat. A failure is logged; false then, and the caller tries again
// sooner than the next hour (the broker may still be out of reach at start).
bool ExpireHosts(ConsoleStore& store, fleet::NatsClient& client, int64_t days) {
  if (days <= 0) return true;
  const int64_t now_ms = NowMs();
  auto expired = store.ExpiredHosts(now_ms, days);
  if (!expired.ok()) {
    telemetry::LogWarn("serve: host expiry failed", {{"error", expired.status().message()}});
    return false;
  }
  bool done = true;
  const int64_t cutoff_ms = now_ms - days * 86'400'000;
  for (const std::string& host : *expired) {
    if (Status s = client.KvDelete(std::string(fleet::kHostsBucket), host); !s.ok()) {
      telemetry::LogWarn("serve: host expiry failed", {{"host_id", host}, {"error", s.message()}});
      done = false;
      continue;
    }
    // Only when no heartbeat came meanwhile (the row's seen_at_ms is still old).
    auto forgotten = store.ForgetHost(host, cutoff_ms);
    if (!forgotten.ok()) {
      telemetry::LogWarn("serve: host expiry failed",
                         {{"host_id", host}, {"error", forgotten.status().message()}});
      done = false;
    } else if (*forgotten) {
      telemetry::LogInfo("serve: host expired", {{"host_id", host}, {"host_expiry_days", days}});
    }
  }
  return done;
}

// The store's upkeep: alert retention hourly; host expiry hourly, or a
// minute after a turn that failed. Both run at the first Tick.
class Upkeep {
 public:
  explicit Upkeep(const config::ConsoleConfig& cfg) : cfg_(cfg) {}
  void Tick(ConsoleStore& store, fleet::NatsClient& client) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_retention_) {
      ApplyRetention(store, cfg_.alert_retention_days);
      next_retention_ = std::chrono::steady_clock::now() + kRetentionEvery;
    }
    if (now >= next_expiry_) {
      const bool done = ExpireHosts(store, client, cfg_.host_expiry_days);
      next_expiry_ = std::chrono::steady_clock::now() + (done ? kRetentionEvery : kExpiryRetry);
    }
  }

 private:
  const config::ConsoleConfig& cfg_;
  std::chrono::steady_clock::time_point next_retention_{};
  std::chrono::steady_clock::time_point next_expiry_{};
};

}  // namespace

int RunServe(const Context& ctx) {
  config::InitProgramLogging("sentinelfleet", ctx.cfg());
  const sigset_t stop = BlockSignals({SIGTERM, SIGINT});
  auto store = OpenStore(ctx, storage::OpenMode::kReadWrite);
  if (!store.ok()) return FailRuntime(ctx, store.status());
  IngestState state;
  // The web UI across hosts (null when console.http_listen is ""): bound
  // before the fleet is reached, so a taken port or a bad address stops serve
  // at once (exit 1 / 2, naming the key).
  auto ui = StartConsoleWebUi(ctx.cfg().console.database, ctx.cfg().console.http_listen, kVersion, state);
  if (!ui.ok()) return Fail(ctx, ui.status());
  auto client = ConnectFleet(ctx, "serve", /*timeout_ms=*/5000, /*retry=*/true);
  if (!client.ok()) return Fail(ctx, client.status());
  telemetry::LogInfo("serve: started",
                     {{"store", ctx.cfg().console.database}, {"servers", (*client)->servers_text()}});
  std::unique_ptr<Ingest> ingest;
  std::string last_error;
  RoundStats total;
  Upkeep upkeep(ctx.cfg().console);
  while (!StopSignalPending()) {
    upkeep.Tick(**store, **client);
    if (!ingest) {
      auto started = Ingest::Start(**client, **store);
      if (!started.ok()) {
        LogFailure(started.status(), last_error, state);
        if (WaitForStop(stop, kRetryMs)) break;
        continue;
      }
      ingest = std::move(*started);
      last_error.clear();
      state.Consuming();
      telemetry::LogInfo("serve: consuming alerts and heartbeats");
    }
    auto round = ingest->Round(kFetchBatch, kFetchWaitMs);
    if (!round.ok()) {
      LogFailure(round.status(), last_error, state);
      // A fetch that failed: bind again (the consumer or stream may have been recreated).
      if (!ingest->holding_batch()) ingest.reset();
      if (WaitForStop(stop, kRetryMs)) break;
      continue;
    }
    last_error.clear();
    state.Consuming();
    LogRound(*round);
    total.stored += round->stored;
    total.duplicates += round->duplicates;
  }
  ingest.reset();
  if (*ui) (*ui)->Stop();
  telemetry::LogInfo("serve: stopped", {{"alerts", total.stored}, {"duplicates", total.duplicates}});
  return kExitOk;
}

}  // namespace sentinel::console
