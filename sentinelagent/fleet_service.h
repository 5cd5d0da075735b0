// The host's side of the fleet (SPEC §14), started by the agent only when
// fleet.servers is set (nothing changes otherwise):
//   heartbeat    KV sentineld_hosts/<host_id> at start and every 30 s
//   live query   sentineld.query.<host_id> and sentineld.query.all: a signed
//                envelope (sentinel/fleet/envelope.h) verified, the SQL run
//                in a query worker exactly as `sentinelcli query` runs it
//                (sandbox, read-only, detection.rule_timeout_secs), the rows
//                sent to the request's reply subject in chunks of at most
//                256 KiB; every query obeyed or refused is audited
//                (fleet_query_executed / fleet_query_refused)
//   bundles      KV sentineld_rules/bundle watched: verified, every rule
//                validated, installed whole into <data dir>/fleet-rules or
//                refused whole (sentinel/fleet/bundle.h); the agent reloads
//                its rules without a restart; the outcome is audited
//                (fleet_bundle_applied / fleet_bundle_refused), kept in
//                <data dir>/fleet-bundle.json and reported in the heartbeat.
//   forwarding   with `events` / `scans` in fleet.forward: stored events and
//                completed scans published to SENTINELD_EVENTS /
//                SENTINELD_SCANS from a persistent cursor (fleet_forwarder.h),
//                on a thread of their own; the cursors and what waits after
//                them are in the heartbeat ("forward").
//
// Never in the way of collection or detection: the service has its own
// threads (heartbeat; one worker for queries and bundles fed by a bounded
// queue, so a flood is refused rather than queued), every NATS call has a
// time limit, a broker that is down only shows in the log. The main thread
// only hands it the rule set after each load (SetRuleSet) and takes rule
// reload requests (through `reload_rules`).
//
// Thread-safety: SetRuleSet, SetConfig and NudgeHeartbeat from any thread; the
// callbacks in FleetServiceOptions are called from the service's threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/base/time.h"
#include "sentinel/config/config.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/rule.h"
#include "sentinel/fleet/bundle.h"
#include "sentinel/fleet/envelope.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinelagent/fleet_forwarder.h"
#include "sentinelagent/fleet_link.h"
#include "sentinelagent/fleet_query.h"

namespace sentinel::agent {

class FleetService final : public FleetLink {
 public:
  // Most queries and bundles waiting for the worker; beyond, a query is refused ("busy").
  static constexpr std::size_t kMaxPending = 16;

  // Connects (in the background when no broker answers yet), subscribes,
  // watches the bundle key and starts the threads. Errors: configuration
  // problems (bad TLS/creds files, replay store unusable).
  static Result<std::unique_ptr<FleetService>> Start(FleetServiceOptions options);
  ~FleetService() override;  // Stop()
  FleetService(const FleetService&) = delete;
  FleetService& operator=(const FleetService&) = delete;

  void Stop();
  const std::string& host_id() const { return host_id_; }
  // The loaded rule set (count and checksum for the heartbeat); a change
  // sends a heartbeat at once.
  void SetRuleSet(const std::vector<detection::Rule>& rules) override;
  // The configuration after a reload (SIGHUP): detection.rules_dirs,
  // builtin_rules and rule_timeout_secs apply to the next query or bundle;
  // the fleet section and the data directory are restart-only.
  void SetConfig(const config::Config& cfg) override;
  // Sends a heartbeat now (after a bundle was handled).
  void NudgeHeartbeat();
  // The heartbeat value as it would be sent now.
  nlohmann::json Heartbeat();

 private:
  struct Task {
    enum class Kind { kQuery, kBundle } kind;
    fleet::Message message;  // query
    std::string bundle;      // bundle envelope
  };
  explicit FleetService(FleetServiceOptions options);
  Status Connect();
  Status Subscribe();
  void EnsureBundleWatch();
  void StartForwarding();
  void Enqueue(Task task);
  void HeartbeatLoop();
  void WorkLoop();
  void HandleQuery(const fleet::Message& m);
  void HandleBundle(const std::string& wire);
  void RefuseQuery(const fleet::Message& m, const fleet::Refusal& refusal, const std::string& key,
                   const std::string& query_id, const std::string& sql);
  void TrackWorker(detection::QueryWorker* worker);
  config::Config LiveConfig();
  void LoadBundleState();
  void SaveBundleState();

  FleetServiceOptions opts_;
  std::string host_id_;
  std::string hostname_;
  std::unique_ptr<fleet::ReplayStore> replay_;
  std::unique_ptr<fleet::EnvelopeVerifier> verifier_;
  std::unique_ptr<fleet::NatsClient> client_;
  std::vector<std::unique_ptr<fleet::Subscription>> subs_;  // set before the threads start

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool nudge_ = false;
  std::deque<Task> tasks_;
  int64_t rule_count_ = 0;
  std::string rules_checksum_;
  std::optional<fleet::BundleStatus> bundle_status_;
  config::Config live_cfg_;   // as reloaded (SetConfig)
  std::string bundle_nonce_;  // the nonce of the last bundle handled (applied or refused)
  std::unique_ptr<fleet::Subscription> bundle_watch_;

  // Lock order: worker_mu_, then mu_.
  std::mutex worker_mu_;
  detection::QueryWorker* running_worker_ = nullptr;  // guarded by worker_mu_
  WarmQueryWorker warm_worker_;                       // the work thread's only

  std::thread heartbeat_thread_;
  std::thread work_thread_;
  std::unique_ptr<FleetForwarder> forwarder_;  // events / scans; uses client_
};

}  // namespace sentinel::agent
