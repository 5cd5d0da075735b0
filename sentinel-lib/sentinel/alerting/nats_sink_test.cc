// The nats sink through the real Dispatcher against real nats-server clusters (testing::NatsCluster):
// Msg-Id deduplication, a node SIGKILLed mid-stream, the whole cluster down longer than the retry
// policy allows. Skips without nats-server. Label fleet.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "sentinel/alerting/dispatcher.h"
#include "sentinel/alerting/sink.h"
#include "sentinel/alertstore/test_util.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/nats_cluster.h"

namespace sentinel::alerting {
namespace {

using internal::Eventually;
using internal::TempEventStore;
using testing::NatsCluster;

constexpr const char* kHost = "host-a";

class NatsSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  }

  void StartCluster(int nodes) {
    auto c = NatsCluster::Start(nodes);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(c).value();
    fleet::ConnectOptions o;
    o.servers = cluster_->urls();
    o.name = "nats_sink_test console";
    auto client = fleet::NatsClient::Connect(o);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    console_ = std::move(client).value();
    const int replicas = std::min(3, nodes);
    Status s = console_->EnsureStream({.name = std::string(fleet::kAlertsStream),
                                       .subjects = {std::string(fleet::kAlertsSubjects)},
                                       .replicas = replicas});
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // A started dispatcher with one nats sink publishing as kHost to `servers`.
  std::unique_ptr<Dispatcher> StartDispatcher(std::vector<std::string> servers, int max_attempts,
                                              const std::string& format = "json",
                                              int64_t outage_wait_ms = -1) {
    SinkEnvironment env = SinkEnvironment::Process();
    env.fleet.servers = std::move(servers);
    env.host_id = kHost;
    env.nats_outage_wait_ms = outage_wait_ms;
    SinkRegistry registry;
    RegisterBuiltinSinks(registry);
    auto sink = registry.Build({.name = "fleet", .type = "nats", .format = format, .timeout_ms = 1000}, env);
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    if (!sink.ok()) return nullptr;
    DispatcherOptions o;
    o.database_path = store_.path();
    o.retry = {.max_attempts = max_attempts, .initial_backoff_ms = 50, .max_backoff_ms = 100};
    o.circuit_breaker = {.failure_threshold = 2, .open_secs = 1};
    o.poll_ms = 100;
    std::vector<SinkBinding> sinks;
    sinks.push_back({std::move(sink).value(), std::nullopt});
    auto d = std::make_unique<Dispatcher>(std::move(o), std::move(sinks));
    Status started = d->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return d;
  }

  void Enqueue(Dispatcher& d, int n) {
    store_.InsertAlerts(n);
    auto queued = d.EnqueueNewAlerts();
    ASSERT_TRUE(queued.ok()) << queued.status().ToString();
  }

  int64_t Delivered() {
    return store_.Count("SELECT count(*) FROM alert_deliveries WHERE status = 'success'");
  }

  // Every message of the alerts stream, in stream order (a fresh durable each call).
  std::vector<fleet::JsMsg> StreamContents(size_t expected) {
    static int n = 0;
    const std::string durable = "check-" + std::to_string(++n);
    Result<std::unique_ptr<fleet::PullConsumer>> consumer = UnavailableError("not tried");
    // Right after a node came back the JetStream API may time out while the cluster catches up.
    Eventually([&] {
      consumer = console_->PullSubscribe(std::string(fleet::kAlertsStream),
                                         std::string(fleet::kAlertsSubjects), durable);
      return consumer.ok();
    });
    EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
    std::vector<fleet::JsMsg> out;
    if (!consumer.ok()) return out;
    // Until the expected count, then one more fetch proves there is nothing beyond it.
    for (int empty = 0; empty < 3 && out.size() <= expected;) {
      auto batch = (*consumer)->Fetch(100, out.size() < expected ? 2000 : 500);
      if (!batch.ok() || batch->empty()) {
        ++empty;
        if (out.size() == expected) break;
        continue;
      }
      for (fleet::JsMsg& m : *batch) out.push_back(std::move(m));
    }
    return out;
  }

  // The stream holds host-a:1 .. host-a:n, each once, in that order.
  void ExpectExactlyOnceInOrder(int n) {
    const std::vector<fleet::JsMsg> msgs = StreamContents(static_cast<size_t>(n));
    std::vector<std::string> ids;
    for (const fleet::JsMsg& m : msgs) {
      auto it = m.headers.find("Nats-Msg-Id");
      ids.push_back(it == m.headers.end() ? "?" : it->second);
      EXPECT_EQ(m.subject, fleet::AlertSubject(kHost));
    }
    std::vector<std::string> want;
    for (int i = 1; i <= n; ++i) want.push_back(fleet::AlertMsgId(kHost, i));
    EXPECT_EQ(ids, want);
  }

  TempEventStore store_;
  std::unique_ptr<NatsCluster> cluster_;
  std::unique_ptr<fleet::NatsClient> console_;
};

TEST_F(NatsSinkTest, PublishesEachAlertOnceWithItsMsgId) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  auto d = StartDispatcher(cluster_->urls(), 3);
  ASSERT_TRUE(d);
  Enqueue(*d, 5);
  ASSERT_TRUE(Eventually([&] { return Delivered() == 5; }));
  // A redelivery (e.g. after a crash left the outcome unknown) is the same Msg-Id: stored once.
  auto again = console_->JsPublish(fleet::AlertSubject(kHost), "{}", fleet::AlertMsgId(kHost, 3), 2000);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate);
  ExpectExactlyOnceInOrder(5);
  const std::vector<fleet::JsMsg> msgs = StreamContents(5);
  ASSERT_EQ(msgs.size(), 5u);
  const nlohmann::json first = nlohmann::json::parse(msgs[0].data);
  EXPECT_EQ(first["id"], 1);
  EXPECT_EQ(first["rule_id"], "test-rule");
}

