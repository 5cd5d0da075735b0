// Alert delivery end to end with the real binaries (SPEC §7): the agent is
// SIGKILLed again and again during a delivery storm and, once it has run to
// completion, every alert is delivered or dead-lettered for every sink, and
// each peer received each alert exactly as many times as alert_deliveries
// says (successes, plus at most the attempts whose outcome the crash made
// unknown). Dead letters go back to delivery through `sentinelcli alerts dlq
// retry` (no network from the CLI) and the next `sentinelagent --once`.
//
// Peers run in this process on loopback: a counting HTTP receiver that can
// fail and flap, and a port with nothing behind it. Alerts are written
// straight into the store, as the detection cycle would commit them, so the
// storm's size does not depend on the host's processes.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "sentinel/fleet/nats_client.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/nats_cluster.h"
#include "sentinel/testing/net.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;

// Counts accepted POSTs per alert id. Modes: accept everything, refuse
// everything (503), or flap (every `flap_every`-th request gets a 500).
class CountingReceiver {
 public:
  CountingReceiver() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      ++requests_;
      const int64_t id = std::atoll(req.get_header_value("X-Sentinel-Alert-Id").c_str());
      const bool refuse = refuse_all_ || (flap_every_ > 0 && requests_ % flap_every_ == 0);
      if (refuse) {
        res.status = refuse_all_ ? 503 : 500;
        res.set_content("not now", "text/plain");
        return;
      }
      json body = json::parse(req.body, nullptr, false);
      if (body.is_discarded() || body.value("id", int64_t{-1}) != id) ++malformed_;
      ++accepted_[id];
      res.status = 200;
      res.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() does nothing before the server runs: wait for it.
    EXPECT_TRUE(WaitFor([this] { return server_.is_running(); }, std::chrono::seconds(30)));
  }
  ~CountingReceiver() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  void SetRefuseAll(bool v) {
    std::lock_guard lock(mu_);
    refuse_all_ = v;
  }
  void SetFlapEvery(int n) {
    std::lock_guard lock(mu_);
    flap_every_ = n;
  }
  std::map<int64_t, int> Accepted() {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  int64_t Requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  int64_t Malformed() {
    std::lock_guard lock(mu_);
    return malformed_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  bool refuse_all_ = false;
  int flap_every_ = 0;
  int64_t requests_ = 0;
  int64_t malformed_ = 0;
  std::map<int64_t, int> accepted_;
};

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = sb_.File("events.db");
    ::mkdir(sb_.File("rules.d").c_str(), 0755);  // readable by the agent's user
  }

  void WriteConfig(const std::string& sinks, int max_attempts, int failure_threshold = 3) {
    testing::WriteFile(sb_.File("config.yaml"),
                       "database: {path: " + db_ + ", audit_path: " + sb_.File("audit.db") +
                           "}\n"
                           "detection: {interval_secs: 1, builtin_rules: false, rules_dirs: [" +
                           sb_.File("rules.d") +
                           "]}\n"
                           "telemetry: {log_format: text, http_listen: \"\"}\n"
                           "alerting:\n"
                           "  retry: {max_attempts: " +
                           std::to_string(max_attempts) +
                           ", initial_backoff_ms: 20, max_backoff_ms: 100}\n"
                           "  circuit_breaker: {failure_threshold: " +
                           std::to_string(failure_threshold) +
                           ", open_secs: 1}\n"
                           "  sinks:\n" +
                           sinks);
  }
  std::vector<std::string> Args(std::vector<std::string> more = {}) const {
    std::vector<std::string> args = {"--config", sb_.File("config.yaml"), "--no-collector"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  RunResult AgentOnce() const { return sb_.Agent(Args({"--once"})); }
  RunResult Cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--config", sb_.File("config.yaml")});
    return sb_.Cli(args);
  }

  // Commits `n` alerts as a detection cycle would (one transaction).
  void InsertAlerts(int n, const std::string& severity = "high") {
    ExecSql(db_,
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + std::to_string(n) +
                ") INSERT INTO alerts(alert_time, rule_id, title, description, severity, affected_processes, "
                "process_count, rule_version, raw_data, dedup_key) SELECT strftime('%s','now') * 1000, "
                "'storm-rule', 'Storm alert', 'made by the test', '" +
                severity +
                "', '[{\"pid\":' || i || ',\"name\":\"p\",\"exe_path\":\"/bin/p\"}]', 1, 1, "
                "'{\"pid\":' || i || '}', hex(randomblob(16)) FROM k");
  }
  int64_t Count(const std::string& sql) const { return QueryInt(db_, sql).value_or(-1); }
  // Per alert id: the value of `sql` grouped by alert_id (sql selects alert_id, n).
  std::map<int64_t, int64_t> PerAlert(const std::string& sql) const;

  Sandbox sb_;
  std::string db_;
};

