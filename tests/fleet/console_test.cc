// sentinelfleet against a real 3-node NATS JetStream cluster (SPEC §14): init,
// serve (durable consumer into the store, idempotent, per-host order, clean
// SIGTERM), hosts and alerts, live queries with a host that does not answer,
// rules push|status, and a broker that is down. Alerts are published as the
// agent's nats sink does (JsPublish of the alert JSON with Nats-Msg-Id
// <host_id>:<alert_id>); query answers come from stand-in hosts that verify
// the signed request with the real EnvelopeVerifier (fleet_harness.h).
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include "sentinel/base/time.h"
#include "sentinel/fleet/bundle.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/nats_cluster.h"
#include "sentinel/testing/net.h"
#include "tests/fleet/fleet_harness.h"
#include "tests/integration/harness.h"

namespace sentinel::fleettest {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::NatsCluster;

constexpr milliseconds kWait{30000};  // a guard against hanging, not a timing assertion

json ParseJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << text;
  return j;
}

// The alerts the console holds (`alerts list --json`), or an empty array.
json ListAlerts(const Console& c, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--json", "alerts", "list"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = c.Run(args);
  if (r.exit_code != 0) return json::array();
  json j = json::parse(r.out, nullptr, false);
  return j.is_array() ? j : json::array();
}

void PublishAlert(fleet::NatsClient& client, const std::string& host, int64_t id, const std::string& msg_id) {
  auto ack =
      client.JsPublish(fleet::AlertSubject(host), AlertJson(id, "alert " + std::to_string(id)), msg_id, 5000);
  ASSERT_TRUE(ack.ok()) << ack.status().message();
}

class FleetConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
    auto cluster = NatsCluster::Start(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status().message();
    cluster_ = std::move(*cluster);
    console_ = std::make_unique<Console>(cluster_->urls());
    auto init = console_->Run({"init"});
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    client_ = TestClient(cluster_->urls());
    ASSERT_NE(client_, nullptr);
  }

  std::unique_ptr<itest::Child> StartServe(const std::string& log) {
    return std::make_unique<itest::Child>(console_->Argv({"serve"}), console_->Env(), log, log, true);
  }

  std::unique_ptr<NatsCluster> cluster_;
  std::unique_ptr<Console> console_;
  std::unique_ptr<fleet::NatsClient> client_;
};

