// The whole NATS cluster down for a minute (SPEC §14: "A broker that is down
// queues alerts on the host; they are delivered in order when it is back").
// Every part is real: a 3-node JetStream cluster, the sentinelfleet console
// (init, serve) and two sentinelagent hosts, each supervising its own
// procmond (scans every kIntervalSecs) and running one user rule that raises
// an alert for every scan that sees the host's beacon process (dedup key
// [pid, scan_id]): the alerts are the detection's own output, one per cycle
// that found a new scan.
//
// The three nats-server processes are SIGKILLed (by pid, through the
// fixture) and kept down kOutageSecs (SENTINEL_FLEET_OUTAGE_SECS overrides
// the 60 s, for a quick local run) while the hosts scan and raise alerts;
// then restarted on the same store directories. Checked afterwards, on
// counts only (no timing assertion; slack derived from the configuration):
//   - every alert each host stored is in the console exactly once, and each
//     host's alerts are in the console in the host's order (host_seq = id);
//   - nothing was dead-lettered on the hosts;
//   - during the outage each host kept scanning and detecting: at least a
//     quarter of the scans the configured interval gives (and at least 3)
//     completed, and the rule raised alerts for them, stored locally.
// The measured figures (scans, alerts raised and waiting at the restart,
// median scan gap, drain time) are printed for docs/fleet.md.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/base/time.h"
#include "sentinel/testing/nats_cluster.h"
#include "tests/fleet/fleet_harness.h"
#include "tests/integration/harness.h"

namespace sentinel::fleettest {
namespace {

using std::chrono::milliseconds;
using testing::NatsCluster;

constexpr int kIntervalSecs = 2;  // collection.interval_secs and detection.interval_secs
constexpr int kDefaultOutageSecs = 60;
constexpr milliseconds kWait{120000};  // a guard against hanging, not a timing assertion

int OutageSecs() {
  const char* v = std::getenv("SENTINEL_FLEET_OUTAGE_SECS");
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : kDefaultOutageSecs;
}

// One host: its own sandbox (data dir, HOME, control socket), host id, a
// beacon process and the rule that alerts on it once per scan; the agent
// supervises procmond.
class OutageHost {
 public:
  OutageHost(std::string host_id, const std::vector<std::string>& servers, const std::string& trusted_key)
      : host_id_(std::move(host_id)), beacon_({"/bin/sleep", "600"}, {}) {
    ::mkdir(sb_.File("rules.d").c_str(), 0755);
    EXPECT_TRUE(itest::MakeServiceDir(sb_.File("run")));
    testing::WriteFile(sb_.File("rules.d/beacon.yaml"),
                       "id: outage-beacon\nname: Outage beacon\nseverity: low\ndedup_keys: [pid, scan_id]\n"
                       "query: |\n  SELECT pid, name, scan_id FROM processes WHERE pid = " +
                           std::to_string(beacon_.pid()) + "\n");
    std::string list;
    for (const std::string& s : servers) list += (list.empty() ? "" : ", ") + ("\"" + s + "\"");
    const std::string interval = std::to_string(kIntervalSecs);
    testing::WriteFile(config(), "database: {path: " + db() + ", audit_path: " + sb_.File("audit.db") +
                                     "}\ncollection: {interval_secs: " + interval +
                                     ", realtime_events: false}\ndetection: {interval_secs: " + interval +
                                     ", builtin_rules: false, rules_dirs: [" + sb_.File("rules.d") +
                                     "]}\nipc: {socket_dir: " + sb_.File("run") + "}\nfleet:\n  servers: [" +
                                     list + "]\n  host_id: " + host_id_ + "\n  trusted_keys: [" +
                                     trusted_key + "]\ntelemetry: {log_format: text, http_listen: \"\"}\n");
    ::chmod(config().c_str(), 0644);  // the agent's user reads it
  }
  std::string config() const { return sb_.File("fleet.yaml"); }
  std::string db() const { return sb_.File("events.db"); }
  std::string log() const { return sb_.File("agent.log"); }
  const std::string& id() const { return host_id_; }

  void Start() {
    agent_ = std::make_unique<itest::Child>(std::vector<std::string>{itest::AgentBin(), "--config", config()},
                                            sb_.ProcmondEnv(), log(), log(), true);
  }
  void Stop() {
    if (!agent_) return;
    agent_->Signal(SIGTERM);
    EXPECT_TRUE(agent_->Wait(kWait).has_value()) << testing::ReadFile(log());
    agent_.reset();
  }
  // Ends (and reaps: a zombie would still be listed) the beacon: the rule has
  // nothing to report any more.
  void StopBeacon() {
    beacon_.Signal(SIGKILL);
    EXPECT_TRUE(beacon_.Wait(kWait).has_value());
  }