std::map<int64_t, int64_t> DeliveryTest::PerAlert(const std::string& sql) const {
  // The harness's SQLite helpers return one value; read the grouped result as JSON.
  std::map<int64_t, int64_t> out;
  auto text = QueryInt(db_, "SELECT count(*) FROM (" + sql + ")");
  if (!text || *text == 0) return out;
  const int64_t max_id = QueryInt(db_, "SELECT max(alert_id) FROM (" + sql + ")").value_or(0);
  // Small tables (hundreds of alerts): one query per alert keeps this to the C-API helper.
  for (int64_t id = 1; id <= max_id; ++id) {
    auto v = TryQueryInt(db_, "SELECT n FROM (" + sql + ") WHERE alert_id = " + std::to_string(id));
    if (v) out[id] = *v;
  }
  return out;
}

// Every JSON line of the file sink's output, counted per alert id; a line
// that is not one whole alert object fails the test.
std::map<int64_t, int64_t> FileLines(const std::string& path) {
  std::map<int64_t, int64_t> out;
  if (!testing::FileExists(path)) return out;
  for (const std::string& line : SplitLines(testing::ReadFile(path))) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "torn or garbage line in the file sink: " << line;
    if (j.is_discarded()) continue;
    ++out[j.value("id", int64_t{-1})];
  }
  return out;
}

TEST_F(DeliveryTest, KillDuringStormLosesNothingAndCountsEveryCopy) {
  CountingReceiver hook;
  hook.SetFlapEvery(4);
  // A loopback TCP port nobody listens on (bound, then released).
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/hook";
  const std::string jsonl = sb_.File("alerts.jsonl");
  WriteConfig("    - {name: disk, type: file, path: " + jsonl +
                  ", fsync: batch}\n"
                  "    - {name: hook, type: webhook, url: \"" +
                  hook.Url() +
                  "\", timeout_ms: 2000}\n"
                  "    - {name: dead, type: webhook, url: \"" +
                  dead + "\", timeout_ms: 500}\n",
              /*max_attempts=*/4);
  // Creates and migrates the store; nothing to deliver yet.
  RunResult init = AgentOnce();
  ASSERT_EQ(init.exit_code, 0) << init.err;

  // The storm: alerts keep arriving while the agent is killed at varying points.
  const int kRounds = 6;
  const int kPerRound = 120;
  int64_t killed_with_work_in_flight = 0;
  for (int round = 0; round < kRounds; ++round) {
    InsertAlerts(kPerRound, round % 2 ? "high" : "critical");
    const int64_t before = Count("SELECT count(*) FROM alert_deliveries");
    Child agent({AgentBin(), "--config", sb_.File("config.yaml"), "--no-collector"}, sb_.ProcmondEnv(), "",
                sb_.File("agent" + std::to_string(round) + ".err"));
    // Kill once the agent is visibly delivering: after a different amount of progress each round.
    const int64_t progress = 20 + 70 * round;
    WaitFor(
        [&] {
          return TryQueryInt(db_, "SELECT count(*) FROM alert_deliveries").value_or(0) >= before + progress;
        },
        std::chrono::seconds(20));
    killed_with_work_in_flight += TryQueryInt(db_, "SELECT count(*) FROM delivery_queue").value_or(0) > 0;
    agent.Signal(SIGKILL);
    ASSERT_EQ(agent.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
  }
  EXPECT_GT(killed_with_work_in_flight, 0) << "the storm never had deliveries pending when the agent died";

  // Run to completion: every pending delivery ends delivered or dead-lettered.
  RunResult last = AgentOnce();
  ASSERT_EQ(last.exit_code, 0) << last.err;

  const int64_t alerts = Count("SELECT count(*) FROM alerts");
  ASSERT_EQ(alerts, kRounds * kPerRound);
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_queue"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM alert_deliveries WHERE status = 'in_flight'"), 0);
  EXPECT_EQ(hook.Malformed(), 0);

  // Every (alert, sink): delivered (a success row) xor dead-lettered.
  for (const std::string sink : {"disk", "hook", "dead"}) {
    SCOPED_TRACE(sink);
    const std::string s = "'" + sink + "'";
    EXPECT_EQ(Count("SELECT count(*) FROM alerts a WHERE "
                    "(EXISTS(SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.sink_name = " +
                    s +
                    " AND d.status = 'success')) + "
                    "(EXISTS(SELECT 1 FROM dead_letter_queue q WHERE q.alert_id = a.id AND q.sink_name = " +
                    s + ")) = 1"),
              alerts);
  }
  // Nothing listens on the dead sink's port: every delivery to it is a dead letter.
  EXPECT_EQ(Count("SELECT count(*) FROM dead_letter_queue WHERE sink_name = 'dead'"), alerts);
  EXPECT_EQ(Count("SELECT count(*) FROM alert_deliveries WHERE sink_name = 'dead' AND status = 'success'"),
            0);

  // What each peer holds matches the records: exactly the successes, plus at
  // most the attempts a kill left with an unknown outcome.
  const std::string success =
      "SELECT alert_id, count(*) AS n FROM alert_deliveries WHERE status = 'success' AND "
      "sink_name = ";
  const std::string unknown =
      "SELECT alert_id, count(*) AS n FROM alert_deliveries WHERE status = 'unknown' AND "
      "sink_name = ";
  struct Peer {
    std::string sink;
    std::map<int64_t, int64_t> received;
  };
  std::map<int64_t, int64_t> hook_received;
  for (const auto& [id, n] : hook.Accepted()) hook_received[id] = n;
  std::vector<Peer> peers = {{"disk", FileLines(jsonl)}, {"hook", hook_received}};
  for (const Peer& peer : peers) {
    SCOPED_TRACE(peer.sink);
    auto ok = PerAlert(success + "'" + peer.sink + "' GROUP BY alert_id");
    auto maybe = PerAlert(unknown + "'" + peer.sink + "' GROUP BY alert_id");
    int64_t exact = 0;
    for (int64_t id = 1; id <= alerts; ++id) {
      const int64_t got = peer.received.count(id) ? peer.received.at(id) : 0;
      const int64_t s = ok.count(id) ? ok.at(id) : 0;
      const int64_t u = maybe.count(id) ? maybe.at(id) : 0;
      EXPECT_LE(s, 1) << "alert " << id << " recorded as delivered " << s << " times";
      EXPECT_GE(got, s) << "alert " << id << ": records say delivered " << s << " times, peer has " << got;
      EXPECT_LE(got, s + u) << "alert " << id << ": peer has " << got << " copies, records allow " << s + u;
      if (u == 0) {
        EXPECT_EQ(got, s) << "alert " << id;
        ++exact;
      }
    }
    EXPECT_GT(exact, 0);
  }
  std::cout << "storm: " << alerts << " alerts, " << Count("SELECT count(*) FROM alert_deliveries")
            << " attempts, " << Count("SELECT count(*) FROM alert_deliveries WHERE status = 'unknown'")
            << " of unknown outcome, " << Count("SELECT count(*) FROM dead_letter_queue") << " dead letters, "
            << killed_with_work_in_flight << "/" << kRounds << " kills with deliveries pending\n";
  // Nothing the peers hold is unknown to the store.
  for (const auto& [id, n] : hook_received) EXPECT_TRUE(id >= 1 && id <= alerts) << id;
}

