// The forwarded messages' formats (fleet_forwarder.h) and the cursors on a
// real event store. The forwarding itself, against a real nats-server and a
// real agent: tests/integration/fleet_forward_test.cc.
#include "sentinelagent/fleet_forwarder.h"

#include <gtest/gtest.h>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::agent {
namespace {

using nlohmann::json;

json Row(std::size_t arg_bytes) {
  return {{"pid", 7}, {"name", "x"}, {"command_line", json::array({"sh", std::string(arg_bytes, 'a')})}};
}

TEST(FleetForwardFormatTest, SmallRowsAreUnchanged) {
  const json row = Row(10);
  EXPECT_EQ(FitJson(row, 4096), row.dump());
  json e = json::parse(EventMessage("h1", row, 4096));
  EXPECT_EQ(e["host_id"], "h1");
  EXPECT_FALSE(e.contains("truncated"));
}

TEST(FleetForwardFormatTest, OversizedRowsAreCutToValidUtf8Json) {
  json row = Row(500'000);
  row["exe_path"] = std::string("/tmp/\xff\xfe") + std::string(3000, '\xe6');  // invalid UTF-8
  row["env"] = json::object({{"LD_PRELOAD", std::string(5000, 'b')}});
  for (std::size_t max : {std::size_t{1024}, std::size_t{8192}, std::size_t{256} << 10}) {
    const std::string out = FitJson(row, max);
    EXPECT_LE(out.size(), max);
    json j = json::parse(out);  // throws (fails) on invalid JSON or UTF-8
    EXPECT_EQ(j["truncated"], true);
    EXPECT_EQ(j["pid"], 7);
  }
}

TEST(FleetForwardFormatTest, ManyArgumentsStillFit) {
  json row = {{"id", 9}, {"command_line", json::array()}};
  for (int i = 0; i < 100'000; ++i) row["command_line"].push_back("arg");
  const std::string out = FitJson(row, 4096);
  EXPECT_LE(out.size(), 4096u);
  json j = json::parse(out);
  EXPECT_EQ(j["id"], 9);
  EXPECT_TRUE(j["command_line"].is_null());
}

TEST(FleetForwardFormatTest, ScanChunksAreBoundedOrderedAndComplete) {
  std::vector<std::string> rows;
  for (int pid = 1; pid <= 3000; ++pid) {
    rows.push_back(json({{"pid", pid}, {"command_line", json::array({std::string(200, 'c')})}}).dump());
  }
  const json summary = {{"scan_id", 12}, {"process_count", 3000}, {"error_summary", json::object()}};
  const std::size_t max = 64 << 10;
  auto chunks = ScanMessages("h1", 12, summary, rows, max);
  ASSERT_GT(chunks.size(), 5u);
  std::vector<int64_t> pids;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_LE(chunks[i].size(), max);
    json c = json::parse(chunks[i]);
    EXPECT_EQ(c["host_id"], "h1");
    EXPECT_EQ(c["scan_id"], 12);
    EXPECT_EQ(c["chunk"], i);
    EXPECT_EQ(c["chunks"], chunks.size());
    EXPECT_EQ(c["scan"], summary);
    for (const auto& p : c["processes"]) pids.push_back(p["pid"].get<int64_t>());
  }
  ASSERT_EQ(pids.size(), 3000u);
  for (int i = 0; i < 3000; ++i) EXPECT_EQ(pids[i], i + 1);
  // No process: one chunk, empty.
  auto empty = ScanMessages("h1", 13, summary, {}, max);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(json::parse(empty[0])["processes"], json::array());
}

TEST(FleetForwardFormatTest, MessageIdsNameHostKindAndRow) {
  EXPECT_EQ(EventMsgId("h1", 42), "h1:e42");
  EXPECT_EQ(ScanMsgId("h1", 7, 3), "h1:s7.3");
}

TEST(FleetForwardCursorTest, CreatedAtTheEndKeptAndDroppedWithTheConfiguration) {
  testing::TempDir dir;
  auto db = storage::OpenStore(storage::DatabaseKind::kEvents,
                               {dir.File("events.db"), storage::OpenMode::kReadWrite, 5000});
  ASSERT_TRUE(db.ok()) << db.status().message();
  storage::Database& d = **db;
  ASSERT_TRUE(d.Exec("INSERT INTO process_events(event_time_ms, event_type, pid) VALUES(1, 'exec', 1), "
                     "(2, 'exec', 2), (3, 'exec', 3); DELETE FROM process_events WHERE id = 3;")
                  .ok());
  ASSERT_EQ(*ForwardTableEnd(d, ForwardKind::kEvents), 3);  // the sequence, not max(id)
  config::Config cfg;
  cfg.fleet.servers = {"nats://127.0.0.1:4222"};
  cfg.fleet.forward = {"alerts", "events"};
  ASSERT_TRUE(SyncForwardCursors(d, cfg, 100).ok());
  EXPECT_EQ(*ReadForwardCursor(d, ForwardKind::kEvents), 3);
  EXPECT_EQ(*ReadForwardCursor(d, ForwardKind::kScans), std::nullopt);
  ASSERT_TRUE(SetForwardCursor(d, ForwardKind::kEvents, 2, 200).ok());
  ASSERT_TRUE(SyncForwardCursors(d, cfg, 300).ok());  // an existing cursor is kept
  EXPECT_EQ(*ReadForwardCursor(d, ForwardKind::kEvents), 2);
  cfg.fleet.forward = {"alerts"};
  ASSERT_TRUE(SyncForwardCursors(d, cfg, 400).ok());
  EXPECT_EQ(*ReadForwardCursor(d, ForwardKind::kEvents), std::nullopt);
  cfg.fleet.forward = {"events", "scans"};
  cfg.fleet.servers.clear();  // the fleet off: nothing is forwarded
  EXPECT_FALSE(Forwards(cfg, ForwardKind::kEvents));
}

}  // namespace
}  // namespace sentinel::agent