TEST_F(FleetConsoleTest, InitMakesStreamsAndBucketsWithThreeReplicas) {
  for (const char* stream : {"SENTINELD_ALERTS", "SENTINELD_EVENTS", "SENTINELD_SCANS"}) {
    auto info = client_->Request(std::string("$JS.API.STREAM.INFO.") + stream, "", 5000);
    ASSERT_TRUE(info.ok()) << stream << ": " << info.status().message();
    const json j = ParseJson(info->data);
    EXPECT_EQ(j["config"]["num_replicas"], 3) << info->data;
    EXPECT_EQ(j["config"]["duplicate_window"], int64_t{120} * 1000 * 1000 * 1000) << info->data;
  }
  for (const char* bucket : {"KV_sentineld_hosts", "KV_sentineld_rules"}) {
    auto info = client_->Request(std::string("$JS.API.STREAM.INFO.") + bucket, "", 5000);
    ASSERT_TRUE(info.ok()) << bucket << ": " << info.status().message();
    EXPECT_EQ(ParseJson(info->data)["config"]["num_replicas"], 3) << info->data;
  }
  // Again: an update, not an error.
  auto again = console_->Run({"init", "--max-age", "7d"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  auto info = client_->Request("$JS.API.STREAM.INFO.SENTINELD_ALERTS", "", 5000);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(ParseJson(info->data)["config"]["max_age"], int64_t{7} * 86400 * 1000 * 1000 * 1000);

  // The limits from the console's configuration; a flag still wins.
  {
    std::ofstream cfg(console_->config(), std::ios::app);
    cfg << "  stream_max_age_days: 3\n  stream_max_bytes: 1048576\n";
  }
  auto configured = console_->Run({"init"});
  EXPECT_EQ(configured.exit_code, 0) << configured.err;
  for (const char* stream : {"SENTINELD_ALERTS", "SENTINELD_EVENTS", "SENTINELD_SCANS"}) {
    info = client_->Request(std::string("$JS.API.STREAM.INFO.") + stream, "", 5000);
    ASSERT_TRUE(info.ok());
    const json j = ParseJson(info->data);
    EXPECT_EQ(j["config"]["max_age"], int64_t{3} * 86400 * 1000 * 1000 * 1000) << stream;
    EXPECT_EQ(j["config"]["max_bytes"], 1048576) << stream;
  }
  auto flagged = console_->Run({"init", "--max-bytes", "2097152"});
  EXPECT_EQ(flagged.exit_code, 0) << flagged.err;
  info = client_->Request("$JS.API.STREAM.INFO.SENTINELD_SCANS", "", 5000);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(ParseJson(info->data)["config"]["max_bytes"], 2097152);
  EXPECT_EQ(ParseJson(info->data)["config"]["max_age"], int64_t{3} * 86400 * 1000 * 1000 * 1000);
  // A zero byte limit would make every stream refuse every message: refused, naming the key.
  std::vector<std::string> env = console_->Env();
  env.push_back("SENTINELD_CONSOLE__STREAM_MAX_BYTES=0");
  auto zero = testing::Run(console_->Argv({"init"}), env);
  EXPECT_EQ(zero.exit_code, 2) << zero.out << zero.err;
  EXPECT_NE(zero.err.find("console.stream_max_bytes"), std::string::npos) << zero.err;
}

TEST_F(FleetConsoleTest, ServeStoresEveryAlertOnceInEachHostsOrderAcrossARestart) {
  const std::string log = console_->File("serve.log");
  auto serve = StartServe(log);
  for (int64_t id = 1; id <= 40; ++id) {
    for (const std::string host : {"h1", "h2"}) PublishAlert(*client_, host, id, fleet::AlertMsgId(host, id));
  }
  // The same alerts again after the stream's duplicate window (no Msg-Id to
  // match): the store's key absorbs them.
  for (int64_t id = 1; id <= 5; ++id) PublishAlert(*client_, "h1", id, "");
  ASSERT_TRUE(itest::WaitFor([&] { return ListAlerts(*console_).size() == 80; }, kWait))
      << ListAlerts(*console_).size() << " alerts; serve log: " << testing::ReadFile(log);
  // SIGTERM: a clean stop.
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);

  // Published while the console is down, then taken by a new serve from the durable consumer.
  for (int64_t id = 41; id <= 50; ++id) PublishAlert(*client_, "h1", id, fleet::AlertMsgId("h1", id));
  serve = StartServe(log);
  ASSERT_TRUE(itest::WaitFor([&] { return ListAlerts(*console_).size() == 90; }, kWait))
      << testing::ReadFile(log);
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0);

  for (const auto& [host, count] : std::map<std::string, int64_t>{{"h1", 50}, {"h2", 40}}) {
    const json alerts = ListAlerts(*console_, {"--host", host});
    ASSERT_EQ(static_cast<int64_t>(alerts.size()), count) << host;
    std::map<int64_t, std::string> by_seq;
    for (const json& a : alerts) by_seq[a["host_seq"].get<int64_t>()] = a["alert_id"].get<std::string>();
    ASSERT_EQ(static_cast<int64_t>(by_seq.size()), count);
    int64_t expected = 1;
    for (const auto& [seq, alert_id] : by_seq) {
      EXPECT_EQ(seq, expected) << host;
      EXPECT_EQ(alert_id, std::to_string(expected)) << host << " host_seq " << seq;
      ++expected;
    }
  }
  // `alerts show HOST:ID` and by the console's id.
  auto shown = console_->Run({"--json", "alerts", "show", "h2:7"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const json one = ParseJson(shown.out);
  EXPECT_EQ(one["alert"]["title"], "alert 7");
  auto by_id = console_->Run({"--json", "alerts", "show", std::to_string(one["id"].get<int64_t>())});
  ASSERT_EQ(by_id.exit_code, 0);
  EXPECT_EQ(ParseJson(by_id.out)["alert_id"], "7");
  EXPECT_EQ(console_->Run({"alerts", "show", "h2:999"}).exit_code, 2);
}

// console.alert_retention_days: serve deletes what arrived before it (by the
// console's clock), keeps each host's newest, and numbering goes on.
TEST_F(FleetConsoleTest, ServeDeletesAlertsPastTheRetentionAndKeepsEachHostsNewest) {
  const std::string log = console_->File("serve.log");
  auto serve = StartServe(log);
  for (int64_t id = 1; id <= 10; ++id) PublishAlert(*client_, "h1", id, fleet::AlertMsgId("h1", id));
  for (int64_t id = 1; id <= 3; ++id) PublishAlert(*client_, "h2", id, fleet::AlertMsgId("h2", id));
  ASSERT_TRUE(itest::WaitFor([&] { return ListAlerts(*console_).size() == 13; }, kWait))
      << testing::ReadFile(log);
  serve->Signal(SIGTERM);
  ASSERT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);

  // h1's alerts 1-6 and all of h2's arrived 40 days ago.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(console_->database().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE alerts SET received_at_ms = received_at_ms - 40 * 86400000"
                         " WHERE host_id = 'h2' OR (host_id = 'h1' AND CAST(alert_id AS INTEGER) <= 6)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_EQ(sqlite3_changes(db), 9);
  sqlite3_close(db);

  std::vector<std::string> env = console_->Env();
  env.push_back("SENTINELD_CONSOLE__ALERT_RETENTION_DAYS=30");
  serve = std::make_unique<itest::Child>(console_->Argv({"serve"}), env, log, log, true);
  ASSERT_TRUE(itest::WaitFor([&] { return ListAlerts(*console_).size() == 5; }, kWait))
      << testing::ReadFile(log);
  std::set<std::string> left;
  for (const json& a : ListAlerts(*console_)) {
    left.insert(a["host_id"].get<std::string>() + ":" + a["alert_id"].get<std::string>());
  }
  EXPECT_EQ(left, (std::set<std::string>{"h1:7", "h1:8", "h1:9", "h1:10", "h2:3"}));
  EXPECT_NE(testing::ReadFile(log).find("\"deleted\":8"), std::string::npos) << testing::ReadFile(log);

  PublishAlert(*client_, "h2", 4, fleet::AlertMsgId("h2", 4));
  ASSERT_TRUE(itest::WaitFor([&] { return ListAlerts(*console_).size() == 6; }, kWait))
      << testing::ReadFile(log);
  auto shown = console_->Run({"--json", "alerts", "show", "h2:4"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(ParseJson(shown.out)["host_seq"], 4);
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);
}

TEST_F(FleetConsoleTest, HeartbeatsReachTheStoreAndHostileNamesAreEscaped) {
  const std::string log = console_->File("serve.log");
  auto serve = StartServe(log);
  PutHeartbeat(*client_, "h1", "web-1\x1b[2J\nevil");
  PutHeartbeat(*client_, "h2", "db-1");
  ASSERT_TRUE(itest::WaitFor(
      [&] { return itest::TryQueryInt(console_->database(), "SELECT count(*) FROM hosts").value_or(0) == 2; },
      kWait))
      << testing::ReadFile(log);
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0);
  auto table = console_->Run({"hosts"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find('\x1b'), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("web-1\\x1b[2J\\nevil"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("db-1"), std::string::npos);
  auto js = console_->Run({"--json", "hosts"});
  ASSERT_EQ(js.exit_code, 0);
  const json hosts = ParseJson(js.out);
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0]["hostname"], "web-1\x1b[2J\nevil");  // JSON carries the exact text, escaped as \u001b
  EXPECT_EQ(js.out.find('\x1b'), std::string::npos);
}

// The hosts' status as `hosts --json` prints it: host_id -> status.
std::map<std::string, std::string> HostStatuses(const Console& c) {
  auto r = c.Run({"--json", "hosts"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, std::string> out;
  const json j = json::parse(r.out, nullptr, false);
  if (!j.is_array()) return out;
  for (const json& h : j) out[h.value("host_id", "")] = h.value("status", "");
  return out;
}

TEST_F(FleetConsoleTest, HostsSaysWhoIsStaleAndForgetsTheHostsThatAreGone) {
  const std::string log = console_->File("serve.log");
  auto serve = StartServe(log);
  PutHeartbeat(*client_, "h1", "web-1");
  PutHeartbeat(*client_, "h2", "db-1");
  // h3 last reported five minutes ago (its clock): stale. It forwards events and is 7 behind.
  const json old{{"host_id", "h3"},
                 {"hostname", "old-1"},
                 {"sent_at", NowMs() / 1000 - 300},
                 {"forward", {{"events", {{"cursor", 12}, {"pending", 7}}}}}};
  ASSERT_TRUE(client_->KvPut(std::string(fleet::kHostsBucket), "h3", old.dump()).ok());
  PublishAlert(*client_, "h1", 1, fleet::AlertMsgId("h1", 1));
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        return itest::TryQueryInt(console_->database(), "SELECT count(*) FROM hosts").value_or(0) == 3 &&
               ListAlerts(*console_).size() == 1;
      },
      kWait))
      << testing::ReadFile(log);
  serve->Signal(SIGTERM);
  ASSERT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);
  EXPECT_EQ(HostStatuses(*console_),
            (std::map<std::string, std::string>{{"h1", "online"}, {"h2", "online"}, {"h3", "stale"}}));
  const json listed = ParseJson(console_->Run({"--json", "hosts"}).out);
  ASSERT_EQ(listed.size(), 3u) << listed.dump();
  EXPECT_TRUE(listed[0]["forward_pending"].is_null()) << listed.dump();
  EXPECT_EQ(listed[2]["forward_pending"], 7) << listed.dump();

  auto forget = console_->Run({"--json", "hosts", "forget", "h1"});
  ASSERT_EQ(forget.exit_code, 0) << forget.out << forget.err;
  EXPECT_EQ(ParseJson(forget.out),
            json::parse(R"([{"host_id":"h1","store":"deleted","heartbeat_key":"deleted"}])"));
  auto key = client_->KvGet(std::string(fleet::kHostsBucket), "h1");
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_FALSE(key->has_value()) << **key;
  EXPECT_EQ(HostStatuses(*console_), (std::map<std::string, std::string>{{"h2", "online"}, {"h3", "stale"}}));
  EXPECT_EQ(ListAlerts(*console_).size(), 1u) << "a forgotten host's alerts stay";

  // Unknown, malformed, and a broker that is down.
  auto unknown = console_->Run({"hosts", "forget", "h1"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out << unknown.err;
  EXPECT_NE(unknown.err.find("unknown host h1"), std::string::npos) << unknown.err;
  auto bad = console_->Run({"hosts", "forget", "h\x1b[2J"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("is not a host id"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find('\x1b'), std::string::npos) << bad.err;
  std::vector<std::string> down_env = console_->Env();
  down_env.push_back("SENTINELD_FLEET__SERVERS=[\"nats://127.0.0.1:" + std::to_string(testing::FreePort()) +
                     "\"]");
  auto down = testing::Run(console_->Argv({"hosts", "forget", "h2"}), down_env);
  EXPECT_EQ(down.exit_code, 1) << down.out << down.err;
  EXPECT_NE(down.err.find("no host forgotten"), std::string::npos) << down.err;
  EXPECT_EQ(itest::TryQueryInt(console_->database(), "SELECT count(*) FROM hosts WHERE host_id = 'h2'"), 1);

  // serve started again does not bring h1 back: h2's next heartbeat comes after every key's
  // current value in the watch.
  serve = StartServe(log);
  const std::string seen_before = std::to_string(
      itest::TryQueryInt(console_->database(), "SELECT revision FROM hosts WHERE host_id = 'h2'")
          .value_or(0));
  PutHeartbeat(*client_, "h2", "db-1b");
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        return itest::TryQueryInt(
                   console_->database(),
                   "SELECT count(*) FROM hosts WHERE host_id = 'h2' AND revision > " + seen_before)
                   .value_or(0) == 1;
      },
      kWait))
      << testing::ReadFile(log);
  EXPECT_EQ(itest::TryQueryInt(console_->database(), "SELECT count(*) FROM hosts"), 2);
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);
}

