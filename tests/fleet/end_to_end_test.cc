// The fleet end to end with every real part (SPEC §14): a 3-node NATS
// JetStream cluster, three real sentinelagent hosts (own data dirs and host
// ids; the fleet's implicit nats sink of fleet.forward [alerts], heartbeats
// and the live-query responder) and the real
// sentinelfleet console. An alert raised on one host (procmond scans a
// process running from a deleted binary; the agent's built-in rule fires)
// shows in `sentinelfleet alerts list`; a query over the hosts returns each
// host's rows; a stopped host is named as not answering while the others'
// rows are printed.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/testing/nats_cluster.h"
#include "tests/fleet/fleet_harness.h"
#include "tests/integration/harness.h"

namespace sentinel::fleettest {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::NatsCluster;

constexpr milliseconds kWait{60000};  // a guard against hanging, not a timing assertion

// One host: its own sandbox (data dir, HOME, sockets), store and host id.
class FleetHost {
 public:
  FleetHost(std::string host_id, const std::vector<std::string>& servers, const std::string& trusted_key)
      : host_id_(std::move(host_id)) {
    ::mkdir(sb_.File("rules.d").c_str(), 0755);
    std::string list;
    for (const std::string& s : servers) list += (list.empty() ? "" : ", ") + ("\"" + s + "\"");
    testing::WriteFile(config(), "database: {path: " + sb_.File("events.db") + ", audit_path: " +
                                     sb_.File("audit.db") + "}\ndetection: {interval_secs: 1, rules_dirs: [" +
                                     sb_.File("rules.d") + "]}\nfleet:\n  servers: [" + list +
                                     "]\n  host_id: " + host_id_ + "\n  trusted_keys: [" + trusted_key +
                                     "]\n"
                                     "telemetry: {log_format: text, http_listen: \"\"}\n");
    ::chmod(config().c_str(), 0644);  // the agent's user reads it
  }
  std::string config() const { return sb_.File("fleet.yaml"); }
  const std::string& id() const { return host_id_; }

  // procmond --once into the host's store.
  void Scan() {
    auto r = sb_.Procmond({"--config", config(), "--once"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void Start() {
    agent_ = std::make_unique<itest::Child>(
        std::vector<std::string>{itest::AgentBin(), "--config", config(), "--no-collector"},
        sb_.ProcmondEnv(), log(), log(), true);
  }
  void Stop() {
    agent_->Signal(SIGTERM);
    EXPECT_TRUE(agent_->Wait(kWait).has_value()) << log();
    agent_.reset();
  }
  std::string log() const { return sb_.File("agent.log"); }
  const itest::Sandbox& sandbox() const { return sb_; }

 private:
  std::string host_id_;
  itest::Sandbox sb_;
  std::unique_ptr<itest::Child> agent_;
};

TEST(FleetEndToEndTest, AlertsReachTheConsoleAndAQueryNamesTheStoppedHost) {
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  auto cluster = NatsCluster::Start(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  Console console((*cluster)->urls());
  ASSERT_EQ(console.Run({"init"}).exit_code, 0);
  auto serve = std::make_unique<itest::Child>(console.Argv({"serve"}), console.Env(),
                                              console.File("serve.log"), console.File("serve.log"), true);

  std::vector<std::unique_ptr<FleetHost>> hosts;
  for (const char* id : {"host-a", "host-b", "host-c"}) {
    hosts.push_back(std::make_unique<FleetHost>(id, (*cluster)->urls(), console.public_key()));
  }
  itest::DeletedBinary implant(hosts[0]->sandbox().File("implant"));
  for (auto& h : hosts) {
    h->Scan();
    h->Start();
  }
  // Every host's heartbeat reaches the console.
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        auto r = console.Run({"--json", "hosts"});
        return r.exit_code == 0 && json::parse(r.out, nullptr, false).size() == 3;
      },
      kWait))
      << console.Run({"hosts"}).out << testing::ReadFile(hosts[0]->log());

  // host-a's alert, through its nats sink, JetStream and serve.
  json alert;
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        auto r = console.Run({"--json", "alerts", "list", "--host", "host-a"});
        for (const json& a : json::parse(r.out, nullptr, false)) {
          if (a.is_object() && a["rule_id"] == "proc-deleted-executable") alert = a;
        }
        return alert.is_object();
      },
      kWait))
      << testing::ReadFile(hosts[0]->log()) << testing::ReadFile(console.File("serve.log"));
  auto shown = console.Run({"--json", "alerts", "show", "host-a:" + alert["alert_id"].get<std::string>()});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(json::parse(shown.out)["alert"]["raw_data"]["pid"], implant.pid());

  // A query over every host: each host's own rows under its id.
  auto all = console.Run({"--json", "query", "SELECT count(*) AS n FROM processes", "--timeout", "10s"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  std::set<std::string> answered;
  for (const json& row : json::parse(all.out)) {
    answered.insert(row["host_id"].get<std::string>());
    EXPECT_GT(row["n"].get<int64_t>(), 0) << all.out;
  }
  EXPECT_EQ(answered, (std::set<std::string>{"host-a", "host-b", "host-c"}));

  // host-c stops: named, the others' rows still printed.
  hosts[2]->Stop();
  auto named = console.Run({"--json", "query", "SELECT count(*) AS n FROM processes", "--hosts",
                            "host-a,host-b,host-c", "--timeout", "3s"});
  EXPECT_EQ(named.exit_code, 1);
  EXPECT_NE(named.err.find("host-c"), std::string::npos) << named.err;
  answered.clear();
  for (const json& row : json::parse(named.out)) answered.insert(row["host_id"].get<std::string>());
  EXPECT_EQ(answered, (std::set<std::string>{"host-a", "host-b"}));

  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0);
}

}  // namespace
}  // namespace sentinel::fleettest
