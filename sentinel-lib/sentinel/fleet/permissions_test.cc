// packaging/nats-server.conf's authorization block on a real nats-server: what the host user may
// and may not do, and the console user's rights. Skips without nats-server. Label fleet.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "sentinel/fleet/nats_client.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/nats_cluster.h"
#include "sentinel/testing/wait.h"

namespace sentinel::fleet {
namespace {

using std::chrono::seconds;
using testing::NatsCluster;
using testing::WaitFor;

constexpr const char* kHostPassword = "host-pw-for-tests";
constexpr const char* kConsolePassword = "console-pw-for-tests";

// The authorization block of the example configuration, between its begin/end markers.
std::string AuthorizationBlock() {
  std::ifstream in(std::string(SENTINEL_SOURCE_DIR) + "/packaging/nats-server.conf");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const size_t begin = text.find("# --- authorization (begin)");
  const size_t end = text.find("# --- authorization (end)");
  if (begin == std::string::npos || end == std::string::npos) return "";
  return text.substr(begin, end - begin);
}

class PermissionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
    const std::string block = AuthorizationBlock();
    ASSERT_FALSE(block.empty()) << "packaging/nats-server.conf lost its authorization markers";
    // The servers read the passwords from their environment, as the example says.
    ::setenv("NATS_HOST_PASSWORD", kHostPassword, 1);
    ::setenv("NATS_CONSOLE_PASSWORD", kConsolePassword, 1);
    auto c = NatsCluster::Start(1, block);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(c).value();
    console_ = As("console", kConsolePassword);
    host_ = As("host", kHostPassword);
    ASSERT_TRUE(console_ && host_);
    ASSERT_TRUE(
        console_
            ->EnsureStream({.name = std::string(kAlertsStream), .subjects = {std::string(kAlertsSubjects)}})
            .ok());
    ASSERT_TRUE(console_->EnsureBucket({.name = std::string(kHostsBucket)}).ok());
    ASSERT_TRUE(console_->EnsureBucket({.name = std::string(kRulesBucket)}).ok());
    ASSERT_TRUE(console_->KvPut(std::string(kRulesBucket), std::string(kRulesBundleKey), "bundle-1").ok());
  }

  std::unique_ptr<NatsClient> As(const std::string& user, const std::string& password) {
    ConnectOptions o;
    o.servers = {"nats://" + user + ":" + password +
                 "@127.0.0.1:" + std::to_string(cluster_->client_port(0))};
    o.name = "permissions_test " + user;
    o.timeout_ms = 1000;
    auto c = NatsClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  std::unique_ptr<NatsCluster> cluster_;
  std::unique_ptr<NatsClient> console_, host_;
};

TEST_F(PermissionsTest, HostPublishesAlertsAndHeartbeatsAndReadsRules) {
  auto ack = host_->JsPublish(AlertSubject("h1"), "{}", AlertMsgId("h1", 1), 2000);
  EXPECT_TRUE(ack.ok()) << ack.status().ToString();
  auto put = host_->KvPut(std::string(kHostsBucket), "h1", "{\"host_id\":\"h1\"}");
  EXPECT_TRUE(put.ok()) << put.status().ToString();
  auto bundle = host_->KvGet(std::string(kRulesBucket), std::string(kRulesBundleKey));
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  EXPECT_EQ(bundle->value_or(""), "bundle-1");
  std::mutex mu;
  std::vector<std::string> seen;
  auto watch = host_->KvWatch(std::string(kRulesBucket), std::string(kRulesBundleKey),
                              [&](const std::string&, std::optional<std::string> v, uint64_t) {
                                std::lock_guard lock(mu);
                                seen.push_back(v.value_or("<deleted>"));
                              });
  ASSERT_TRUE(watch.ok()) << watch.status().ToString() << "; " << host_->LastAsyncError().ToString();
  ASSERT_TRUE(console_->KvPut(std::string(kRulesBucket), std::string(kRulesBundleKey), "bundle-2").ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() == 2;
      },
      seconds(10)));
  EXPECT_TRUE(host_->LastAsyncError().ok()) << host_->LastAsyncError().ToString();
}

// The console is the only one that can publish a query: the server refuses the host's publish
// (a permissions violation) and no subscriber ever sees it.
TEST_F(PermissionsTest, HostCannotPublishAQuery) {
  std::mutex mu;
  std::vector<std::string> queries;
  auto sub = console_->Subscribe("sentineld.query.>", [&](Message m) {
    std::lock_guard lock(mu);
    queries.push_back(m.data);
  });
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  ASSERT_TRUE(console_->Flush(2000).ok());
  ASSERT_TRUE(host_->Publish(std::string(kQueryAllSubject), "forged by a host").ok());  // not acknowledged
  ASSERT_TRUE(host_->Publish(QuerySubject("h2"), "forged by a host").ok());
  ASSERT_TRUE(host_->Flush(2000).ok());
  ASSERT_TRUE(
      WaitFor([&] { return host_->LastAsyncError().code() == StatusCode::kPermissionDenied; }, seconds(10)))
      << host_->LastAsyncError().ToString();
  EXPECT_NE(host_->LastAsyncError().message().find("sentineld.query."), std::string::npos)
      << host_->LastAsyncError().message();
  // The console's own query arrives; had the host's been routed it would have come first.
  ASSERT_TRUE(console_->Publish(std::string(kQueryAllSubject), "from the console").ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return !queries.empty();
      },
      seconds(10)));
  std::lock_guard lock(mu);
  EXPECT_EQ(queries, std::vector<std::string>{"from the console"});
}

TEST_F(PermissionsTest, HostCannotWriteTheRulesBucketOrChangeStreams) {
  auto put = host_->KvPut(std::string(kRulesBucket), std::string(kRulesBundleKey), "forged bundle");
  EXPECT_FALSE(put.ok());
  auto still = console_->KvGet(std::string(kRulesBucket), std::string(kRulesBundleKey));
  ASSERT_TRUE(still.ok()) << still.status().ToString();
  EXPECT_EQ(still->value_or(""), "bundle-1");
  EXPECT_FALSE(host_->KvDelete(std::string(kRulesBucket), std::string(kRulesBundleKey)).ok());
  EXPECT_FALSE(host_->EnsureStream({.name = "EVIL", .subjects = {"evil.>"}}).ok());
  EXPECT_FALSE(host_->EnsureBucket({.name = "evil"}).ok());
  // And the console cannot forge a host's alert.
  EXPECT_FALSE(console_->JsPublish(AlertSubject("h1"), "{}", "forged", 1000).ok());
}

TEST_F(PermissionsTest, WrongPasswordIsRefused) {
  ConnectOptions o;
  o.servers = {"nats://host:wrong@127.0.0.1:" + std::to_string(cluster_->client_port(0))};
  o.timeout_ms = 1000;
  auto c = NatsClient::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().find("wrong"), std::string::npos) << c.status().message();
}

TEST(ExampleServerConfigTest, WholeFileIsAValidServerConfiguration) {
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  const std::string cmd = std::string("NATS_HOST_PASSWORD=x NATS_CONSOLE_PASSWORD=y ") +
                          testing::kNatsServerPath + " -t -c " + SENTINEL_SOURCE_DIR +
                          "/packaging/nats-server.conf >/dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;  // NOLINT(concurrency-mt-unsafe, cert-env33-c)
}

}  // namespace
}  // namespace sentinel::fleet
