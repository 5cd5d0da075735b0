// What `sentinelfleet serve` does, one round at a time: alerts from the
// durable pull consumer "sentinelfleet" on SENTINELD_ALERTS into the console
// store, each acknowledged only after the transaction holding it committed;
// heartbeats from a watch of every key of sentineld_hosts into the hosts
// table.
//
// At-least-once from JetStream plus the store's UNIQUE(host_id, alert_id)
// make it exactly-once in the store: a crash between commit and ack means a
// redelivery that is absorbed. A message that is not a host's alert
// (ParseAlertMessage refuses it) is logged and acknowledged, so it cannot
// come back for ever; nothing of it is stored.
//
// Thread-safety: Round() is called from one thread; the KV watch callback
// runs on a libnats thread and only queues (a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinelfleet/console_store.h"

namespace sentinel::console {

// What serve's loop is doing, for the health report.
class IngestState {
 public:
  void Consuming();
  void Waiting(std::string error);
  // ok and a one-line detail.
  std::pair<bool, std::string> Get() const;

 private:
  mutable std::mutex mu_;
  bool consuming_ = false;
  std::string detail_ = "starting";
};

struct RoundStats {
  int64_t fetched = 0;     // messages taken from the consumer
  int64_t stored = 0;      // new alerts in the store
  int64_t duplicates = 0;  // already stored (redelivered or republished)
  int64_t rejected = 0;    // not a host's alert: acknowledged, not stored
  int64_t heartbeats = 0;  // heartbeats written
  int64_t ack_errors = 0;  // acks that failed after commit (the message comes back, and is absorbed)
};

class Ingest {
 public:
  // Binds the durable consumer and starts the heartbeat watch. Fails (naming
  // the stream or bucket) when `sentinelfleet init` has not created them or
  // the broker does not answer. `client` and `store` must outlive it.
  static Result<std::unique_ptr<Ingest>> Start(fleet::NatsClient& client, ConsoleStore& store);

  // Fetches up to `max` alerts (waiting at most `timeout_ms` for the first),
  // stores and acknowledges them, then writes the heartbeats that arrived.
  // On a store error nothing of the batch is acknowledged and the next
  // round stores the same batch again before fetching anything newer, so a
  // full disk does not reorder a host's alerts.
  Result<RoundStats> Round(int max, int64_t timeout_ms);

  // True while a batch waits to be stored again (its Round failed in the store).
  bool holding_batch() const { return !unstored_.empty(); }

 private:
  struct Heartbeat {
    std::string host_id, value;
    uint64_t revision = 0;
  };
  Ingest(fleet::NatsClient& client, ConsoleStore& store) : client_(client), store_(store) {}
  Status StoreAlerts(std::vector<fleet::JsMsg>& msgs, RoundStats& stats);
  Status StoreHeartbeats(RoundStats& stats);

  fleet::NatsClient& client_;
  ConsoleStore& store_;
  std::mutex mu_;
  std::vector<Heartbeat> pending_;      // guarded by mu_
  std::vector<fleet::JsMsg> unstored_;  // a batch whose transaction failed: stored first next round
  // Declared last: destroyed (unsubscribed) first, while mu_ still exists.
  std::unique_ptr<fleet::PullConsumer> consumer_;
  std::unique_ptr<fleet::Subscription> watch_;
};

}  // namespace sentinel::console