  int64_t Count(const std::string& sql) const { return itest::TryQueryInt(db(), sql).value_or(-1); }

 private:
  std::string host_id_;
  itest::Sandbox sb_;
  itest::Child beacon_;
  std::unique_ptr<itest::Child> agent_;
};

std::string Window(int64_t from_ms, int64_t to_ms) {
  return " BETWEEN " + std::to_string(from_ms) + " AND " + std::to_string(to_ms);
}

// What one host did while the cluster was down.
struct OutageFigures {
  int64_t scans = 0;               // completed scans that started in the window
  int64_t median_gap_ms = 0;       // between those scans' starts
  int64_t alerts_raised = 0;       // alerts stored locally in the window
  int64_t waiting_at_restart = 0;  // alerts not yet delivered when the cluster came back
};

OutageFigures Measure(const OutageHost& h, int64_t down_ms, int64_t up_ms) {
  OutageFigures f;
  const std::string in_window = Window(down_ms, up_ms);
  f.scans =
      h.Count("SELECT count(*) FROM scan_metadata WHERE status = 'completed' AND started_at_ms" + in_window);
  f.median_gap_ms = h.Count(
      "WITH s AS (SELECT started_at_ms - lag(started_at_ms) OVER (ORDER BY scan_id) AS gap FROM "
      "scan_metadata WHERE status = 'completed' AND started_at_ms" +
      in_window +
      "), g AS (SELECT gap FROM s WHERE gap IS NOT NULL ORDER BY gap) "
      "SELECT gap FROM g LIMIT 1 OFFSET (SELECT count(*) / 2 FROM g)");
  f.alerts_raised = h.Count("SELECT count(*) FROM alerts WHERE alert_time" + in_window);
  f.waiting_at_restart = h.Count(
      "SELECT count(*) FROM alerts a WHERE NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = "
      "a.id AND d.sink_name = 'fleet' AND d.status = 'success')");
  return f;
}

int64_t ConsoleCount(const Console& c, const std::string& where) {
  return itest::TryQueryInt(c.database(), "SELECT count(*) FROM alerts WHERE " + where).value_or(-1);
}

TEST(FleetOutageTest, WholeClusterDownAMinuteEveryAlertArrivesOnceAndScansKeepTheirCadence) {
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  const int outage_secs = OutageSecs();
  auto cluster = NatsCluster::Start(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  Console console((*cluster)->urls());
  ASSERT_EQ(console.Run({"init"}).exit_code, 0);
  auto serve = std::make_unique<itest::Child>(console.Argv({"serve"}), console.Env(),
                                              console.File("serve.log"), console.File("serve.log"), true);
  std::vector<std::unique_ptr<OutageHost>> hosts;
  for (const char* id : {"outage-a", "outage-b"})
    hosts.push_back(std::make_unique<OutageHost>(id, (*cluster)->urls(), console.public_key()));
  for (auto& h : hosts) h->Start();

  // Alerts flow before the outage: each host's reach the console.
  for (auto& h : hosts) {
    ASSERT_TRUE(
        itest::WaitFor([&] { return ConsoleCount(console, "host_id = '" + h->id() + "'") >= 2; }, kWait))
        << testing::ReadFile(h->log()) << testing::ReadFile(console.File("serve.log"));
  }

  for (int i = 0; i < (*cluster)->size(); ++i) ASSERT_TRUE((*cluster)->Kill(i).ok());
  const int64_t down_ms = NowMs();  // from here on no node runs: nothing raised now can be delivered
  std::this_thread::sleep_for(std::chrono::seconds(outage_secs));  // the outage itself, not a wait
  const int64_t up_ms = NowMs();
  std::vector<OutageFigures> figures;
  for (auto& h : hosts) figures.push_back(Measure(*h, down_ms, up_ms));
  for (int i = 0; i < (*cluster)->size(); ++i) {
    if (auto restarted = (*cluster)->Restart(i); !restarted.ok()) FAIL() << restarted.ToString();
  }
  // The backlog: every alert stored before the restart reaches the console.
  const std::string before_up = "alert_time <= " + std::to_string(up_ms);
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        for (auto& h : hosts) {
          if (ConsoleCount(console, "host_id = '" + h->id() + "' AND " + before_up) !=
              h->Count("SELECT count(*) FROM alerts WHERE " + before_up))
            return false;
        }
        return true;
      },
      kWait))
      << testing::ReadFile(console.File("serve.log")) << testing::ReadFile(hosts[0]->log());
  const int64_t backlog_ms = NowMs() - up_ms;
  const int64_t beacon_gone_ms = NowMs();
  for (auto& h : hosts) h->StopBeacon();