TEST_F(NatsSinkTest, OcsfFormatPublishesDetectionFindings) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  auto d = StartDispatcher(cluster_->urls(), 3, "ocsf");
  ASSERT_TRUE(d);
  Enqueue(*d, 2);
  ASSERT_TRUE(Eventually([&] { return Delivered() == 2; }));
  const std::vector<fleet::JsMsg> msgs = StreamContents(2);
  ASSERT_EQ(msgs.size(), 2u);
  const nlohmann::json f = nlohmann::json::parse(msgs[1].data);
  EXPECT_EQ(f["class_uid"], 2004);
  EXPECT_EQ(f["finding_info"]["uid"], "host-a:2");
  EXPECT_EQ(f["device"]["uid"], kHost);
}

// A node SIGKILLed (the one the sink is connected to: its only configured server) while alerts
// flow, and restarted: every alert is in the R3 stream exactly once, in order; nothing is
// dead-lettered.
TEST_F(NatsSinkTest, NodeKilledMidStreamEveryAlertArrivesExactlyOnceInOrder) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  auto d = StartDispatcher({cluster_->url(0)}, 3);
  ASSERT_TRUE(d);
  Enqueue(*d, 100);
  ASSERT_TRUE(Eventually([&] { return Delivered() >= 30; }));
  ASSERT_TRUE(cluster_->Kill(0).ok());
  Enqueue(*d, 100);
  ASSERT_TRUE(Eventually([&] { return Delivered() >= 150; })) << "failover to the discovered servers";
  if (auto restarted = cluster_->Restart(0); !restarted.ok()) FAIL() << restarted.ToString();
  Enqueue(*d, 100);
  ASSERT_TRUE(Eventually([&] { return Delivered() == 300; }));
  ASSERT_TRUE(Eventually([&] { return d->Idle().ok() && *d->Idle(); }));
  EXPECT_EQ(d->Metrics().dlq_size, 0);
  EXPECT_EQ(store_.Count("SELECT count(*) FROM dead_letter_queue"), 0);
  ExpectExactlyOnceInOrder(300);
}

// The whole cluster down while alerts are raised, for longer than the retry policy would wait
// (max_attempts 1: any failed attempt would be dead-lettered): nothing is lost, the alerts arrive
// once each and in order when the cluster is back. SENTINEL_NATS_OUTAGE_SECS=60 holds the outage
// for a minute (the scenario; the default run holds it until the sink is waiting).
TEST_F(NatsSinkTest, ClusterDownLosesNothingAndKeepsOrder) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  auto d = StartDispatcher(cluster_->urls(), 1);
  ASSERT_TRUE(d);
  Enqueue(*d, 5);
  ASSERT_TRUE(Eventually([&] { return Delivered() == 5; }));
  cluster_->StopAll();
  Enqueue(*d, 20);
  // The sink holds alert 6 in flight (waiting for NATS), the rest queued behind it.
  ASSERT_TRUE(Eventually([&] {
    return store_.Count(
               "SELECT count(*) FROM alert_deliveries WHERE alert_id = 6 AND status = 'in_flight'") == 1;
  }));
  if (const char* secs = std::getenv("SENTINEL_NATS_OUTAGE_SECS")) {
    std::this_thread::sleep_for(std::chrono::seconds(std::atoi(secs)));  // the outage itself, not a wait
  }
  EXPECT_EQ(store_.Count("SELECT count(*) FROM dead_letter_queue"), 0);
  EXPECT_EQ(Delivered(), 5);
  for (int i = 0; i < cluster_->size(); ++i) {
    if (auto restarted = cluster_->Restart(i); !restarted.ok()) FAIL() << restarted.ToString();
  }
  ASSERT_TRUE(Eventually([&] { return Delivered() == 25; }));
  ASSERT_TRUE(Eventually([&] { return d->Idle().ok() && *d->Idle(); }));
  EXPECT_EQ(store_.Count("SELECT count(*) FROM dead_letter_queue"), 0);
  EXPECT_EQ(store_.Count("SELECT count(*) FROM alert_deliveries WHERE status != 'success'"), 0)
      << "no failed attempt was recorded: the sink waited inside one attempt";
  ExpectExactlyOnceInOrder(25);
}

// `sentinelagent --once` (nats_outage_wait_ms 0): an outage fails the attempt like any other
// sink's, so the run ends when the retry policy says (here: dead-lettered after 2 attempts).
TEST_F(NatsSinkTest, BoundedOutageWaitFailsLikeAnyOtherSink) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  auto d = StartDispatcher(cluster_->urls(), 2, "json", /*outage_wait_ms=*/0);
  ASSERT_TRUE(d);
  cluster_->StopAll();
  Enqueue(*d, 2);
  ASSERT_TRUE(Eventually([&] { return store_.Count("SELECT count(*) FROM dead_letter_queue") == 2; }));
  EXPECT_EQ(Delivered(), 0);
}

TEST_F(NatsSinkTest, RefusedWithoutFleetServersOrWithABadHostId) {
  SinkRegistry registry;
  RegisterBuiltinSinks(registry);
  SinkEnvironment env = SinkEnvironment::Process();
  auto none = registry.Build({.name = "fleet", .type = "nats"}, env);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("fleet.servers"), std::string::npos) << none.status().message();
  env.fleet.servers = {"nats://127.0.0.1:1"};
  env.host_id = "a.b";
  auto bad = registry.Build({.name = "fleet", .type = "nats"}, env);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("a.b"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace sentinel::alerting
