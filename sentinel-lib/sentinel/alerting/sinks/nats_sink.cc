// nats: each alert published to JetStream (SPEC §14): subject sentineld.alerts.<host_id> (stream
// SENTINELD_ALERTS), header Nats-Msg-Id "<host_id>:<alert id>" (the same for every attempt, so
// the stream stores a retried alert once within its duplicate window), payload the alert JSON or,
// with format: ocsf, the OCSF Detection Finding, cut to max_message_bytes. Success is the stream's
// publish acknowledgement (a duplicate acknowledgement included).
//
// A broker that is down or unreachable, or a stream without a leader (kUnavailable,
// kDeadlineExceeded from the client) is waited out INSIDE Deliver: the sink retries the same
// alert with a growing pause (up to 5 s) until the stream takes it or Cancel() is called (the
// dispatcher stopping: outcome unknown, delivered again at the next start). So a long outage
// neither dead-letters alerts (alerting.retry would give up after max_attempts) nor lets a later
// alert overtake an earlier one: the sink's queue in the event store is the host's buffer, and
// per-host order is the store's order (docs/decisions.md). SinkEnvironment::nats_outage_wait_ms
// bounds the wait (`sentinelagent --once`: 0, the dispatcher's retry policy decides). Other errors
// (permissions, a payload the server refuses) go back to the dispatcher: retries, circuit breaker,
// dead-letter queue.
#include <condition_variable>
#include <mutex>

#include "sentinel/alerting/internal/formats.h"
#include "sentinel/alerting/sinks/sinks.h"
#include "sentinel/base/time.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::alerting::sinks {
namespace {

using telemetry::LogInfo;
using telemetry::LogWarn;

constexpr int64_t kFirstPauseMs = 200;
constexpr int64_t kMaxPauseMs = 5000;
constexpr int64_t kOutageLogEveryMs = 60'000;
// JetStream's default max_payload is 1 MiB, headers included: leave room for them.
constexpr size_t kDefaultNatsMessageBytes = 1'000'000;

bool Transient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

class NatsSink final : public AlertSink {
 public:
  NatsSink(const config::SinkConfig& cfg, std::unique_ptr<fleet::NatsClient> client, std::string host_id,
           std::optional<OcsfSource> ocsf, size_t max_bytes, int64_t outage_wait_ms)
      : AlertSink(cfg.name),
        client_(std::move(client)),
        host_id_(std::move(host_id)),
        subject_(fleet::AlertSubject(host_id_)),
        ocsf_(std::move(ocsf)),
        max_bytes_(max_bytes),
        timeout_ms_(cfg.timeout_ms),
        outage_wait_ms_(outage_wait_ms) {}
  std::string_view type() const override { return "nats"; }
  int MaxBatch() const override { return 1; }

  void Cancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }

  DeliveryResult Deliver(const DeliveryRequest& req) override {
    const std::string payload = internal::FitAlertJson(PayloadOf(req, ocsf_), max_bytes_);
    const std::string msg_id = fleet::AlertMsgId(host_id_, req.alert.id);
    int64_t pause_ms = kFirstPauseMs;
    const int64_t started_ms = Clock::Real().MonotonicMs();
    while (true) {
      Result<fleet::PubAck> ack = client_->JsPublish(subject_, payload, msg_id, timeout_ms_);
      if (ack.ok()) {
        EndOutage();
        return {};
      }
      if (!Transient(ack.status()) || WaitedEnough(started_ms)) return {ack.status()};
      NoteOutage(ack.status(), req.alert.id);
      if (!Pause(pause_ms)) {
        DeliveryResult r{ack.status()};
        r.outcome_unknown = true;  // stopping: the next start delivers it again (same Msg-Id)
        return r;
      }
      pause_ms = std::min(pause_ms * 2, kMaxPauseMs);
    }
  }

 private:
  bool WaitedEnough(int64_t started_ms) const {
    return outage_wait_ms_ >= 0 && Clock::Real().MonotonicMs() - started_ms >= outage_wait_ms_;
  }

  // Waits `ms` unless cancelled; false when cancelled.
  bool Pause(int64_t ms) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return cancelled_; });
  }

  void NoteOutage(const Status& s, int64_t alert_id) {
    const int64_t now = Clock::Real().MonotonicMs();
    if (outage_since_ms_ < 0) outage_since_ms_ = now;
    if (last_log_ms_ >= 0 && now - last_log_ms_ < kOutageLogEveryMs) return;
    last_log_ms_ = now;
    LogWarn("NATS unavailable; alerts wait in the event store, in order, until JetStream takes them",
            {{"sink", name()},
             {"alert_id", alert_id},
             {"outage_ms", now - outage_since_ms_},
             {"error", s.message()}});
  }

  void EndOutage() {
    if (outage_since_ms_ < 0) return;
    LogInfo("NATS reachable again; delivering the waiting alerts",
            {{"sink", name()}, {"outage_ms", Clock::Real().MonotonicMs() - outage_since_ms_}});
    outage_since_ms_ = -1;
    last_log_ms_ = -1;
  }

  std::unique_ptr<fleet::NatsClient> client_;
  std::string host_id_;
  std::string subject_;
  std::optional<OcsfSource> ocsf_;
  size_t max_bytes_;
  int64_t timeout_ms_;
  int64_t outage_wait_ms_;        // -1: wait until delivered or cancelled
  int64_t outage_since_ms_ = -1;  // worker thread only
  int64_t last_log_ms_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
};

}  // namespace

Result<std::unique_ptr<AlertSink>> MakeNatsSink(const config::SinkConfig& cfg, const SinkEnvironment& env) {
  if (env.fleet.servers.empty()) return InvalidArgumentError("a nats sink needs fleet.servers");
  const std::string host_id = FleetHostId(env);
  if (!fleet::IsValidHostId(host_id)) {
    return InvalidArgumentError("host id " + host_id +
                                " is not one NATS subject token ([A-Za-z0-9_-]{1,64})");
  }
  ASSIGN_OR_RETURN(size_t max_bytes, MaxMessageBytes(cfg, kDefaultNatsMessageBytes));
  fleet::ConnectOptions o;
  o.servers = env.fleet.servers;
  o.credentials = env.fleet.credentials;
  o.tls = env.fleet.tls;
  o.name = "sentineld " + host_id + " sink " + cfg.name;
  o.timeout_ms = cfg.timeout_ms;
  o.reconnect_forever = true;
  o.retry_initial_connect = true;  // the agent starts while its brokers are down; alerts wait
  ASSIGN_OR_RETURN(std::unique_ptr<fleet::NatsClient> client, fleet::NatsClient::Connect(o));
  std::optional<OcsfSource> ocsf;
  if (cfg.format == "ocsf") ocsf = OcsfSource{env.hostname, host_id};
  return std::unique_ptr<AlertSink>(
      std::make_unique<NatsSink>(cfg, std::move(client), host_id, ocsf, max_bytes, env.nats_outage_wait_ms));
}

}  // namespace sentinel::alerting::sinks
