// FleetService in-process against a real nats-server, on a fake clock: the
// heartbeat at start and every 30 s, a bundle handled at once and reported.
#include "sentinelagent/fleet_service.h"

#include <gtest/gtest.h>

#include <atomic>

#include "sentinel/fleet/fleet_test_util.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/fake_clock.h"
#include "sentinel/testing/nats_cluster.h"
#include "sentinel/testing/temp_dir.h"
#include "sentinel/testing/wait.h"

namespace sentinel::agent {
namespace {

using nlohmann::json;
using std::chrono::seconds;

class FleetServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::NatsCluster::SkipReason()) GTEST_SKIP() << *why;
    auto cluster = testing::NatsCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status().message();
    nats_ = std::move(*cluster);
    auto client = fleet::NatsClient::Connect({.servers = nats_->urls(), .name = "test console"});
    ASSERT_TRUE(client.ok()) << client.status().message();
    console_ = std::move(*client);
    ASSERT_TRUE(console_->EnsureBucket({std::string(fleet::kHostsBucket)}).ok());
    ASSERT_TRUE(console_->EnsureBucket({std::string(fleet::kRulesBucket)}).ok());
  }
  FleetServiceOptions Options() {
    FleetServiceOptions o;
    o.cfg.database.path = dir_.File("events.db");
    o.cfg.detection.rules_dirs = {};
    o.cfg.fleet.servers = nats_->urls();
    o.cfg.fleet.host_id = "unit-host";
    o.cfg.fleet.trusted_keys = {signer_->PublicKeyHex()};
    o.version = "test";
    o.clock = &clock_;
    o.health = [] { return std::string("degraded"); };
    o.reload_rules = [this] { ++reloads_; };
    o.record = [this](const std::string& action, const json&) {
      std::lock_guard<std::mutex> lock(mu_);
      actions_.push_back(action);
    };
    return o;
  }
  std::optional<json> Heartbeat() const {
    auto v = console_->KvGet(std::string(fleet::kHostsBucket), "unit-host");
    if (!v.ok() || !v->has_value()) return std::nullopt;
    return json::parse(**v);
  }
  json WaitHeartbeat(const std::function<bool(const json&)>& pred) const {
    json last;
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          auto h = Heartbeat();
          if (h) last = *h;
          return h && pred(*h);
        },
        seconds(30)))
        << last.dump();
    return last;
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  std::unique_ptr<testing::NatsCluster> nats_;
  std::unique_ptr<fleet::NatsClient> console_;
  std::unique_ptr<audit::Signer> signer_ = testing::TestSigner(0x81);
  std::atomic<int> reloads_{0};
  std::mutex mu_;
  std::vector<std::string> actions_;
};

TEST_F(FleetServiceTest, HeartbeatAtStartAndEveryPeriod) {
  auto service = FleetService::Start(Options());
  ASSERT_TRUE(service.ok()) << service.status().message();
  const int64_t start = clock_.NowMs() / 1000;
  json hb = WaitHeartbeat([&](const json& h) { return h["sent_at"] == start; });
  EXPECT_EQ(hb["host_id"], "unit-host");
  EXPECT_EQ(hb["version"], "test");
  EXPECT_EQ(hb["health"], "degraded");
  EXPECT_TRUE(hb["last_scan"].is_null());  // no store yet
  EXPECT_EQ(hb["rules"]["count"], 0);
  // The heartbeat thread sleeps on the clock until the next period.
  ASSERT_TRUE(clock_.AwaitWaiters(1));
  clock_.Advance(30'000);
  WaitHeartbeat([&](const json& h) { return h["sent_at"] == start + 30; });
  ASSERT_TRUE(clock_.AwaitWaiters(1));
  clock_.Advance(30'000);
  WaitHeartbeat([&](const json& h) { return h["sent_at"] == start + 60; });
}

TEST_F(FleetServiceTest, BundleIsAppliedReportedAndReloadRequested) {
  auto service = FleetService::Start(Options());
  ASSERT_TRUE(service.ok()) << service.status().message();
  const int64_t now = clock_.NowMs() / 1000;
  fleet::Bundle b{"unit-bundle", now, {{"u.yaml", testing::TestDrlRule("unit-rule")}}};
  ASSERT_TRUE(console_
                  ->KvPut(std::string(fleet::kRulesBucket), std::string(fleet::kRulesBundleKey),
                          fleet::SignBundle(*signer_, b, now))
                  .ok());
  // Reported without waiting for the next period (the fake clock does not move).
  json hb = WaitHeartbeat([](const json& h) { return h["rules"]["bundle"].is_object(); });
  EXPECT_EQ(hb["rules"]["bundle"]["bundle_id"], "unit-bundle");
  EXPECT_EQ(hb["rules"]["bundle"]["status"], "applied");
  EXPECT_EQ(reloads_.load(), 1);
  EXPECT_TRUE(testing::FileExists(dir_.File("fleet-rules/u.yaml")));
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_EQ(actions_, (std::vector<std::string>{"fleet_bundle_applied"}));
  }
  // The loaded rule set reaches the heartbeat at once too.
  std::vector<detection::Rule> rules(1);
  rules[0].id = "unit-rule";
  (*service)->SetRuleSet(rules);
  WaitHeartbeat([](const json& h) { return h["rules"]["count"] == 1; });
}

}  // namespace
}  // namespace sentinel::agent
