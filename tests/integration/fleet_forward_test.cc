// fleet.forward: [events, scans] (SPEC §14, docs/fleet.md "Forwarding"): a
// real nats-server (testing::NatsCluster), a real sentinelagent and real
// procmond scans; this test plays the console, reading SENTINELD_EVENTS and
// SENTINELD_SCANS through a durable pull consumer. Events are written into
// the host's store as procmond writes them (rows of process_events), so the
// test runs without root. Every event and scan arrives once, in order, also
// across a broker outage, an agent restart and a stream created late; rows
// retention deleted before they were forwarded are named in the log;
// `forward: [alerts]` forwards neither.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "sentinel/base/time.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/models/process.h"
#include "sentinel/storage/store.h"
#include "sentinel/testing/nats_cluster.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr const char* kHostId = "host-f";

class FleetForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::NatsCluster::SkipReason()) GTEST_SKIP() << *why;
    auto cluster = testing::NatsCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status().message();
    nats_ = std::move(*cluster);
    auto client = fleet::NatsClient::Connect({.servers = nats_->urls(), .name = "test console"});
    ASSERT_TRUE(client.ok()) << client.status().message();
    console_ = std::move(*client);
    // What `sentinelfleet init` creates.
    ASSERT_TRUE(console_->EnsureBucket({std::string(fleet::kHostsBucket)}).ok());
    ASSERT_TRUE(console_->EnsureBucket({std::string(fleet::kRulesBucket)}).ok());
    for (auto [name, subjects] : {std::pair{fleet::kEventsStream, fleet::kEventsSubjects},
                                  std::pair{fleet::kScansStream, fleet::kScansSubjects},
                                  std::pair{fleet::kAlertsStream, fleet::kAlertsSubjects}}) {
      ASSERT_TRUE(console_->EnsureStream({std::string(name), {std::string(subjects)}}).ok());
    }
    db_ = sb_.Database();  // one real scan, before any agent: not forwarded (history)
    ::mkdir(sb_.File("rules.d").c_str(), 0755);
  }
  void TearDown() override { StopAgent(); }

  std::vector<std::string> Env(const std::string& forward) const {
    std::vector<std::string> env = DetectionEnv(sb_, db_, sb_.File("rules.d"));
    env.push_back("SENTINELD_TELEMETRY__HTTP_LISTEN=");
    env.push_back("SENTINELD_IPC__SOCKET_DIR=" + sb_.File("run"));
    env.push_back("SENTINELD_DETECTION__INTERVAL_SECS=3600");
    env.push_back("SENTINELD_FLEET__SERVERS=[" + nats_->url(0) + "]");
    env.push_back(std::string("SENTINELD_FLEET__HOST_ID=") + kHostId);
    env.push_back("SENTINELD_FLEET__FORWARD=" + forward);
    return env;
  }
  void StartAgent(const std::string& forward = "[events, scans]") {
    ++agents_;
    // A fresh heartbeat says this agent is up; it is sent after the forwarding cursors were prepared.
    ASSERT_TRUE(console_->KvDelete(std::string(fleet::kHostsBucket), kHostId).ok());
    agent_ = std::make_unique<Child>(std::vector<std::string>{AgentBin(), "--no-collector"},
                                     sb_.ProcmondEnv(Env(forward)), sb_.File("agent.out"), AgentErrPath());
    ASSERT_TRUE(WaitFor([&] { return HasHeartbeat() || !agent_->Running(); }, seconds(60))) << AgentErr();
    ASSERT_TRUE(agent_->Running()) << AgentErr();
  }
  void StopAgent() {
    if (!agent_) return;
    agent_->Signal(SIGTERM);
    EXPECT_EQ(agent_->Wait(std::chrono::milliseconds(30'000)), 0) << AgentErr();
    agent_.reset();
  }
  bool HasHeartbeat() const {
    auto v = console_->KvGet(std::string(fleet::kHostsBucket), kHostId);
    return v.ok() && v->has_value();
  }
  json Heartbeat() const {
    auto v = console_->KvGet(std::string(fleet::kHostsBucket), kHostId);
    EXPECT_TRUE(v.ok() && v->has_value());
    return v.ok() && v->has_value() ? json::parse(**v) : json();
  }
  std::string AgentErrPath() const { return sb_.File("agent" + std::to_string(agents_) + ".err"); }
  std::string AgentErr() const { return testing::ReadFile(AgentErrPath()); }

  // Writes events through procmond's own write path (EventStore, with its busy timeout).
  void Store(const std::vector<models::ProcessEvent>& events) {
    auto store = storage::EventStore::Open({db_, storage::OpenMode::kReadWrite, 30'000});
    ASSERT_TRUE(store.ok()) << store.status().message();
    auto written = (*store)->WriteEvents(events);
    ASSERT_TRUE(written.ok()) << written.status().message();
  }
  // Writes `n` events (even: exec of `tool <tag>-<i>`, odd: its exit); returns their ids.
  std::vector<int64_t> WriteEvents(int n, const std::string& tag) {
    const int64_t before = MaxEventId();
    std::vector<models::ProcessEvent> events;
    for (int i = 0; i < n; ++i) {
      models::ProcessEvent e;
      e.event_time_ms = NowMs();
      e.pid = 50'000 + i - i % 2;
      e.ppid = 1;
      e.name = "tool";
      if (i % 2 == 0) {
        e.event_type = "exec";
        e.exe_path = "/usr/bin/tool";
        e.command_line = std::vector<std::string>{"tool", tag + "-" + std::to_string(i)};
        e.user_id = 1000;
        e.user_name = "alice";
      } else {
        e.event_type = "exit";
        e.exit_code = 3;
      }
      events.push_back(std::move(e));
    }
    Store(events);
    std::vector<int64_t> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(before + 1 + i);
      written_[before + 1 + i] = i % 2 == 0 ? tag + "-" + std::to_string(i) : "";
    }
    EXPECT_EQ(MaxEventId(), ids.back());
    return ids;
  }
  int64_t MaxEventId() const {
    return QueryInt(db_, "SELECT coalesce(max(id), 0) FROM process_events").value_or(0);
  }
  int64_t Scan() {
    RunResult r = sb_.Procmond({"--once", "--database", db_}, Env("[alerts]"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return QueryInt(db_, "SELECT max(scan_id) FROM scan_metadata WHERE status = 'completed'").value_or(0);
  }

  // Reads messages of `stream` (durable consumer "test") until `done(all read so far)`.
  std::vector<fleet::JsMsg> ReadUntil(const std::string& stream, const std::string& filter,
                                      const std::function<bool(const std::vector<fleet::JsMsg>&)>& done) {
    auto& consumer = consumers_[stream];
    if (!consumer) {
      auto c = console_->PullSubscribe(stream, filter, "test");
      EXPECT_TRUE(c.ok()) << c.status().message();
      if (!c.ok()) return {};
      consumer = std::move(*c);
    }
    std::vector<fleet::JsMsg> got;
    EXPECT_TRUE(WaitFor(
        [&] {
          auto batch = consumer->Fetch(100, 500);
          if (batch.ok()) {
            for (auto& m : *batch) {
              EXPECT_TRUE(m.ack().ok());
              got.push_back(std::move(m));
            }
          }
          return done(got);
        },
        seconds(90)))
        << stream << ": " << got.size() << " messages\n"
        << AgentErr();
    return got;
  }
  std::vector<fleet::JsMsg> ReadEvents(std::size_t n) {
    return ReadUntil(std::string(fleet::kEventsStream), std::string(fleet::kEventsSubjects),
                     [n](const std::vector<fleet::JsMsg>& got) { return got.size() >= n; });
  }
  // The chunks of every scan up to `last_scan`.
  std::map<int64_t, std::vector<json>> ReadScans(int64_t last_scan) {
    std::map<int64_t, std::vector<json>> scans;
    ReadUntil(std::string(fleet::kScansStream), std::string(fleet::kScansSubjects),
              [&](const std::vector<fleet::JsMsg>& got) {
                scans.clear();
                for (const auto& m : got) {
                  json j = json::parse(m.data);
                  EXPECT_EQ(m.headers.at("Nats-Msg-Id"), std::string(kHostId) + ":s" +
                                                             std::to_string(j["scan_id"].get<int64_t>()) +
                                                             "." + std::to_string(j["chunk"].get<int>()));
                  scans[j["scan_id"].get<int64_t>()].push_back(j);
                }
                auto last = scans.find(last_scan);
                return last != scans.end() &&
                       static_cast<int>(last->second.size()) == last->second.front()["chunks"].get<int>();
              });
    return scans;
  }
  // Messages the stream holds (the server's count, whoever consumed them).
  int64_t StreamMessages(std::string_view stream) {
    auto r = console_->Request("$JS.API.STREAM.INFO." + std::string(stream), "", 5000);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return -1;
    return json::parse(r->data)["state"]["messages"].get<int64_t>();
  }
  std::optional<int64_t> Cursor(const std::string& stream) const {
    return TryQueryInt(db_, "SELECT last_id FROM fleet_forward_cursors WHERE stream = '" + stream + "'");
  }
  // The events of `msgs`, checked against the store: ids, subject, message id, fields.
  void ExpectEvents(const std::vector<fleet::JsMsg>& msgs, const std::vector<int64_t>& ids) {
    ASSERT_EQ(msgs.size(), ids.size());
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      json e = json::parse(msgs[i].data);
      EXPECT_EQ(e["id"], ids[i]) << i;
      EXPECT_EQ(e["host_id"], kHostId);
      EXPECT_EQ(msgs[i].subject, fleet::EventSubject(kHostId));
      EXPECT_EQ(msgs[i].headers.at("Nats-Msg-Id"), std::string(kHostId) + ":e" + std::to_string(ids[i]));
      const std::string& arg = written_[ids[i]];
      if (!arg.empty()) {
        EXPECT_EQ(e["event_type"], "exec");
        EXPECT_EQ(e["command_line"], json::array({"tool", arg})) << e.dump();
        EXPECT_EQ(e["user_name"], "alice");
      } else {
        EXPECT_EQ(e["event_type"], "exit");
        EXPECT_EQ(e["exit_code"], 3);
      }
    }
  }
  // The processes of a scan's chunks, in order, checked against the store.
  void ExpectScan(int64_t scan_id, const std::vector<json>& chunks) {
    ASSERT_FALSE(chunks.empty());
    const int n = chunks.front()["chunks"].get<int>();
    ASSERT_EQ(static_cast<int>(chunks.size()), n) << "scan " << scan_id << ": each chunk once";
    std::vector<int64_t> pids;
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(chunks[i]["chunk"], i);
      EXPECT_EQ(chunks[i]["host_id"], kHostId);
      EXPECT_EQ(chunks[i]["scan"]["scan_id"], scan_id);
      for (const auto& p : chunks[i]["processes"]) pids.push_back(p["pid"].get<int64_t>());
    }
    EXPECT_EQ(
        static_cast<int64_t>(pids.size()),
        QueryInt(db_, "SELECT process_count FROM scan_metadata WHERE scan_id = " + std::to_string(scan_id)));
    EXPECT_TRUE(std::is_sorted(pids.begin(), pids.end()));
    EXPECT_EQ(chunks.front()["scan"]["process_count"], static_cast<int64_t>(pids.size()));
  }

  Sandbox sb_;
  std::unique_ptr<testing::NatsCluster> nats_;
  std::unique_ptr<fleet::NatsClient> console_;
  std::map<std::string, std::unique_ptr<fleet::PullConsumer>> consumers_;
  std::string db_;
  std::map<int64_t, std::string> written_;  // event id -> the exec's argument ("" for an exit)
  std::unique_ptr<Child> agent_;
  int agents_ = 0;
};

TEST_F(FleetForwardTest, EventsAndScansArriveOnceInOrderAcrossAnOutageAndARestart) {
  const int64_t history_end = MaxEventId();
  WriteEvents(4, "history");  // before forwarding was enabled: stays on the host
  StartAgent();
  EXPECT_EQ(Cursor("events"), history_end + 4);
  const int64_t first_scan = QueryInt(db_, "SELECT max(scan_id) FROM scan_metadata").value_or(0);
  EXPECT_EQ(Cursor("scans"), first_scan);

  // Live: every event once, in id order, and the next scan in chunks.
  std::vector<int64_t> ids = WriteEvents(40, "live");
  const int64_t scan_a = Scan();
  ExpectEvents(ReadEvents(40), ids);
  auto scans = ReadScans(scan_a);
  ASSERT_EQ(scans.size(), 1u) << "only the scan after forwarding was enabled";
  ExpectScan(scan_a, scans[scan_a]);
  const auto chunks_a = static_cast<int64_t>(scans[scan_a].size());

  // The broker goes away; events and a scan wait in the store, then arrive in order.
  ASSERT_TRUE(nats_->Stop(0).ok());
  std::vector<int64_t> during = WriteEvents(30, "outage");
  const int64_t scan_b = Scan();
  // The forwarder met the outage (and says so) before the broker is back.
  EXPECT_TRUE(WaitFor([&] { return Contains(AgentErr(), "fleet: NATS unavailable"); }, seconds(60)))
      << AgentErr();
  if (auto restarted = nats_->Restart(0); !restarted.ok()) FAIL() << restarted.ToString();
  ExpectEvents(ReadEvents(30), during);
  scans = ReadScans(scan_b);
  ASSERT_EQ(scans.size(), 1u) << "scan " << scan_a << " not sent again";
  ExpectScan(scan_b, scans[scan_b]);
  const auto chunks_b = static_cast<int64_t>(scans[scan_b].size());
  EXPECT_TRUE(WaitFor([&] { return Cursor("events") == during.back(); }, seconds(30)));
  EXPECT_TRUE(WaitFor([&] { return Contains(AgentErr(), "fleet: forwarding resumed"); }, seconds(30)));

  // The agent restarts: it resumes at its cursor (nothing again, nothing skipped).
  StopAgent();
  EXPECT_EQ(Cursor("events"), during.back());
  std::vector<int64_t> offline = WriteEvents(6, "offline");
  StartAgent();
  // Its heartbeat tells where forwarding stands: the cursor and what waits after it.
  const json hb = Heartbeat();
  ASSERT_TRUE(hb["forward"]["events"].is_object()) << hb.dump();
  const int64_t cursor = hb["forward"]["events"]["cursor"].get<int64_t>();
  EXPECT_GE(cursor, during.back());
  EXPECT_EQ(cursor + hb["forward"]["events"]["pending"].get<int64_t>(), offline.back()) << hb.dump();
  EXPECT_EQ(hb["forward"]["scans"]["cursor"], scan_b) << hb.dump();
  std::vector<int64_t> after = WriteEvents(4, "after");
  offline.insert(offline.end(), after.begin(), after.end());
  ExpectEvents(ReadEvents(10), offline);
  EXPECT_EQ(StreamMessages(fleet::kEventsStream), 80);
  EXPECT_EQ(StreamMessages(fleet::kScansStream), chunks_a + chunks_b);
}

// Attacker-controlled text stays valid UTF-8 and messages stay bounded.
TEST_F(FleetForwardTest, HostileArgvIsValidJsonAndBounded) {
  StartAgent("[events]");
  models::ProcessEvent ev;
  ev.event_time_ms = NowMs();
  ev.event_type = "exec";
  ev.pid = 4242;
  ev.name = "evil\xff";
  ev.exe_path = "/tmp/\x80";
  ev.command_line = std::vector<std::string>{"big", std::string(600'000, 'A'), "A\xc3"};
  Store({ev});
  const int64_t id = MaxEventId();
  auto msgs = ReadEvents(1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_LE(msgs[0].data.size(), std::size_t{256} << 10);
  json e = json::parse(msgs[0].data);  // valid JSON (and UTF-8: the parser checks)
  EXPECT_EQ(e["id"], id);
  EXPECT_EQ(e["truncated"], true);
  EXPECT_EQ(e["name"], "evil\xEF\xBF\xBD");
  EXPECT_EQ(e["exe_path"], "/tmp/\xEF\xBF\xBD");
  ASSERT_TRUE(e["command_line"].is_array()) << e.dump().substr(0, 300);
  EXPECT_EQ(e["command_line"][0], "big");
  EXPECT_LT(e["command_line"][1].get<std::string>().size(), 2000u);
}

// Events retention deleted before they were forwarded are named in the log; the rest go on.
TEST_F(FleetForwardTest, PrunedEventsAreLoggedAndForwardingContinues) {
  StartAgent("[events]");
  std::vector<int64_t> first = WriteEvents(2, "a");
  ExpectEvents(ReadEvents(2), first);
  EXPECT_TRUE(WaitFor([&] { return Cursor("events") == first.back(); }, seconds(30)));
  StopAgent();
  std::vector<int64_t> gone = WriteEvents(5, "pruned");
  std::vector<int64_t> kept = WriteEvents(3, "kept");
  ExecSql(db_, "DELETE FROM process_events WHERE id BETWEEN " + std::to_string(gone.front()) + " AND " +
                   std::to_string(gone.back()));
  StartAgent("[events]");
  ExpectEvents(ReadEvents(3), kept);
  const std::string err = AgentErr();
  EXPECT_TRUE(Contains(err, "deleted by retention before they were forwarded")) << err;
  EXPECT_TRUE(Contains(err, "first_id=" + std::to_string(gone.front()))) << err;
  EXPECT_TRUE(Contains(err, "last_id=" + std::to_string(gone.back()))) << err;
  EXPECT_EQ(StreamMessages(fleet::kEventsStream), 5);
}

// `forward: [alerts]` (the default) publishes no event and no scan; enabling
// events later forwards what is written from then on.
TEST_F(FleetForwardTest, AlertsAloneForwardNoEventsOrScans) {
  StartAgent("[alerts]");
  WriteEvents(6, "quiet");
  Scan();
  StopAgent();  // whatever it would have forwarded, it had its chance
  EXPECT_EQ(StreamMessages(fleet::kEventsStream), 0);
  EXPECT_EQ(StreamMessages(fleet::kScansStream), 0);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM fleet_forward_cursors"), 0);
  EXPECT_FALSE(Contains(AgentErr(), "fleet: forwarding")) << AgentErr();
  EXPECT_TRUE(Heartbeat()["forward"].is_null());

  StartAgent("[alerts, events]");
  std::vector<int64_t> ids = WriteEvents(2, "now");
  ExpectEvents(ReadEvents(2), ids);  // the first message is the first event written after enabling
  EXPECT_EQ(StreamMessages(fleet::kEventsStream), 2);
  StopAgent();
  EXPECT_EQ(StreamMessages(fleet::kScansStream), 0);
}

// Hosts configured before the console ran `sentinelfleet init`: no stream takes
// the events yet; they wait on the host and arrive, in order, once it exists.
TEST_F(FleetForwardTest, EventsWaitForTheStreamToBeCreated) {
  auto deleted = console_->Request("$JS.API.STREAM.DELETE." + std::string(fleet::kEventsStream), "", 5000);
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  ASSERT_TRUE(Contains(deleted->data, "\"success\":true")) << deleted->data;
  StartAgent("[events]");
  std::vector<int64_t> ids = WriteEvents(6, "early");
  EXPECT_TRUE(WaitFor([&] { return Contains(AgentErr(), "no JetStream stream answered"); }, seconds(60)))
      << AgentErr();
  EXPECT_EQ(Cursor("events"), ids.front() - 1);  // nothing acknowledged, nothing skipped
  ASSERT_TRUE(
      console_->EnsureStream({std::string(fleet::kEventsStream), {std::string(fleet::kEventsSubjects)}})
          .ok());
  ExpectEvents(ReadEvents(6), ids);
  EXPECT_EQ(StreamMessages(fleet::kEventsStream), 6);
}

}  // namespace
}  // namespace sentinel::itest
