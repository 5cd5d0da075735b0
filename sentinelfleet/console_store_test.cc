#include "sentinelfleet/console_store.h"

#include <limits>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::console {
namespace {

using storage::OpenMode;

std::string NativeAlert(int64_t id, const std::string& title) {
  return nlohmann::json{{"id", id},
                        {"alert_time", 1764820000000 + id},
                        {"rule_id", "proc-x"},
                        {"title", title},
                        {"severity", "high"},
                        {"status", "open"}}
      .dump();
}

ReceivedAlert Alert(const std::string& host, int64_t id, uint64_t seq, const std::string& title = "t") {
  auto a = ParseAlertMessage("sentineld.alerts." + host, {{"Nats-Msg-Id", host + ":" + std::to_string(id)}},
                             NativeAlert(id, title), seq);
  EXPECT_TRUE(a.ok()) << a.status().message();
  return *a;
}

class ConsoleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ConsoleStore::Open(dir_.File("fleet.db"), OpenMode::kReadWrite);
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(*s);
  }
  testing::TempDir dir_;
  std::unique_ptr<ConsoleStore> store_;
};

TEST_F(ConsoleStoreTest, StoresAlertsWithPerHostArrivalOrder) {
  std::vector<ReceivedAlert> batch = {Alert("h1", 7, 1), Alert("h2", 7, 2), Alert("h1", 3, 3)};
  auto added = store_->AddAlerts(batch, 1000);
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_EQ(*added, 3);
  auto h1 = store_->ListAlerts({.host_id = "h1"});
  ASSERT_TRUE(h1.ok());
  ASSERT_EQ(h1->size(), 2u);
  // Newest first; host_seq follows arrival, not the host's alert ids.
  EXPECT_EQ((*h1)[0].alert_id, "3");
  EXPECT_EQ((*h1)[0].host_seq, 2);
  EXPECT_EQ((*h1)[1].alert_id, "7");
  EXPECT_EQ((*h1)[1].host_seq, 1);
  EXPECT_EQ((*h1)[1].rule_id, "proc-x");
  EXPECT_EQ((*h1)[1].severity, "high");
  EXPECT_EQ((*h1)[1].alert_time, 1764820000007);
  auto h2 = store_->ListAlerts({.host_id = "h2"});
  ASSERT_TRUE(h2.ok());
  ASSERT_EQ(h2->size(), 1u);
  EXPECT_EQ((*h2)[0].host_seq, 1);
}

TEST_F(ConsoleStoreTest, ADuplicateDeliveryIsAbsorbed) {
  std::vector<ReceivedAlert> first = {Alert("h1", 1, 1), Alert("h1", 2, 2)};
  ASSERT_TRUE(store_->AddAlerts(first, 1000).ok());
  // Redelivered (same stream sequence) and republished after the duplicate
  // window (new stream sequence): neither makes a second row nor takes a
  // host_seq number.
  std::vector<ReceivedAlert> again = {Alert("h1", 1, 1), Alert("h1", 2, 9), Alert("h1", 3, 10)};
  auto added = store_->AddAlerts(again, 2000);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(*added, 1);
  auto all = store_->ListAlerts({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].alert_id, "3");
  EXPECT_EQ((*all)[0].host_seq, 3);
  EXPECT_EQ((*all)[0].stream_seq, 10);
}

TEST_F(ConsoleStoreTest, FiltersAndLooksUp) {
  std::vector<ReceivedAlert> batch = {Alert("h1", 1, 1), Alert("h1", 2, 2), Alert("h2", 5, 3)};
  ASSERT_TRUE(store_->AddAlerts(batch, 1000).ok());
  auto limited = store_->ListAlerts({.limit = 1});
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ((*limited)[0].host_id, "h2");
  auto since = store_->ListAlerts({.since_ms = 1764820000002});
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(since->size(), 2u);
  auto by_id = store_->GetAlert((*limited)[0].id);
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->alert_id, "5");
  auto by_host = store_->GetHostAlert("h1", "2");
  ASSERT_TRUE(by_host.ok());
  EXPECT_EQ(by_host->host_seq, 2);
  EXPECT_EQ(store_->GetAlert(999).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetHostAlert("h2", "1").status().code(), StatusCode::kNotFound);
}

