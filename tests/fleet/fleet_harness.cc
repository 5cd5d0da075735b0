#include "tests/fleet/fleet_harness.h"

#include <gtest/gtest.h>

#include "sentinel/base/time.h"
#include "sentinel/fleet/subjects.h"

namespace sentinel::fleettest {

std::string FleetBin() {
  return std::string(SENTINEL_BINARY_DIR) + "/sentinelfleet/sentinelfleet";
}

std::unique_ptr<fleet::NatsClient> TestClient(const std::vector<std::string>& servers) {
  fleet::ConnectOptions options;
  options.servers = servers;
  options.name = "fleet test";
  options.timeout_ms = 5000;
  auto client = fleet::NatsClient::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status().message();
  return client.ok() ? std::move(*client) : nullptr;
}

Console::Console(const std::vector<std::string>& servers) {
  config_ = dir_.File("console.yaml");
  std::string list;
  for (const std::string& s : servers) list += (list.empty() ? "" : ", ") + ("\"" + s + "\"");
  testing::WriteFile(config_, "fleet:\n  servers: [" + list +
                                  "]\nconsole:\n  database: " + dir_.File("fleet.db") +
                                  "\n  signing_key: " + dir_.File("console.key") + "\n");
  auto keys = Run({"keys", "generate", "--output", dir_.File("console.key")});
  EXPECT_EQ(keys.exit_code, 0) << keys.err;
  public_key_ = keys.out.substr(0, keys.out.find('\n'));
}

std::vector<std::string> Console::Env() const {
  return {"HOME=" + dir_.path(), "XDG_CONFIG_HOME=" + dir_.path(), "NO_COLOR=1", "COLUMNS"};
}

std::vector<std::string> Console::Argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {FleetBin(), "--config", config_};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

testing::RunResult Console::Run(const std::vector<std::string>& args) const {
  return testing::Run(Argv(args), Env());
}

std::string AlertJson(int64_t id, const std::string& title, const std::string& rule_id) {
  return nlohmann::json{{"id", id},
                        {"alert_time", NowMs()},
                        {"rule_id", rule_id},
                        {"title", title},
                        {"description", "test"},
                        {"severity", "high"},
                        {"status", "open"},
                        {"affected_processes", nlohmann::json::array()}}
      .dump();
}

void PutHeartbeat(fleet::NatsClient& client, const std::string& host_id, const std::string& hostname,
                  const nlohmann::json& bundle) {
  const nlohmann::json hb{
      {"host_id", host_id},       {"hostname", hostname},
      {"version", "0.1.0"},       {"health", "ok"},
      {"last_scan", nullptr},     {"rules", {{"count", 3}, {"checksum", "c0ffee"}, {"bundle", bundle}}},
      {"sent_at", NowMs() / 1000}};
  auto rev = client.KvPut(std::string(fleet::kHostsBucket), host_id, hb.dump());
  EXPECT_TRUE(rev.ok()) << rev.status().message();
}

StandInHost::StandInHost(const std::vector<std::string>& servers, std::string host_id,
                         const std::string& trusted_key, int rows)
    : host_id_(std::move(host_id)), rows_(rows) {
  auto replay = fleet::ReplayStore::Open(dir_.File("nonces"));
  EXPECT_TRUE(replay.ok()) << replay.status().message();
  replay_ = std::move(*replay);
  verifier_ = std::make_unique<fleet::EnvelopeVerifier>(std::vector<std::string>{trusted_key}, replay_.get(),
                                                        Clock::Real());
  client_ = TestClient(servers);
  if (!client_) return;
  for (const std::string& subject : {fleet::QuerySubject(host_id_), std::string(fleet::kQueryAllSubject)}) {
    auto sub = client_->Subscribe(subject, [this](fleet::Message m) { OnQuery(m); });
    EXPECT_TRUE(sub.ok()) << sub.status().message();
    if (sub.ok()) subs_.push_back(std::move(*sub));
  }
  EXPECT_TRUE(client_->Flush(5000).ok());
}

StandInHost::~StandInHost() {
  subs_.clear();
}

void StandInHost::OnQuery(const fleet::Message& m) {
  auto verified = verifier_->Verify(fleet::EnvelopeKind::kQuery, m.data);
  if (!verified.ok()) {
    ++refused_;
    const auto& r = verified.refusal();
    client_
        ->Publish(m.reply, fleet::ChunkWriter::Error("", host_id_, {std::string(r.code_name()), r.message}))
        .IgnoreError();
    return;
  }
  auto q = fleet::ParseQueryPayload(verified->payload);
  if (!q.ok() || !fleet::QueryAddresses(*q, host_id_)) return;
  ++answered_;
  fleet::ChunkWriter writer(q->query_id, host_id_, {"host", "n"});
  for (int i = 1; i <= rows_; ++i) {
    if (auto full = writer.Add(nlohmann::json::array({host_id_, i})))
      client_->Publish(m.reply, *full).IgnoreError();
  }
  client_->Publish(m.reply, writer.Finish(false)).IgnoreError();
}

}  // namespace sentinel::fleettest
