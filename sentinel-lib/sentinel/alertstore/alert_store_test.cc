#include "sentinel/alertstore/alert_store.h"

#include <gtest/gtest.h>

#include "sentinel/models/severity.h"
#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::alerting {
namespace {

using nlohmann::ordered_json;

class AlertStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = storage::OpenStore(storage::DatabaseKind::kEvents,
                                 {dir_.File("e.db"), storage::OpenMode::kReadWrite, 1000});
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    rule_.id = "proc-x";
    rule_.name = "Process from /tmp";
    rule_.description = "desc";
    rule_.severity = models::Severity::kHigh;
    rule_.dedup_keys = {"pid", "exe_path"};
  }

  detection::RuleResult Rows(std::vector<ordered_json> rows) {
    detection::RuleResult r;
    r.rows = std::move(rows);
    r.duration_ms = 4;
    return r;
  }

  int64_t Count() { return *(*db_->QueryInt("SELECT count(*) FROM alerts")); }

  testing::TempDir dir_;
  std::unique_ptr<storage::Database> db_;
  detection::Rule rule_;
};

TEST_F(AlertStoreTest, OneAlertPerFindingWithEveryField) {
  ordered_json row = {{"pid", 42}, {"name", "evil"}, {"exe_path", "/tmp/evil"}, {"cmd", "\"quoted\"\n"}};
  auto res = RecordFindings(*db_, rule_, 3, Rows({row}), 17, 1'000'000, 3'600'000);
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->created.size(), 1u);
  auto got = GetAlert(*db_, res->created[0].id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->alert_time, 1'000'000);
  EXPECT_EQ(got->rule_id, "proc-x");
  EXPECT_EQ(got->title, "Process from /tmp");
  EXPECT_EQ(got->description, "desc");
  EXPECT_EQ(got->severity, models::Severity::kHigh);
  EXPECT_EQ(got->scan_id, 17);
  EXPECT_EQ(got->affected_processes.dump(), R"j([{"pid":42,"name":"evil","exe_path":"/tmp/evil"}])j");
  EXPECT_EQ(got->process_count, 1);
  EXPECT_EQ(got->rule_version, 3);
  EXPECT_EQ(got->execution_time_ms, 4);
  EXPECT_EQ(ordered_json::parse(got->raw_data), row);
  EXPECT_EQ(got->dedup_key.size(), 64u);
  EXPECT_EQ(got->status, "open");
  EXPECT_EQ(got->ToJson()["raw_data"]["cmd"], "\"quoted\"\n");
}

TEST_F(AlertStoreTest, SigmaRulesCarryTheirAuthorIntoTheAlert) {
  // The Detection Rule License asks that a reported match keeps the rule's author.
  rule_.sigma_id = "0f5b4d0c-1111-4a2b-9c3d-123456789abc";
  rule_.author = "Ada Example";
  rule_.status = "test";
  rule_.references = {"https://example.org/a"};
  ordered_json row = {{"pid", 42}, {"name", "evil"}, {"exe_path", "/tmp/evil"}};
  auto res = RecordFindings(*db_, rule_, 1, Rows({row}), 17, 1'000'000, 3'600'000);
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->created.size(), 1u);
  auto got = GetAlert(*db_, res->created[0].id);
  ASSERT_TRUE(got.ok());
  const ordered_json raw = ordered_json::parse(got->raw_data);
  EXPECT_EQ(raw["pid"], 42);
  EXPECT_EQ(raw["sigma"]["author"], "Ada Example");
  EXPECT_EQ(raw["sigma"]["id"], "0f5b4d0c-1111-4a2b-9c3d-123456789abc");
  EXPECT_EQ(raw["sigma"]["title"], "Process from /tmp");
  EXPECT_EQ(raw["sigma"]["references"], ordered_json::array({"https://example.org/a"}));
  // The dedup key is the finding's, not the provenance's.
  rule_.author = "Someone Else";
  auto again = RecordFindings(*db_, rule_, 1, Rows({row}), 18, 1'000'001, 3'600'000);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->created.empty());
}

TEST_F(AlertStoreTest, DeduplicatesWithinTheWindowOnly) {
  ordered_json a = {{"pid", 1}, {"name", "x"}, {"exe_path", "/tmp/a"}, {"cpu", 1.0}};
  ordered_json a_again = {
      {"pid", 1}, {"name", "x"}, {"exe_path", "/tmp/a"}, {"cpu", 9.0}};  // not a dedup key
  ordered_json b = {{"pid", 2}, {"name", "x"}, {"exe_path", "/tmp/a"}, {"cpu", 1.0}};
  auto first = RecordFindings(*db_, rule_, 1, Rows({a, a_again, b}), 1, 10'000, 5'000);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->created.size(), 2u);
  EXPECT_EQ(first->suppressed, 1);
  auto within = RecordFindings(*db_, rule_, 1, Rows({a}), 2, 14'000, 5'000);
  ASSERT_TRUE(within.ok());
  EXPECT_EQ(within->created.size(), 0u);
  auto after = RecordFindings(*db_, rule_, 1, Rows({a}), 3, 15'001, 5'000);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->created.size(), 1u);
  // Another rule with the same values is a different finding.
  detection::Rule other = rule_;
  other.id = "proc-y";
  auto other_rule = RecordFindings(*db_, other, 1, Rows({a}), 3, 15'002, 5'000);
  ASSERT_TRUE(other_rule.ok());
  EXPECT_EQ(other_rule->created.size(), 1u);
  EXPECT_EQ(Count(), 4);
  // Window 0 turns deduplication off.
  auto off = RecordFindings(*db_, rule_, 1, Rows({a}), 3, 15'003, 0);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->created.size(), 1u);
}

TEST_F(AlertStoreTest, RulesWithoutDedupKeysUseTheWholeRow) {
  rule_.dedup_keys.clear();
  ordered_json a = {{"n", 1}};
  ordered_json b = {{"n", 2}};
  auto res = RecordFindings(*db_, rule_, 1, Rows({a, b, a}), std::nullopt, 10, 1000);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->created.size(), 2u);
  EXPECT_EQ(res->created[0].affected_processes.size(), 0u);
  EXPECT_EQ(res->created[0].process_count, 0);
}

TEST_F(AlertStoreTest, QueryBuiltAffectedProcessesAndHostileStrings) {
  ordered_json row = {
      {"affected_processes", R"([{"pid":5,"name":"a","exe_path":"/a"},{"pid":6,"name":"b"}])"},
      {"name", std::string("bad\xff\xfe utf8")}};
  auto res = RecordFindings(*db_, rule_, 1, Rows({row}), 1, 10, 1000);
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->created.size(), 1u);
  EXPECT_EQ(res->created[0].process_count, 2);
  EXPECT_EQ(res->created[0].affected_processes[1]["exe_path"], nullptr);
  auto got = GetAlert(*db_, res->created[0].id);
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->raw_data.find("bad"), std::string::npos);
  EXPECT_EQ(GetAlert(*db_, 999).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sentinel::alerting
