// Fleet test harness: the real sentinelfleet binary against a real NATS
// cluster (testing::NatsCluster), each test in its own sandbox with a console
// configuration file. Also a stand-in host for live queries: it verifies the
// signed request with fleet-host's real EnvelopeVerifier and answers with
// fixed rows through the real ChunkWriter (the agent's responder is tested
// with real agents where they run). Test-only.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/fleet/envelope.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinel/testing/subprocess.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::fleettest {

std::string FleetBin();

// A NatsClient for the test itself (publishing alerts, reading buckets).
std::unique_ptr<fleet::NatsClient> TestClient(const std::vector<std::string>& servers);

// A console: its configuration (fleet.servers, console.database,
// console.signing_key: a key generated with `sentinelfleet keys generate`).
class Console {
 public:
  explicit Console(const std::vector<std::string>& servers);
  testing::RunResult Run(const std::vector<std::string>& args) const;
  // argv for a background `sentinelfleet --config ... <args>`.
  std::vector<std::string> Argv(const std::vector<std::string>& args) const;
  const std::string& public_key() const { return public_key_; }
  const std::string& config() const { return config_; }
  std::string database() const { return dir_.File("fleet.db"); }
  std::string File(const std::string& name) const { return dir_.File(name); }
  std::vector<std::string> Env() const;

 private:
  testing::TempDir dir_;
  std::string config_;
  std::string public_key_;
};

// The alert JSON a host's nats sink sends (Alert::ToJson's fields).
std::string AlertJson(int64_t id, const std::string& title, const std::string& rule_id = "test-rule");

// Puts a heartbeat for `host_id` (sent now) into sentineld_hosts.
void PutHeartbeat(fleet::NatsClient& client, const std::string& host_id, const std::string& hostname,
                  const nlohmann::json& bundle = nullptr);

// A stand-in host answering live queries (see the file comment): rows
// [[host_id, 1], [host_id, 2]] with columns ["host", "n"] — or `rows` rows —
// for every verified query addressed to it; a refused one gets the error
// chunk. Counts what it saw.
class StandInHost {
 public:
  StandInHost(const std::vector<std::string>& servers, std::string host_id, const std::string& trusted_key,
              int rows = 2);
  ~StandInHost();
  int answered() const { return answered_.load(); }
  int refused() const { return refused_.load(); }

 private:
  void OnQuery(const fleet::Message& m);
  std::string host_id_;
  int rows_;
  testing::TempDir dir_;
  std::unique_ptr<fleet::ReplayStore> replay_;
  std::unique_ptr<fleet::EnvelopeVerifier> verifier_;
  std::unique_ptr<fleet::NatsClient> client_;
  std::atomic<int> answered_{0}, refused_{0};
  std::vector<std::unique_ptr<fleet::Subscription>> subs_;  // last: unsubscribed first
};

}  // namespace sentinel::fleettest