TEST_F(DeliveryTest, DeadLettersGoBackThroughTheCliAndLeaveWhenDelivered) {
  CountingReceiver hook;
  hook.SetRefuseAll(true);
  WriteConfig("    - {name: hook, type: webhook, url: \"" + hook.Url() +
                  "\", timeout_ms: 2000}\n"
                  "    - {name: console, type: stdout, format: text, min_severity: critical}\n",
              /*max_attempts=*/2, /*failure_threshold=*/100);
  ASSERT_EQ(AgentOnce().exit_code, 0);
  InsertAlerts(5);

  RunResult failing = AgentOnce();
  ASSERT_EQ(failing.exit_code, 0) << failing.err;
  EXPECT_TRUE(Contains(failing.err, "dead-letter")) << failing.err;
  EXPECT_EQ(hook.Requests(), 10);  // 5 alerts x 2 attempts, all refused
  EXPECT_EQ(Count("SELECT count(*) FROM alert_deliveries WHERE sink_name = 'hook' AND status = 'failure' "
                  "AND http_status = 503"),
            10);
  // High alerts are below the console's min_severity: never queued for it.
  EXPECT_FALSE(Contains(failing.out, "ALERT HIGH")) << failing.out;
  EXPECT_EQ(Count("SELECT count(*) FROM alert_deliveries WHERE sink_name = 'console'"), 0);

  RunResult list = Cli({"alerts", "dlq", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json letters = json::parse(list.out);
  ASSERT_EQ(letters.size(), 5u) << list.out;
  for (const auto& d : letters) {
    EXPECT_EQ(d["sink"], "hook");
    EXPECT_EQ(d["attempts"], 2);
    EXPECT_TRUE(Contains(d["last_error"].get<std::string>(), "HTTP 503")) << d.dump();
    EXPECT_EQ(d["retry"], "");
  }

  // The receiver recovers; the CLI only queues (the receiver sees nothing from it).
  hook.SetRefuseAll(false);
  RunResult bad = Cli({"alerts", "dlq", "retry", "999999"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_TRUE(Contains(bad.err, "999999")) << bad.err;
  RunResult retry = Cli({"alerts", "dlq", "retry"});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_TRUE(Contains(retry.out, "5 dead letter(s) queued")) << retry.out;
  EXPECT_EQ(hook.Requests(), 10);
  RunResult queued = Cli({"alerts", "dlq", "list", "--json"});
  ASSERT_EQ(queued.exit_code, 0);
  for (const auto& d : json::parse(queued.out)) EXPECT_EQ(d["retry"], "queued");
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_queue"), 5);

  RunResult delivering = AgentOnce();
  ASSERT_EQ(delivering.exit_code, 0) << delivering.err;
  EXPECT_EQ(Count("SELECT count(*) FROM dead_letter_queue"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_queue"), 0);
  auto accepted = hook.Accepted();
  EXPECT_EQ(accepted.size(), 5u);
  for (const auto& [id, n] : accepted) EXPECT_EQ(n, 1) << "alert " << id;
  RunResult empty = Cli({"alerts", "dlq", "list", "--json"});
  ASSERT_EQ(empty.exit_code, 0);
  EXPECT_EQ(json::parse(empty.out).size(), 0u);
}

TEST_F(DeliveryTest, ConsoleSinkPrintsTextAndJsonLines) {
  WriteConfig(
      "    - {name: text, type: stdout, format: text}\n"
      "    - {name: json, type: stdout, format: json, min_severity: critical}\n",
      /*max_attempts=*/1);
  ASSERT_EQ(AgentOnce().exit_code, 0);
  InsertAlerts(2, "high");
  InsertAlerts(1, "critical");
  RunResult r = AgentOnce();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int text = 0, objects = 0;
  for (const std::string& line : SplitLines(r.out)) {
    if (Contains(line, " ALERT HIGH storm-rule #") || Contains(line, " ALERT CRITICAL storm-rule #")) {
      ++text;
      EXPECT_TRUE(Contains(line, "| pid ")) << line;
    }
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) {
      ++objects;
      EXPECT_EQ(j["severity"], "critical");
    }
  }
  EXPECT_EQ(text, 3) << r.out;
  EXPECT_EQ(objects, 1) << r.out;
  EXPECT_EQ(Count("SELECT count(*) FROM alert_deliveries WHERE status = 'success'"), 4);
}

// SPEC §14: with fleet.servers set (and forward: [alerts], the default) the real agent sends its
// alerts to JetStream through the implicit nats sink: subject sentineld.alerts.<host_id>,
// Nats-Msg-Id <host_id>:<alert id>, each once, in order.
TEST_F(DeliveryTest, FleetServersSendTheAlertsToJetStream) {
  if (auto why = testing::NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  auto cluster = testing::NatsCluster::Start(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  fleet::ConnectOptions o;
  o.servers = (*cluster)->urls();
  auto console = fleet::NatsClient::Connect(o);
  ASSERT_TRUE(console.ok()) << console.status().ToString();
  ASSERT_TRUE((*console)
                  ->EnsureStream({.name = std::string(fleet::kAlertsStream),
                                  .subjects = {std::string(fleet::kAlertsSubjects)}})
                  .ok());
  WriteConfig("    []\n", /*max_attempts=*/3);
  testing::WriteFile(sb_.File("config.yaml"), testing::ReadFile(sb_.File("config.yaml")) +
                                                  "fleet: {servers: [\"" + (*cluster)->url(0) +
                                                  "\"], host_id: itest-host}\n");
  RunResult init = AgentOnce();
  ASSERT_EQ(init.exit_code, 0) << init.err;
  InsertAlerts(3);
  RunResult r = AgentOnce();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count("SELECT count(*) FROM alert_deliveries WHERE sink_name = 'fleet' AND status = 'success'"),
            3);
  auto consumer = (*console)->PullSubscribe(std::string(fleet::kAlertsStream),
                                            std::string(fleet::kAlertsSubjects), "itest");
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  auto msgs = (*consumer)->Fetch(10, 2000);
  ASSERT_TRUE(msgs.ok()) << msgs.status().ToString();
  std::vector<std::string> ids;
  for (const fleet::JsMsg& m : *msgs) {
    EXPECT_EQ(m.subject, "sentineld.alerts.itest-host");
    ids.push_back(m.headers.count("Nats-Msg-Id") ? m.headers.at("Nats-Msg-Id") : "?");
    EXPECT_EQ(json::parse(m.data)["rule_id"], "storm-rule");
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"itest-host:1", "itest-host:2", "itest-host:3"}));
}

}  // namespace
}  // namespace sentinel::itest