TEST_F(FleetConsoleTest, ServeForgetsAHostSilentPastTheExpiryAndKeepsItsAlerts) {
  const std::string log = console_->File("serve.log");
  auto serve = StartServe(log);
  PutHeartbeat(*client_, "h1", "gone-1");
  PutHeartbeat(*client_, "h2", "here-1");
  PublishAlert(*client_, "h1", 1, fleet::AlertMsgId("h1", 1));
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        return itest::TryQueryInt(console_->database(), "SELECT count(*) FROM hosts").value_or(0) == 2 &&
               ListAlerts(*console_).size() == 1;
      },
      kWait))
      << testing::ReadFile(log);
  serve->Signal(SIGTERM);
  ASSERT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);

  // The console last heard of h1 40 days ago.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(console_->database().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE hosts SET seen_at_ms = seen_at_ms - 40 * 86400000 WHERE host_id = 'h1'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const std::string aged = "SELECT seen_at_ms FROM hosts WHERE host_id = 'h1'";
  const auto aged_at = itest::TryQueryInt(console_->database(), aged);
  ASSERT_TRUE(aged_at.has_value());

  // Started again without an expiry: the watch delivers h1's value again, which must not make
  // it look heard of now (h2's new heartbeat comes after it).
  serve = StartServe(log);
  PutHeartbeat(*client_, "h2", "here-1b");
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        return itest::TryQueryInt(console_->database(),
                                  "SELECT count(*) FROM hosts WHERE hostname = 'here-1b'")
                   .value_or(0) == 1;
      },
      kWait))
      << testing::ReadFile(log);
  EXPECT_EQ(itest::TryQueryInt(console_->database(), aged), aged_at);
  serve->Signal(SIGTERM);
  ASSERT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);

  std::vector<std::string> env = console_->Env();
  env.push_back("SENTINELD_CONSOLE__HOST_EXPIRY_DAYS=30");
  serve = std::make_unique<itest::Child>(console_->Argv({"serve"}), env, log, log, true);
  ASSERT_TRUE(itest::WaitFor(
      [&] { return itest::TryQueryInt(console_->database(), "SELECT count(*) FROM hosts").value_or(0) == 1; },
      kWait))
      << testing::ReadFile(log);
  EXPECT_EQ(itest::TryQueryInt(console_->database(), "SELECT count(*) FROM hosts WHERE host_id = 'h2'"), 1);
  auto key = client_->KvGet(std::string(fleet::kHostsBucket), "h1");
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_FALSE(key->has_value());
  EXPECT_NE(testing::ReadFile(log).find("\"host_id\":\"h1\""), std::string::npos) << testing::ReadFile(log);
  EXPECT_EQ(ListAlerts(*console_).size(), 1u) << "an expired host's alerts stay";
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);

  // A value out of range is refused at start, naming the key.
  env.back() = "SENTINELD_CONSOLE__HOST_EXPIRY_DAYS=-1";
  auto refused = testing::Run(console_->Argv({"serve"}), env);
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("console.host_expiry_days"), std::string::npos) << refused.err;
}

