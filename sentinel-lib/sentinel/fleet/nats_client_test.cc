// NatsClient against real nats-server processes (testing::NatsCluster); skips without nats-server.
#include "sentinel/fleet/nats_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/nats_cluster.h"
#include "sentinel/testing/wait.h"

namespace sentinel::fleet {
namespace {

using std::chrono::seconds;
using testing::NatsCluster;
using testing::WaitFor;

class NatsClientTest : public ::testing::Test {
 protected:
  void StartCluster(int nodes) {
    auto c = NatsCluster::Start(nodes);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(c).value();
  }
  std::unique_ptr<NatsClient> Connect(int64_t timeout_ms = 2000) {
    ConnectOptions o;
    o.servers = cluster_->urls();
    o.name = "nats_client_test";
    o.timeout_ms = timeout_ms;
    auto client = NatsClient::Connect(o);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }
  std::unique_ptr<NatsCluster> cluster_;
};

#define REQUIRE_NATS() \
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why

TEST_F(NatsClientTest, CorePublishSubscribeAndRequestReply) {
  REQUIRE_NATS();
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  auto c = Connect();
  ASSERT_TRUE(c && c->connected());
  std::mutex mu;
  std::vector<Message> got;
  auto sub = c->Subscribe("t.>", [&](Message m) {
    std::lock_guard lock(mu);
    got.push_back(std::move(m));
  });
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  ASSERT_TRUE(c->Publish("t.a", std::string("x\0y", 3)).ok());
  ASSERT_TRUE(c->Flush(2000).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return got.size() == 1;
      },
      seconds(10)));
  EXPECT_EQ(got[0].subject, "t.a");
  EXPECT_EQ(got[0].data, std::string("x\0y", 3));

  auto responder = c->Subscribe("svc.echo", [&c](Message m) { (void)c->Publish(m.reply, "echo:" + m.data); });
  ASSERT_TRUE(responder.ok());
  ASSERT_TRUE(c->Flush(2000).ok());
  auto reply = c->Request("svc.echo", "hi", 5000);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->data, "echo:hi");
  auto nobody = c->Request("svc.nobody", "hi", 5000);
  EXPECT_EQ(nobody.status().code(), StatusCode::kUnavailable) << nobody.status().ToString();
  EXPECT_NE(nobody.status().message().find("svc.nobody"), std::string::npos);
  EXPECT_EQ(c->NewInbox().rfind("_INBOX.", 0), 0u);
  EXPECT_NE(c->NewInbox(), c->NewInbox());
}

TEST_F(NatsClientTest, SameMsgIdTwiceIsStoredOnce) {
  REQUIRE_NATS();
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  auto c = Connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(
      c->EnsureStream(
           {.name = std::string(kAlertsStream), .subjects = {std::string(kAlertsSubjects)}, .replicas = 3})
          .ok());
  // Creating again (and updating) is fine.
  auto again = c->EnsureStream({.name = std::string(kAlertsStream),
                                .subjects = {std::string(kAlertsSubjects)},
                                .replicas = 3,
                                .max_age_secs = 86400});
  ASSERT_TRUE(again.ok()) << again.ToString();
  const std::string subject = AlertSubject("host-1");
  auto first = c->JsPublish(subject, "{\"id\":7}", AlertMsgId("host-1", 7), 5000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(first->stream, kAlertsStream);
  auto second = c->JsPublish(subject, "{\"id\":7}", AlertMsgId("host-1", 7), 5000);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->sequence, first->sequence);
  auto other = c->JsPublish(subject, "{\"id\":8}", AlertMsgId("host-1", 8), 5000);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->duplicate);

  auto consumer = c->PullSubscribe(std::string(kAlertsStream), std::string(kAlertsSubjects), "test-durable");
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  std::vector<JsMsg> all;
  for (int i = 0; i < 5 && all.size() < 3; ++i) {
    auto batch = (*consumer)->Fetch(10, 1000);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (JsMsg& m : *batch) {
      ASSERT_TRUE(m.ack().ok());
      all.push_back(std::move(m));
    }
  }
  ASSERT_EQ(all.size(), 2u) << "the duplicate publish must not be stored";
  EXPECT_EQ(all[0].data, "{\"id\":7}");
  EXPECT_EQ(all[0].headers["Nats-Msg-Id"], "host-1:7");
  EXPECT_EQ(all[1].data, "{\"id\":8}");
  EXPECT_LT(all[0].stream_seq, all[1].stream_seq);
}

