// The agent in a fleet (SPEC §14): a real nats-server (testing::NatsCluster,
// one node), a real sentinelagent with its own data directory, and this test
// as the console. Signed live queries get rows; every kind of bad query gets
// a refusal and an audit entry on the host; a rule bundle with one bad rule
// is refused whole and the previous rules stay; heartbeats report it all.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "sentinel/audit/signer.h"
#include "sentinel/base/time.h"
#include "sentinel/fleet/bundle.h"
#include "sentinel/fleet/envelope.h"
#include "sentinel/fleet/fleet_test_util.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/nats_cluster.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using testing::TestDrlRule;
using testing::TestSigner;

using nlohmann::json;
using std::chrono::seconds;

constexpr const char* kHostId = "host-a";

// The chunks that came back on one inbox.
struct Replies {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<fleet::QueryChunk> chunks;
  bool final = false;
};

class FleetAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::NatsCluster::SkipReason()) GTEST_SKIP() << *why;
    auto cluster = testing::NatsCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status().message();
    nats_ = std::move(*cluster);
    fleet::ConnectOptions o;
    o.servers = nats_->urls();
    o.name = "test console";
    auto client = fleet::NatsClient::Connect(o);
    ASSERT_TRUE(client.ok()) << client.status().message();
    console_ = std::move(*client);
    ASSERT_TRUE(console_->EnsureBucket({std::string(fleet::kHostsBucket)}).ok());
    ASSERT_TRUE(console_->EnsureBucket({std::string(fleet::kRulesBucket)}).ok());
    db_ = sb_.Database();  // one real scan
    ::mkdir(sb_.File("rules.d").c_str(), 0755);
  }
  void TearDown() override {
    if (agent_) {
      agent_->Signal(SIGTERM);
      agent_->Wait(std::chrono::milliseconds(30'000));
    }
  }
  std::vector<std::string> Env() const {
    std::vector<std::string> env = DetectionEnv(sb_, db_, sb_.File("rules.d"));
    env.push_back("SENTINELD_TELEMETRY__HTTP_LISTEN=");
    env.push_back("SENTINELD_IPC__SOCKET_DIR=" + sb_.File("run"));
    env.push_back("SENTINELD_DETECTION__INTERVAL_SECS=3600");
    env.push_back("SENTINELD_FLEET__SERVERS=[" + nats_->url(0) + "]");
    env.push_back(std::string("SENTINELD_FLEET__HOST_ID=") + kHostId);
    env.push_back("SENTINELD_FLEET__TRUSTED_KEYS=[" + signer_->PublicKeyHex() + "]");
    return env;
  }
  void StartAgent() {
    ++agents_;
    agent_ = std::make_unique<Child>(std::vector<std::string>{AgentBin(), "--no-collector"},
                                     sb_.ProcmondEnv(Env()), sb_.File("agent.out"), AgentErrPath());
    ASSERT_TRUE(WaitFor([&] { return Heartbeat().has_value() || !agent_->Running(); }, seconds(60)))
        << AgentErr();
    ASSERT_TRUE(agent_->Running()) << AgentErr();
  }
  std::string AgentErrPath() const { return sb_.File("agent" + std::to_string(agents_) + ".err"); }
  std::string AgentErr() const { return testing::ReadFile(AgentErrPath()); }
  std::optional<json> Heartbeat() const {
    auto v = console_->KvGet(std::string(fleet::kHostsBucket), kHostId);
    if (!v.ok() || !v->has_value()) return std::nullopt;
    return json::parse(**v);
  }
  int64_t Now() const { return NowMs() / 1000; }
  std::string SignedQuery(const std::string& sql, const std::string& query_id = "q-1",
                          int64_t max_rows = 1000) const {
    return fleet::SignEnvelope(*signer_, fleet::EnvelopeKind::kQuery,
                               fleet::QueryPayloadJson({query_id, sql, {"all"}, max_rows}), Now());
  }
  // Publishes `wire` with a reply inbox and collects chunks until a final one (or 60 s).
  std::vector<fleet::QueryChunk> Ask(const std::string& wire,
                                     const std::string& subject = fleet::QuerySubject(kHostId)) {
    auto replies = std::make_shared<Replies>();
    const std::string inbox = console_->NewInbox();
    auto sub = console_->Subscribe(inbox, [replies](fleet::Message m) {
      auto c = fleet::ParseQueryChunk(m.data);
      std::lock_guard<std::mutex> lock(replies->mu);
      if (c.ok()) {
        replies->final = replies->final || c->final;
        replies->chunks.push_back(std::move(*c));
      }
      replies->cv.notify_all();
    });
    EXPECT_TRUE(sub.ok());
    EXPECT_TRUE(console_->Publish(subject, wire, inbox).ok());
    std::unique_lock<std::mutex> lock(replies->mu);
    EXPECT_TRUE(replies->cv.wait_for(lock, seconds(60), [&] { return replies->final; })) << AgentErr();
    return replies->chunks;
  }
  std::vector<json> AuditData(const std::string& action) const {
    RunResult r = sb_.Cli({"audit", "list", "--limit", "0", "--json"}, Env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> out;
    for (const auto& e : json::parse(r.out)) {
      if (e["action"] != action) continue;
      const json& d = e["event_data"];
      out.push_back(d.is_string() ? json::parse(d.get<std::string>()) : d);
    }
    return out;
  }
  void PushBundle(const fleet::Bundle& b) {
    ASSERT_TRUE(console_
                    ->KvPut(std::string(fleet::kRulesBucket), std::string(fleet::kRulesBundleKey),
                            fleet::SignBundle(*signer_, b, Now()))
                    .ok());
  }
  // Waits for a heartbeat whose bundle status is about `bundle_id` (and, if given, `count` rules).
  json WaitBundleHeartbeat(const std::string& bundle_id, std::optional<int64_t> count = std::nullopt) {
    json hb;
    EXPECT_TRUE(WaitFor(
        [&] {
          auto h = Heartbeat();
          if (!h) return false;
          hb = *h;
          const json& b = hb["rules"]["bundle"];
          return b.is_object() && b["bundle_id"] == bundle_id && (!count || hb["rules"]["count"] == *count);
        },
        seconds(60)))
        << hb.dump() << "\n"
        << AgentErr();
    return hb;
  }

  Sandbox sb_;
  std::unique_ptr<testing::NatsCluster> nats_;
  std::unique_ptr<fleet::NatsClient> console_;
  std::unique_ptr<audit::Signer> signer_ = TestSigner(0x71);
  std::string db_;
  std::unique_ptr<Child> agent_;
  int agents_ = 0;
};

TEST_F(FleetAgentTest, HeartbeatAndASignedQueryGetRows) {
  StartAgent();
  json hb = *Heartbeat();
  EXPECT_EQ(hb["host_id"], kHostId);
  EXPECT_EQ(hb["health"].get<std::string>().empty(), false);
  EXPECT_GT(hb["rules"]["count"].get<int64_t>(), 0);
  EXPECT_TRUE(hb["rules"]["bundle"].is_null());
  EXPECT_TRUE(hb["last_scan"].is_string()) << hb.dump();

  const int64_t processes = QueryInt(db_, "SELECT count(*) FROM processes").value_or(0);
  ASSERT_GT(processes, 0);
  for (const std::string& subject : {fleet::QuerySubject(kHostId), std::string(fleet::kQueryAllSubject)}) {
    auto chunks =
        Ask(SignedQuery("SELECT pid, name FROM processes ORDER BY pid", "q-" + subject.substr(16)), subject);
    ASSERT_FALSE(chunks.empty());
    const fleet::QueryChunk& last = chunks.back();
    EXPECT_FALSE(last.error.has_value()) << last.error->code << ": " << last.error->message;
    EXPECT_EQ(last.host_id, kHostId);
    EXPECT_EQ(last.columns, (std::vector<std::string>{"pid", "name"}));
    int64_t rows = 0;
    for (const auto& c : chunks) rows += static_cast<int64_t>(c.rows.size());
    EXPECT_EQ(rows, processes);
    EXPECT_EQ(last.row_count, processes);
  }
  auto executed = AuditData("fleet_query_executed");
  ASSERT_EQ(executed.size(), 2u);
  EXPECT_EQ(executed[0]["key"], signer_->PublicKeyHex());
  EXPECT_EQ(executed[0]["rows"], processes);
  EXPECT_EQ(executed[0]["sql_blake3"].get<std::string>().size(), 64u);
}

// The host keeps its query worker from one query to the next (fleet_query.h,
// WarmQueryWorker): queries in a row, with a truncated one and one that fails
// while running between them, each get their own complete, right answer.
TEST_F(FleetAgentTest, QueriesInARowEachGetTheirOwnAnswer) {
  StartAgent();
  const int64_t processes = QueryInt(db_, "SELECT count(*) FROM processes").value_or(0);
  ASSERT_GT(processes, 1);
  auto rows_of = [](const std::vector<fleet::QueryChunk>& chunks) {
    int64_t n = 0;
    for (const auto& c : chunks) n += static_cast<int64_t>(c.rows.size());
    return n;
  };
  // A query that must answer exactly one row, `text`.
  auto expect_one = [&](const std::string& text, const std::string& id) {
    auto one = Ask(SignedQuery("SELECT '" + text + "' AS r", id));
    ASSERT_FALSE(one.empty()) << id;
    ASSERT_FALSE(one.back().error.has_value()) << id << ": " << one.back().error->message;
    json first;
    for (const auto& c : one)
      if (!c.rows.empty() && first.is_null()) first = c.rows[0][0];
    EXPECT_EQ(rows_of(one), 1) << id;
    EXPECT_EQ(first, text) << id;
  };
  for (int round = 0; round < 2; ++round) {
    const std::string tag = std::to_string(round);
    auto all = Ask(SignedQuery("SELECT pid FROM processes", "q-all-" + tag));
    ASSERT_FALSE(all.empty());
    EXPECT_FALSE(all.back().error.has_value()) << all.back().error->message;
    EXPECT_EQ(rows_of(all), processes);
    EXPECT_FALSE(all.back().truncated);
    expect_one("after all " + tag, "q-one-a-" + tag);

    auto cut = Ask(SignedQuery("SELECT pid FROM processes", "q-cut-" + tag, 1));
    ASSERT_FALSE(cut.empty());
    EXPECT_FALSE(cut.back().error.has_value());
    EXPECT_EQ(rows_of(cut), 1);
    EXPECT_TRUE(cut.back().truncated);
    expect_one("after cut " + tag, "q-one-b-" + tag);

    auto failed = Ask(SignedQuery("SELECT json_extract('not json', '$') AS v", "q-fail-" + tag));
    ASSERT_FALSE(failed.empty());
    ASSERT_TRUE(failed.back().error.has_value());
    EXPECT_EQ(failed.back().error->code, "sql_error");
    EXPECT_NE(failed.back().error->message.find("JSON"), std::string::npos) << failed.back().error->message;
    expect_one("after failure " + tag, "q-one-c-" + tag);
  }
}

TEST_F(FleetAgentTest, EveryKindOfBadQueryIsRefusedAndAudited) {
  StartAgent();
  const int64_t processes = QueryInt(db_, "SELECT count(*) FROM processes").value_or(0);
  auto stranger = TestSigner(0x72);
  const std::string payload = fleet::QueryPayloadJson({"q-bad", "SELECT 1", {"all"}, 10});
  std::string tampered = SignedQuery("SELECT 1", "q-tamper");
  tampered.replace(tampered.find("SELECT 1"), 8, "SELECT 2");
  const std::string replayed = SignedQuery("SELECT 1", "q-replay");
  ASSERT_TRUE(Ask(replayed).back().error == std::nullopt);
  struct Case {
    std::string name, wire, code;
  };
  const std::vector<Case> cases = {
      {"unsigned", payload, "malformed"},
      {"wrong key", fleet::SignEnvelope(*stranger, fleet::EnvelopeKind::kQuery, payload, Now()),
       "untrusted_key"},
      {"tampered", tampered, "bad_signature"},
      {"expired", fleet::SignEnvelope(*signer_, fleet::EnvelopeKind::kQuery, payload, Now() - 600),
       "expired"},
      {"replayed", replayed, "replayed"},
      {"oversized", SignedQuery("SELECT '" + std::string(70'000, 'x') + "'"), "oversized"},
      {"delete", SignedQuery("DELETE FROM processes", "q-delete"), "not_select"},
      {"attach", SignedQuery("ATTACH DATABASE '/tmp/x.db' AS x", "q-attach"), "not_select"},
      {"pragma", SignedQuery("PRAGMA writable_schema = 1", "q-pragma"), "not_select"},
  };
  for (const auto& c : cases) {
    auto chunks = Ask(c.wire);
    ASSERT_EQ(chunks.size(), 1u) << c.name;
    ASSERT_TRUE(chunks[0].error.has_value()) << c.name;
    EXPECT_EQ(chunks[0].error->code, c.code) << c.name << ": " << chunks[0].error->message;
    EXPECT_TRUE(chunks[0].final);
  }
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM processes"), processes);  // nothing written
  auto refused = AuditData("fleet_query_refused");
  ASSERT_EQ(refused.size(), cases.size());
  std::vector<std::string> codes;
  for (const auto& r : refused)
    codes.push_back(r.contains("code") ? r["code"].get<std::string>() : r["outcome"].get<std::string>());
  std::vector<std::string> expected;
  for (const auto& c : cases) expected.push_back(c.code);
  EXPECT_EQ(codes, expected);
  EXPECT_EQ(AuditData("fleet_query_executed").size(), 1u);
}

// A request cannot make the host publish where its sender chooses (into a stream, say).
TEST_F(FleetAgentTest, RepliesGoOnlyToInboxes) {
  StartAgent();
  std::mutex mu;
  int stray = 0;
  // (The host's own alerts go to sentineld.alerts.host-a through the fleet sink: not counted.)
  auto sub = console_->Subscribe("sentineld.alerts.>", [&](fleet::Message m) {
    std::lock_guard<std::mutex> lock(mu);
    if (m.subject == "sentineld.alerts.x" || m.subject == "sentineld.alerts.y") ++stray;
  });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(console_->Flush(5000).ok());
  ASSERT_TRUE(
      console_
          ->Publish(fleet::QuerySubject(kHostId), SignedQuery("SELECT 1", "q-stray"), "sentineld.alerts.x")
          .ok());
  ASSERT_TRUE(console_->Publish(fleet::QuerySubject(kHostId), "garbage", "sentineld.alerts.y").ok());
  // The host handles requests in order: once this one is answered, those were handled.
  auto chunks = Ask(SignedQuery("SELECT 1", "q-after"));
  ASSERT_FALSE(chunks.empty());
  EXPECT_FALSE(chunks.back().error.has_value());
  ASSERT_TRUE(console_->Flush(5000).ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(stray, 0);
  }
  auto refused = AuditData("fleet_query_refused");
  ASSERT_EQ(refused.size(), 2u);
  EXPECT_EQ(refused[0]["query_id"], "q-stray");
  EXPECT_TRUE(Contains(refused[0]["error"].get<std::string>(), "not an _INBOX.")) << refused[0].dump();
  EXPECT_EQ(refused[1]["code"], "malformed");
}

TEST_F(FleetAgentTest, BundleWithOneBadRuleIsRefusedWholeAndThePreviousRulesStay) {
  StartAgent();
  const int64_t base = (*Heartbeat())["rules"]["count"].get<int64_t>();
  PushBundle({"bundle-good", Now(), {{"good.yaml", TestDrlRule("fleet-good")}}});
  json hb = WaitBundleHeartbeat("bundle-good", base + 1);
  EXPECT_EQ(hb["rules"]["bundle"]["status"], "applied");
  EXPECT_EQ(ListDir(sb_.File("fleet-rules")), (std::set<std::string>{"good.yaml"}));
  // Loaded without a restart: the agent's rule store knows it.
  EXPECT_TRUE(WaitFor(
      [&] {
        return TryQueryInt(db_, "SELECT count(*) FROM detection_rules WHERE id = 'fleet-good'").value_or(0) ==
               1;
      },
      seconds(30)));

  PushBundle({"bundle-bad",
              Now(),
              {{"other.yaml", TestDrlRule("fleet-other")},
               {"../evil.yaml", TestDrlRule("fleet-evil")},
               {"bad.yaml", TestDrlRule("fleet-bad", "DELETE FROM processes")}}});
  hb = WaitBundleHeartbeat("bundle-bad");
  const json& b = hb["rules"]["bundle"];
  EXPECT_EQ(b["status"], "refused");
  EXPECT_EQ(b["code"], "bad_rule");
  std::set<std::string> files;
  for (const auto& r : b["refused"]) files.insert(r["file"].get<std::string>());
  EXPECT_EQ(files, (std::set<std::string>{"../evil.yaml", "bad.yaml"}));
  EXPECT_EQ(hb["rules"]["count"], base + 1);
  EXPECT_EQ(ListDir(sb_.File("fleet-rules")), (std::set<std::string>{"good.yaml"}));
  EXPECT_FALSE(testing::FileExists(sb_.File("evil.yaml")));
  EXPECT_EQ(AuditData("fleet_bundle_applied").size(), 1u);
  auto refused = AuditData("fleet_bundle_refused");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]["bundle_id"], "bundle-bad");

  // A restart sees the same (refused) bundle in the bucket again: not handled twice, still reported.
  agent_->Signal(SIGTERM);
  ASSERT_EQ(agent_->Wait(std::chrono::milliseconds(30'000)), 0) << AgentErr();
  ASSERT_TRUE(console_->KvDelete(std::string(fleet::kHostsBucket), kHostId).ok());
  StartAgent();
  hb = WaitBundleHeartbeat("bundle-bad", base + 1);
  EXPECT_EQ(hb["rules"]["bundle"]["status"], "refused");
  EXPECT_EQ(AuditData("fleet_bundle_refused").size(), 1u);
}

// An agent that starts while its broker is down runs its detection cycle at
// once, and joins the fleet when the broker comes back.
TEST_F(FleetAgentTest, BrokerDownAtStartDoesNotHoldTheAgentBack) {
  ASSERT_TRUE(nats_->Stop(0).ok());
  ++agents_;
  agent_ = std::make_unique<Child>(std::vector<std::string>{AgentBin(), "--no-collector"},
                                   sb_.ProcmondEnv(Env()), sb_.File("agent.out"), AgentErrPath());
  ASSERT_TRUE(
      WaitFor([&] { return Contains(AgentErr(), "detection cycle") || !agent_->Running(); }, seconds(60)))
      << AgentErr();
  ASSERT_TRUE(agent_->Running()) << AgentErr();
  if (auto restarted = nats_->Restart(0); !restarted.ok()) FAIL() << restarted.ToString();
  // The console reconnects on its own; the host sends its heartbeat (at the latest at the next period).
  ASSERT_TRUE(WaitFor([&] { return Heartbeat().has_value(); }, seconds(90))) << AgentErr();
  auto chunks = Ask(SignedQuery("SELECT 1 AS one", "q-late"));
  ASSERT_FALSE(chunks.empty());
  EXPECT_FALSE(chunks.back().error.has_value());
}

TEST_F(FleetAgentTest, WithoutFleetServersNothingChanges) {
  std::vector<std::string> env = Env();
  std::erase_if(env, [](const std::string& e) { return e.starts_with("SENTINELD_FLEET__SERVERS="); });
  Child agent({AgentBin(), "--once", "--no-collector"}, sb_.ProcmondEnv(env), "", sb_.File("once.err"));
  ASSERT_EQ(agent.Wait(std::chrono::milliseconds(60'000)), 0) << testing::ReadFile(sb_.File("once.err"));
  EXPECT_FALSE(Heartbeat().has_value());
  EXPECT_FALSE(Contains(testing::ReadFile(sb_.File("once.err")), "fleet"));
}

}  // namespace
}  // namespace sentinel::itest