TEST_F(FleetConsoleTest, QueryPrintsEachHostsRowsAndNamesTheHostThatDidNotAnswer) {
  StandInHost h1(cluster_->urls(), "h1", console_->public_key());
  StandInHost h2(cluster_->urls(), "h2", console_->public_key());
  for (const char* h : {"h1", "h2", "h3"}) PutHeartbeat(*client_, h, std::string("host-") + h);
  auto r = console_->Run({"--json", "query", "SELECT name FROM processes", "--timeout", "3s"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("h3"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("h1"), std::string::npos) << r.err;
  const json rows = ParseJson(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  std::multiset<std::string> hosts;
  for (const json& row : rows) {
    hosts.insert(row["host_id"].get<std::string>());
    EXPECT_EQ(row["host"], row["host_id"]);  // each host's own rows under its id
  }
  EXPECT_EQ(hosts, (std::multiset<std::string>{"h1", "h1", "h2", "h2"}));

  auto named = console_->Run({"--format", "csv", "query", "SELECT 1", "--hosts", "h2,h1"});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(itest::SplitLines(named.out).size(), 5u) << named.out;  // header + 4 rows
  EXPECT_EQ(itest::SplitLines(named.out)[0], "host_id,host,n");

  auto missing = console_->Run({"query", "SELECT 1", "--hosts", "h1,h9", "--timeout", "2s"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("h9"), std::string::npos) << missing.err;
  EXPECT_NE(missing.out.find("h1"), std::string::npos) << missing.out;
  EXPECT_EQ(h1.refused() + h2.refused(), 0);
}

TEST_F(FleetConsoleTest, AQueryFromAnUntrustedKeyIsRefusedByTheHost) {
  Console other(cluster_->urls());  // its own key, which h1 does not trust
  StandInHost h1(cluster_->urls(), "h1", console_->public_key());
  auto r = other.Run({"query", "SELECT 1", "--hosts", "h1", "--timeout", "3s"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("h1: untrusted_key"), std::string::npos) << r.err;
  EXPECT_EQ(h1.refused(), 1);
  EXPECT_EQ(h1.answered(), 0);
}

TEST_F(FleetConsoleTest, RulesPushPutsABundleTheHostsCanVerifyAndRefusesABadOne) {
  const std::string dir = console_->File("rules");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  testing::WriteFile(
      dir + "/fleet-probe.yaml",
      "id: fleet-probe\nname: Fleet probe\ndescription: a test rule\nseverity: low\n"
      "category: process\ntags: [execution]\nmitre: [T1059]\nenabled: true\ndedup_keys: [pid]\n"
      "query: SELECT pid, name FROM processes WHERE name = 'fleet-probe'\n");
  auto push = console_->Run({"--json", "rules", "push", dir});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  const json pushed = ParseJson(push.out);
  auto stored = client_->KvGet(std::string(fleet::kRulesBucket), std::string(fleet::kRulesBundleKey));
  ASSERT_TRUE(stored.ok() && *stored) << stored.status().message();
  testing::TempDir host;
  auto replay = fleet::ReplayStore::Open(host.File("nonces"));
  ASSERT_TRUE(replay.ok());
  fleet::EnvelopeVerifier verifier({console_->public_key()}, replay->get(), Clock::Real());
  auto verified = verifier.Verify(fleet::EnvelopeKind::kBundle, **stored);
  ASSERT_TRUE(verified.ok()) << verified.refusal().message;
  auto bundle = fleet::ParseBundlePayload(verified->payload);
  ASSERT_TRUE(bundle.ok());
  EXPECT_EQ(bundle->bundle_id, pushed["bundle_id"]);
  ASSERT_EQ(bundle->rules.size(), 1u);
  EXPECT_EQ(bundle->rules[0].file, "fleet-probe.yaml");

  // One bad rule: nothing is pushed (the bucket keeps the previous bundle).
  testing::WriteFile(dir + "/bad.yaml",
                     "id: bad-one\nname: Bad\ndescription: x\nseverity: low\ncategory: process\n"
                     "query: DELETE FROM processes\n");
  auto bad = console_->Run({"rules", "push", dir});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.yaml"), std::string::npos) << bad.err;
  auto after = client_->KvGet(std::string(fleet::kRulesBucket), std::string(fleet::kRulesBundleKey));
  ASSERT_TRUE(after.ok() && *after);
  EXPECT_EQ(**after, **stored);

  // rules status: what each host's heartbeat reports.
  PutHeartbeat(*client_, "h1", "web-1",
               {{"bundle_id", pushed["bundle_id"]},
                {"status", "applied"},
                {"loaded", 1},
                {"refused", json::array()},
                {"at", 1764820000}});
  PutHeartbeat(*client_, "h2", "web-2", nullptr);
  auto status = console_->Run({"--json", "rules", "status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const json rows = ParseJson(status.out);
  ASSERT_EQ(rows.size(), 2u) << status.out;
  EXPECT_EQ(rows[0]["host_id"], "h1");
  EXPECT_EQ(rows[0]["bundle_status"], "applied");
  EXPECT_EQ(rows[0]["loaded"], 1);
  EXPECT_EQ(rows[0]["current"], "yes");
  EXPECT_EQ(rows[1]["current"], "no");
}

// The issue's figure, on the console's side: 20 hosts x 500 alerts published
// as the nats sink does (in order per host, a failed publish retried with the
// same Nats-Msg-Id), one node SIGKILLed mid-stream and brought back, the
// console stopped and started again: exactly 10,000 alerts, none twice, each
// host's in its publish order.
TEST_F(FleetConsoleTest, TwentyHostsOfFiveHundredAlertsThroughANodeKillAndAConsoleRestart) {
  constexpr int kHosts = 20;
  constexpr int64_t kPerHost = 500;
  const std::string log = console_->File("serve.log");
  auto serve = StartServe(log);
  std::atomic<int64_t> published{0};
  std::vector<std::thread> publishers;
  for (int h = 0; h < kHosts; ++h) {
    publishers.emplace_back([&, h] {
      const std::string host = "host-" + std::to_string(h);
      auto client = TestClient(cluster_->urls());
      if (!client) return;
      for (int64_t id = 1; id <= kPerHost; ++id) {
        // As the sink: retry the same message until the stream acknowledges it.
        const bool ok = itest::WaitFor(
            [&] {
              return client
                  ->JsPublish(fleet::AlertSubject(host), AlertJson(id, "a"), fleet::AlertMsgId(host, id),
                              2000)
                  .ok();
            },
            milliseconds(120000), milliseconds(50));
        ASSERT_TRUE(ok) << host << " alert " << id;
        ++published;
      }
    });
  }
  const auto stored = [&] {
    return itest::TryQueryInt(console_->database(), "SELECT count(*) FROM alerts").value_or(0);
  };
  ASSERT_TRUE(itest::WaitFor([&] { return published.load() >= 2000; }, milliseconds(120000)));
  ASSERT_TRUE(cluster_->Kill(1).ok());
  ASSERT_TRUE(itest::WaitFor([&] { return stored() >= 4000; }, milliseconds(120000)))
      << testing::ReadFile(log);
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0) << testing::ReadFile(log);
  if (auto restarted = cluster_->Restart(1); !restarted.ok()) FAIL() << restarted.ToString();
  serve = StartServe(log);
  for (auto& t : publishers) t.join();
  ASSERT_EQ(published.load(), kHosts * kPerHost);
  ASSERT_TRUE(itest::WaitFor([&] { return stored() >= kHosts * kPerHost; }, milliseconds(120000)))
      << stored() << "; " << testing::ReadFile(log);
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0);
  const std::string db = console_->database();
  EXPECT_EQ(itest::QueryInt(db, "SELECT count(*) FROM alerts"), kHosts * kPerHost);
  EXPECT_EQ(itest::QueryInt(db, "SELECT count(DISTINCT host_id || ':' || alert_id) FROM alerts"),
            kHosts * kPerHost);
  EXPECT_EQ(itest::QueryInt(db, "SELECT count(DISTINCT host_id) FROM alerts"), kHosts);
  // Each host's alerts in the stream's order are its alerts 1..500 in publish order.
  EXPECT_EQ(itest::QueryInt(db,
                            "SELECT count(*) FROM (SELECT alert_id, row_number() OVER"
                            " (PARTITION BY host_id ORDER BY stream_seq) AS n FROM alerts)"
                            " WHERE CAST(alert_id AS INTEGER) != n"),
            0);
  // And in the order the console took them (host_seq): what serve's ack-after-commit keeps.
  EXPECT_EQ(itest::QueryInt(db, "SELECT count(*) FROM alerts WHERE CAST(alert_id AS INTEGER) != host_seq"), 0)
      << "host_seq differs from the publish order";
}

// No cluster: nothing listens on the port. Every command that needs the
// broker exits 1 naming it, within its timeout.
TEST(FleetConsoleDownBrokerTest, CommandsNameTheServersAndExit1) {
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  const std::string url = "nats://127.0.0.1:" + std::to_string(testing::FreePort());
  Console console({url});
  const std::string dir = console.File("rules");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  testing::WriteFile(dir + "/probe.yaml",
                     "id: probe\nname: Probe\ndescription: x\nseverity: low\ncategory: process\n"
                     "query: SELECT pid, name FROM processes WHERE name = 'probe'\n");
  for (const auto& args : std::vector<std::vector<std::string>>{{"query", "SELECT 1", "--timeout", "2s"},
                                                                {"init", "--timeout", "2s"},
                                                                {"rules", "push", dir, "--timeout", "2s"}}) {
    auto r = console.Run(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(url), std::string::npos) << args[0] << ": " << r.err;
  }
}

// Bad init flags are usage errors found before any connection: exit 2 naming
// the flag, even with no server there (not exit 1 after the timeout).
TEST(FleetConsoleDownBrokerTest, InitFlagsAreCheckedBeforeConnecting) {
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  const std::string url = "nats://127.0.0.1:" + std::to_string(testing::FreePort());
  Console console({url});
  for (const auto& [args, flag] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"init", "--replicas", "9", "--timeout", "30s"}, "--replicas"},
           {{"init", "--max-age", "soon", "--timeout", "30s"}, "--max-age"},
           {{"init", "--max-bytes", "0", "--timeout", "30s"}, "--max-bytes"}}) {
    auto r = console.Run(args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << ": " << r.err;
    EXPECT_NE(r.err.find(flag), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(url), std::string::npos) << "no connection was tried: " << r.err;
  }
}

}  // namespace
}  // namespace sentinel::fleettest