TEST_F(NatsClientTest, KeyValuePutGetAllAndWatch) {
  REQUIRE_NATS();
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  auto c = Connect();
  ASSERT_TRUE(c);
  auto missing_bucket = c->KvGet("nope", "k");
  EXPECT_EQ(missing_bucket.status().code(), StatusCode::kNotFound) << missing_bucket.status().ToString();
  EXPECT_NE(missing_bucket.status().message().find("nope"), std::string::npos);
  ASSERT_TRUE(c->EnsureBucket({.name = std::string(kHostsBucket)}).ok());
  ASSERT_TRUE(c->EnsureBucket({.name = std::string(kHostsBucket), .history = 5}).ok());
  auto none = c->KvGet(std::string(kHostsBucket), "h1");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(c->KvPut(std::string(kHostsBucket), "h1", "one").ok());
  std::mutex mu;
  std::vector<std::pair<std::string, std::optional<std::string>>> seen;
  auto watch = c->KvWatch(std::string(kHostsBucket), "h1",
                          [&](const std::string& key, std::optional<std::string> v, uint64_t) {
                            std::lock_guard lock(mu);
                            seen.emplace_back(key, std::move(v));
                          });
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() == 1;
      },
      seconds(10)));
  ASSERT_TRUE(c->KvPut(std::string(kHostsBucket), "h1", "two").ok());
  ASSERT_TRUE(c->KvPut(std::string(kHostsBucket), "h2", "other key").ok());
  ASSERT_TRUE(c->KvDelete(std::string(kHostsBucket), "h1").ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() == 3;
      },
      seconds(10)));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen[0], (std::pair<std::string, std::optional<std::string>>{"h1", "one"}));
    EXPECT_EQ(seen[1], (std::pair<std::string, std::optional<std::string>>{"h1", "two"}));
    EXPECT_EQ(seen[2], (std::pair<std::string, std::optional<std::string>>{"h1", std::nullopt}));
  }
  watch->reset();
  auto gone = c->KvGet(std::string(kHostsBucket), "h1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  ASSERT_TRUE(c->KvPut(std::string(kHostsBucket), "h0", "zero").ok());
  auto all = c->KvAll(std::string(kHostsBucket));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, (std::vector<std::pair<std::string, std::string>>{{"h0", "zero"}, {"h2", "other key"}}));
}

TEST_F(NatsClientTest, StoppedClusterIsAnUnavailableErrorNamingTheServers) {
  REQUIRE_NATS();
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  auto c = Connect(1000);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->EnsureStream({.name = "S", .subjects = {"s.>"}, .replicas = 3}).ok());
  cluster_->StopAll();
  ASSERT_TRUE(WaitFor([&] { return !c->connected(); }, seconds(10)));
  auto pub = c->JsPublish("s.x", "data", "id-1", 1000);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), StatusCode::kUnavailable) << pub.status().ToString();
  EXPECT_NE(pub.status().message().find(cluster_->url(0)), std::string::npos) << pub.status().message();
  auto kv = c->KvPut("sentineld_hosts", "h", "v");
  EXPECT_FALSE(kv.ok());

  ConnectOptions o;
  o.servers = cluster_->urls();
  o.timeout_ms = 1000;
  auto fresh = NatsClient::Connect(o);
  ASSERT_FALSE(fresh.ok());
  EXPECT_EQ(fresh.status().code(), StatusCode::kUnavailable);
  for (const std::string& url : cluster_->urls()) {
    EXPECT_NE(fresh.status().message().find(url), std::string::npos) << fresh.status().message();
  }
  // A password in a server URL never shows.
  o.servers = {"nats://agent:s3cr3t-pw@127.0.0.1:" + std::to_string(cluster_->client_port(0))};
  auto with_password = NatsClient::Connect(o);
  ASSERT_FALSE(with_password.ok());
  EXPECT_EQ(with_password.status().message().find("s3cr3t-pw"), std::string::npos)
      << with_password.status().message();

  // retry_initial_connect: Connect succeeds and the client connects once a server is back.
  o.servers = cluster_->urls();
  o.retry_initial_connect = true;
  o.reconnect_wait_ms = 100;
  auto patient = NatsClient::Connect(o);
  ASSERT_TRUE(patient.ok()) << patient.status().ToString();
  EXPECT_FALSE((*patient)->connected());
  if (auto restarted = cluster_->Restart(0); !restarted.ok()) FAIL() << restarted.ToString();
  EXPECT_TRUE(WaitFor([&] { return (*patient)->connected(); }, seconds(20)));
}

TEST_F(NatsClientTest, NoServersIsInvalidArgument) {
  auto c = NatsClient::Connect(ConnectOptions{});
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sentinel::fleet
