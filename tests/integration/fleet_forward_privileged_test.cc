// fleet.forward: [events] with every real part: a nats-server, an agent that
// supervises procmond, and the kernel's exec/exit events (procmond's real-time
// source needs root: label privileged, skipped with the reason otherwise).
// Short-lived processes this test runs reach SENTINELD_EVENTS, each exec and
// exit once, in the store's order, as the store holds them.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>

#include "sentinel/fleet/nats_client.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/nats_cluster.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr const char* kHostId = "host-p";

pid_t RunTrue(const std::string& marker) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/true", "true", marker.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

TEST(FleetForwardPrivilegedTest, RealExecAndExitEventsReachTheStreamOnceInOrder) {
  if (::geteuid() != 0) GTEST_SKIP() << "privileged test: procmond's real-time events need root";
  if (auto why = testing::NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  auto nats = testing::NatsCluster::Start(1);
  ASSERT_TRUE(nats.ok()) << nats.status().message();
  auto console = fleet::NatsClient::Connect({.servers = (*nats)->urls(), .name = "test console"});
  ASSERT_TRUE(console.ok()) << console.status().message();
  fleet::NatsClient& c = **console;
  ASSERT_TRUE(c.EnsureBucket({std::string(fleet::kHostsBucket)}).ok());
  ASSERT_TRUE(c.EnsureBucket({std::string(fleet::kRulesBucket)}).ok());
  ASSERT_TRUE(
      c.EnsureStream({std::string(fleet::kEventsStream), {std::string(fleet::kEventsSubjects)}}).ok());

  Sandbox sb;
  ::chmod(sb.path().c_str(), 0755);
  ASSERT_TRUE(MakeServiceDir(sb.File("data")));
  const std::string db = sb.File("data/events.db");
  ::mkdir(sb.File("rules.d").c_str(), 0755);
  std::vector<std::string> env = DetectionEnv(sb, db, sb.File("rules.d"));
  env.push_back("SENTINELD_DATABASE__AUDIT_PATH=" + sb.File("data/audit.db"));
  env.push_back("SENTINELD_TELEMETRY__HTTP_LISTEN=");
  env.push_back("SENTINELD_IPC__SOCKET_DIR=" + sb.File("run"));
  env.push_back("SENTINELD_DETECTION__INTERVAL_SECS=3600");
  env.push_back("SENTINELD_COLLECTION__INTERVAL_SECS=3600");
  env.push_back("SENTINELD_FLEET__SERVERS=[" + (*nats)->url(0) + "]");
  env.push_back(std::string("SENTINELD_FLEET__HOST_ID=") + kHostId);
  env.push_back("SENTINELD_FLEET__FORWARD=[events]");
  const std::string err = sb.File("agent.err");
  Child agent({AgentBin()}, sb.ProcmondEnv(env), sb.File("agent.out"), err);
  ASSERT_TRUE(WaitFor(
      [&] { return Contains(testing::ReadFile(err), "real-time event source started") || !agent.Running(); },
      seconds(60)))
      << testing::ReadFile(err);
  if (Contains(testing::ReadFile(err), "built without eBPF"))
    GTEST_SKIP() << "procmond without a real-time source";
  ASSERT_TRUE(agent.Running()) << testing::ReadFile(err);

  const std::string marker = "fleet-forward-" + std::to_string(::getpid());
  std::set<int64_t> pids;
  for (int i = 0; i < 5; ++i) pids.insert(RunTrue(marker + "-" + std::to_string(i)));

  // Every exec and exit of those pids, as the store will hold them.
  auto consumer =
      c.PullSubscribe(std::string(fleet::kEventsStream), std::string(fleet::kEventsSubjects), "test");
  ASSERT_TRUE(consumer.ok()) << consumer.status().message();
  std::vector<json> mine;
  std::vector<int64_t> all_ids;
  auto count = [&](const std::string& type) {
    return std::count_if(mine.begin(), mine.end(), [&](const json& e) { return e["event_type"] == type; });
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        auto batch = (*consumer)->Fetch(100, 500);
        if (batch.ok()) {
          for (auto& m : *batch) {
            EXPECT_TRUE(m.ack().ok());
            json e = json::parse(m.data);
            all_ids.push_back(e["id"].get<int64_t>());
            if (pids.count(e["pid"].get<int64_t>()) > 0) mine.push_back(e);
          }
        }
        return count("exec") >= 5 && count("exit") >= 5;
      },
      seconds(90)))
      << mine.size() << " events\n"
      << testing::ReadFile(err);
  EXPECT_EQ(count("exec"), 5);
  EXPECT_EQ(count("exit"), 5);
  EXPECT_TRUE(std::is_sorted(all_ids.begin(), all_ids.end()));
  EXPECT_EQ(std::set<int64_t>(all_ids.begin(), all_ids.end()).size(), all_ids.size()) << "each event once";
  for (const json& e : mine) {
    EXPECT_EQ(e["host_id"], kHostId);
    if (e["event_type"] == "exec") {
      ASSERT_TRUE(e["command_line"].is_array()) << e.dump();
      EXPECT_TRUE(e["command_line"][1].get<std::string>().starts_with(marker)) << e.dump();
      EXPECT_EQ(
          QueryInt(
              db, "SELECT count(*) FROM process_events WHERE id = " + std::to_string(e["id"].get<int64_t>()) +
                      " AND pid = " + std::to_string(e["pid"].get<int64_t>()) + " AND event_type = 'exec'"),
          1);
    }
  }
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(std::chrono::milliseconds(60'000)), 0) << testing::ReadFile(err);
}

}  // namespace
}  // namespace sentinel::itest