constexpr int64_t kDayMs = 86'400'000;

TEST_F(ConsoleStoreTest, RetentionDeletesByArrivalAndKeepsEachHostsNewest) {
  const int64_t now = 400 * kDayMs;
  // h1: two alerts 100 days old and one of today; h2: one alert, 100 days old.
  std::vector<ReceivedAlert> old = {Alert("h1", 1, 1), Alert("h1", 2, 2), Alert("h2", 1, 3)};
  ASSERT_TRUE(store_->AddAlerts(old, now - 100 * kDayMs).ok());
  std::vector<ReceivedAlert> fresh = {Alert("h1", 3, 4)};
  ASSERT_TRUE(store_->AddAlerts(fresh, now).ok());

  auto none = store_->ApplyRetention(now, 365);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(*none, 0);

  // Small chunks: the deletion goes on across them.
  auto deleted = store_->ApplyRetention(now, 30, /*chunk_rows=*/1);
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  EXPECT_EQ(*deleted, 2);
  auto h1 = store_->ListAlerts({.host_id = "h1"});
  ASSERT_TRUE(h1.ok());
  ASSERT_EQ(h1->size(), 1u);
  EXPECT_EQ((*h1)[0].alert_id, "3");
  // h2's only alert is its newest: kept, however old.
  auto h2 = store_->ListAlerts({.host_id = "h2"});
  ASSERT_TRUE(h2.ok());
  ASSERT_EQ(h2->size(), 1u);

  // Numbering goes on from where it was.
  std::vector<ReceivedAlert> next = {Alert("h2", 2, 5), Alert("h1", 4, 6)};
  ASSERT_TRUE(store_->AddAlerts(next, now).ok());
  auto n2 = store_->GetHostAlert("h2", "2");
  ASSERT_TRUE(n2.ok());
  EXPECT_EQ(n2->host_seq, 2);
  auto n1 = store_->GetHostAlert("h1", "4");
  ASSERT_TRUE(n1.ok());
  EXPECT_EQ(n1->host_seq, 4);
}