  // Each host is quiet once the rule ran after a scan that started after the
  // beacon died (no alert can follow); then every alert it stored must be
  // delivered and on the console.
  const auto drained = [&] {
    for (auto& h : hosts) {
      const int64_t quiet = h->Count(
          "SELECT count(*) FROM detection_rules WHERE id = 'outage-beacon' AND last_run_ms > (SELECT "
          "min(completed_at_ms) FROM scan_metadata WHERE status = 'completed' AND started_at_ms > " +
          std::to_string(beacon_gone_ms) + ")");
      const int64_t local = h->Count("SELECT count(*) FROM alerts");
      if (quiet != 1 ||
          local != h->Count("SELECT count(DISTINCT alert_id) FROM alert_deliveries WHERE sink_name = 'fleet' "
                            "AND status = 'success'") ||
          local != ConsoleCount(console, "host_id = '" + h->id() + "'"))
        return false;
    }
    return true;
  };
  ASSERT_TRUE(itest::WaitFor(drained, kWait)) << testing::ReadFile(console.File("serve.log"));
  for (auto& h : hosts) h->Stop();
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(kWait), 0);

  const int64_t expected_scans = outage_secs / kIntervalSecs;
  const int64_t at_least = std::max<int64_t>(3, expected_scans / 4);
  for (size_t i = 0; i < hosts.size(); ++i) {
    const OutageHost& h = *hosts[i];
    const OutageFigures& f = figures[i];
    const std::string mine = "host_id = '" + h.id() + "'";
    const int64_t local = h.Count("SELECT count(*) FROM alerts");
    std::printf(
        "%s: cluster down %lld s; scans completed %lld (configured interval %d s: %lld expected), median gap "
        "%lld ms; alerts raised and stored locally %lld, waiting to be delivered at the restart %lld; "
        "%lld alerts in all; the backlog of both hosts was on the console %lld ms after the restart\n",
        h.id().c_str(), static_cast<long long>((up_ms - down_ms) / 1000), static_cast<long long>(f.scans),
        kIntervalSecs, static_cast<long long>(expected_scans), static_cast<long long>(f.median_gap_ms),
        static_cast<long long>(f.alerts_raised), static_cast<long long>(f.waiting_at_restart),
        static_cast<long long>(local), static_cast<long long>(backlog_ms));
    EXPECT_GE(f.scans, at_least) << h.id() << ": collection stalled during the outage";
    EXPECT_GE(f.alerts_raised, at_least) << h.id() << ": detection stalled during the outage";
    EXPECT_GE(f.waiting_at_restart, f.alerts_raised) << h.id() << ": delivered while every node was down?";
    EXPECT_EQ(h.Count("SELECT count(*) FROM dead_letter_queue"), 0) << h.id();
    // Exactly once: the same count, each alert id once, the host's ids and no other.
    EXPECT_EQ(itest::QueryInt(console.database(), "SELECT count(*) FROM alerts WHERE " + mine), local);
    EXPECT_EQ(
        itest::QueryInt(console.database(), "SELECT count(DISTINCT alert_id) FROM alerts WHERE " + mine),
        local);
    EXPECT_EQ(itest::QueryInt(console.database(),
                              "SELECT max(CAST(alert_id AS INTEGER)) FROM alerts WHERE " + mine),
              h.Count("SELECT max(id) FROM alerts"));
    // In the host's order: its n-th alert is the console's n-th of this host.
    EXPECT_EQ(itest::QueryInt(console.database(), "SELECT count(*) FROM alerts WHERE " + mine +
                                                      " AND CAST(alert_id AS INTEGER) != host_seq"),
              0);
    // The alerts raised during the outage are among them.
    EXPECT_EQ(ConsoleCount(console, mine + " AND alert_time" + Window(down_ms, up_ms)), f.alerts_raised)
        << h.id();
  }
}

}  // namespace
}  // namespace sentinel::fleettest