TEST_F(ConsoleStoreTest, RetentionGoesByTheConsolesClockNotTheHosts) {
  const int64_t now = 400 * kDayMs;
  // alert_time in the bodies is 2025 (NativeAlert): far older than a
  // 30-day retention at `now` + 20000 days, but they arrived just now.
  std::vector<ReceivedAlert> batch = {Alert("h1", 1, 1), Alert("h1", 2, 2)};
  ASSERT_TRUE(store_->AddAlerts(batch, now + 20000 * kDayMs).ok());
  auto deleted = store_->ApplyRetention(now + 20000 * kDayMs, 30);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 0);
  EXPECT_EQ(store_->ApplyRetention(now, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseAlertMessageTest, RefusesWhatIsNotAHostsAlert) {
  const std::string body = NativeAlert(4, "x");
  EXPECT_EQ(ParseAlertMessage("sentineld.alerts.a.b", {}, body, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAlertMessage("sentineld.scans.h1", {}, body, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAlertMessage("sentineld.alerts.", {}, body, 1).status().code(),
            StatusCode::kInvalidArgument);
  // Another host's message id: a host cannot overwrite another's alert.
  auto other = ParseAlertMessage("sentineld.alerts.h1", {{"Nats-Msg-Id", "h2:4"}}, body, 1);
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("h2:4"), std::string::npos);
  EXPECT_EQ(ParseAlertMessage("sentineld.alerts.h1", {}, "[1]", 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAlertMessage("sentineld.alerts.h1", {}, "{}", 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ParseAlertMessage("sentineld.alerts.h1", {}, std::string(kMaxAlertBytes + 1, ' '), 1).status().code(),
      StatusCode::kInvalidArgument);
  // Without the header, the body's id.
  auto native = ParseAlertMessage("sentineld.alerts.h1", {}, body, 1);
  ASSERT_TRUE(native.ok());
  EXPECT_EQ(native->alert_id, "4");
}

TEST(ParseAlertMessageTest, ReadsAnOcsfFinding) {
  const std::string ocsf =
      R"({"class_uid":2004,"time":1764820000123,"severity":"High",)"
      R"("finding_info":{"uid":"42","title":"odd shell"},"unmapped":{"rule_id":"proc-y"}})";
  auto a = ParseAlertMessage("sentineld.alerts.h-9", {}, ocsf, 5);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->alert_id, "42");
  testing::TempDir dir;
  auto store = ConsoleStore::Open(dir.File("fleet.db"), OpenMode::kReadWrite);
  ASSERT_TRUE(store.ok());
  std::vector<ReceivedAlert> batch = {*a};
  ASSERT_TRUE((*store)->AddAlerts(batch, 1).ok());
  auto got = (*store)->GetHostAlert("h-9", "42");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->title, "odd shell");
  EXPECT_EQ(got->rule_id, "proc-y");
  EXPECT_EQ(got->severity, "high");
  EXPECT_EQ(got->alert_time, 1764820000123);
}

TEST_F(ConsoleStoreTest, KeepsEachHostsLatestHeartbeat) {
  const std::string hb1 =
      R"({"host_id":"h1","hostname":"web-1","version":"0.1.0","health":"ok","last_scan":null,)"
      R"("rules":{"count":12,"checksum":"abc","bundle":{"bundle_id":"b1","status":"applied"}},"sent_at":100})";
  ASSERT_TRUE(store_->PutHeartbeat("h1", hb1, 3, 5000).ok());
  // An older heartbeat (a late KV read) does not replace a newer one.
  const std::string old = R"({"hostname":"stale","sent_at":50})";
  ASSERT_TRUE(store_->PutHeartbeat("h1", old, 2, 6000).ok());
  auto hosts = store_->ListHosts();
  ASSERT_TRUE(hosts.ok());
  ASSERT_EQ(hosts->size(), 1u);
  const HostRow& h = (*hosts)[0];
  EXPECT_EQ(h.hostname, "web-1");
  EXPECT_EQ(h.health, "ok");
  EXPECT_EQ(h.rules_count, 12);
  EXPECT_EQ(h.rules_checksum, "abc");
  EXPECT_EQ(nlohmann::json::parse(h.bundle)["bundle_id"], "b1");
  EXPECT_EQ(h.sent_at, 100);
  EXPECT_EQ(h.seen_at_ms, 5000);
  ASSERT_TRUE(store_->PutHeartbeat("h1", R"({"hostname":"web-1b","sent_at":130})", 4, 7000).ok());
  hosts = store_->ListHosts();
  ASSERT_TRUE(hosts.ok());
  EXPECT_EQ((*hosts)[0].hostname, "web-1b");
  EXPECT_EQ((*hosts)[0].bundle, "");
  EXPECT_EQ(store_->PutHeartbeat("h 1", "{}", 1, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutHeartbeat("h2", "not json", 1, 1).code(), StatusCode::kInvalidArgument);
}

TEST_F(ConsoleStoreTest, TheSameHeartbeatAgainDoesNotMakeASilentHostLookSeen) {
  const std::string hb = R"({"hostname":"web-1","sent_at":100})";
  ASSERT_TRUE(store_->PutHeartbeat("h1", hb, 7, 5000).ok());
  // A watch started again (serve restarted) delivers the key's current value: same revision.
  ASSERT_TRUE(store_->PutHeartbeat("h1", hb, 7, 9000).ok());
  auto hosts = store_->ListHosts();
  ASSERT_TRUE(hosts.ok());
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ((*hosts)[0].seen_at_ms, 5000);
  // A new heartbeat with the same second (a new revision) is news.
  ASSERT_TRUE(store_->PutHeartbeat("h1", hb, 8, 9500).ok());
  hosts = store_->ListHosts();
  ASSERT_TRUE(hosts.ok());
  EXPECT_EQ((*hosts)[0].seen_at_ms, 9500);
}

TEST_F(ConsoleStoreTest, ExpiryGoesByWhenTheConsoleLastStoredAHeartbeat) {
  constexpr int64_t kDay = 86'400'000;
  const int64_t now = 100 * kDay;
  // h1's host clock is right but the console last heard of it 31 days ago; h2's host clock is
  // 40 days behind, yet its heartbeat arrived now.
  ASSERT_TRUE(store_->PutHeartbeat("h1", R"({"hostname":"gone","sent_at":1})", 1, now - 31 * kDay).ok());
  ASSERT_TRUE(store_->PutHeartbeat("h2", R"({"hostname":"skewed","sent_at":1})", 1, now).ok());
  ASSERT_TRUE(store_->PutHeartbeat("h3", R"({"hostname":"quiet","sent_at":1})", 1, now - 29 * kDay).ok());
  auto expired = store_->ExpiredHosts(now, 30);
  ASSERT_TRUE(expired.ok()) << expired.status().message();
  EXPECT_EQ(*expired, std::vector<std::string>{"h1"});
  EXPECT_EQ(store_->ExpiredHosts(now, 0).status().code(), StatusCode::kInvalidArgument);
  // A heartbeat stored after the cutoff keeps the host.
  auto kept = store_->ForgetHost("h3", now - 30 * kDay);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(*kept);
  auto forgotten = store_->ForgetHost("h1", now - 30 * kDay);
  ASSERT_TRUE(forgotten.ok());
  EXPECT_TRUE(*forgotten);
  auto again = store_->ForgetHost("h1", std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  auto hosts = store_->ListHosts();
  ASSERT_TRUE(hosts.ok());
  std::vector<std::string> ids;
  for (const HostRow& h : *hosts) ids.push_back(h.host_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"h2", "h3"}));
}

TEST(ForwardPendingTest, SumsWhatTheHostHasNotForwardedAndDistrustsTheRest) {
  EXPECT_EQ(
      ForwardPending(R"({"forward":{"events":{"cursor":9,"pending":40},"scans":{"cursor":2,"pending":2}}})"),
      42);
  EXPECT_EQ(ForwardPending(R"({"forward":{"events":{"cursor":9,"pending":0}}})"), 0);
  EXPECT_EQ(ForwardPending(R"({"forward":null})"), std::nullopt);
  EXPECT_EQ(ForwardPending(R"({"hostname":"old-agent"})"), std::nullopt);
  EXPECT_EQ(ForwardPending(R"({"forward":{"events":{"pending":"many"},"scans":{"pending":-5}}})"),
            std::nullopt);
  EXPECT_EQ(ForwardPending("not json"), std::nullopt);
  // Two huge values from a hostile host saturate instead of overflowing.
  EXPECT_EQ(ForwardPending(R"({"forward":{"events":{"pending":9223372036854775807},)"
                           R"("scans":{"pending":9223372036854775807}}})"),
            std::numeric_limits<int64_t>::max());
}

TEST(ConsoleStoreOpenTest, RefusesAnotherSentinelDatabase) {
  testing::TempDir dir;
  const std::string path = dir.File("events.db");
  {
    auto events = storage::OpenStore(storage::DatabaseKind::kEvents, {path, OpenMode::kReadWrite});
    ASSERT_TRUE(events.ok()) << events.status().message();
  }
  auto s = ConsoleStore::Open(path, OpenMode::kReadWrite);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("event store"), std::string::npos) << s.status().message();
  EXPECT_EQ(ConsoleStore::Open(dir.File("missing.db"), OpenMode::kReadOnly).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace sentinel::console
