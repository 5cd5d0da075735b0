#include "sentinel/detection/rule_store.h"

#include <gtest/gtest.h>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::detection {
namespace {

Rule MakeRule(const std::string& id, const std::string& query) {
  Rule r;
  r.id = id;
  r.name = "Rule " + id;
  r.severity = models::Severity::kHigh;
  r.category = "process";
  r.query = query;
  r.source_path = "/etc/rules/" + id + ".yaml";
  return r;
}

class RuleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = storage::OpenStore(storage::DatabaseKind::kEvents,
                                 {dir_.File("e.db"), storage::OpenMode::kReadWrite, 1000});
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
  }
  testing::TempDir dir_;
  std::unique_ptr<storage::Database> db_;
};

TEST_F(RuleStoreTest, VersionBumpsOnlyWhenTheQueryChanges) {
  Rule a = MakeRule("a", "SELECT pid FROM processes");
  Rule b = MakeRule("b", "SELECT name FROM processes");
  auto first = SyncRules(*db_, {a, b}, 100);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].change, SyncChange::kAdded);

  auto again = SyncRules(*db_, {a, b}, 200);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());

  a.name = "Renamed";
  b.query = "SELECT name, pid FROM processes";
  auto changed = SyncRules(*db_, {a, b}, 300);
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->size(), 2u);
  EXPECT_EQ((*changed)[0].change, SyncChange::kUpdated);
  EXPECT_EQ((*changed)[0].version, 1);
  EXPECT_EQ((*changed)[1].change, SyncChange::kVersionBumped);
  EXPECT_EQ((*changed)[1].version, 2);

  auto states = ReadRuleStates(*db_);
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(states->at("a").version, 1);
  EXPECT_EQ(states->at("b").version, 2);
  EXPECT_EQ(states->at("b").checksum, b.Checksum());
  EXPECT_EQ(states->at("b").created_at_ms, 100);
  EXPECT_EQ(states->at("b").updated_at_ms, 300);
}

TEST_F(RuleStoreTest, EvaluatedOnFollowsTheRuleAndBumpsTheVersion) {
  Rule a = MakeRule("a", "SELECT pid FROM processes");
  ASSERT_TRUE(SyncRules(*db_, {a}, 100).ok());
  EXPECT_EQ(db_->QueryText("SELECT evaluated_on FROM detection_rules WHERE id = 'a'")->value_or(""), "scan");
  a.on = RuleTrigger::kExec;
  a.query = "SELECT pid FROM exec_events";
  auto changed = SyncRules(*db_, {a}, 200);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  ASSERT_EQ(changed->size(), 1u);
  EXPECT_EQ((*changed)[0].change, SyncChange::kVersionBumped);
  EXPECT_EQ(db_->QueryText("SELECT evaluated_on FROM detection_rules WHERE id = 'a'")->value_or(""), "exec");
}

TEST_F(RuleStoreTest, ExecCursorsAreSetAndMoved) {
  auto none = ReadExecCursors(*db_);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(SetExecCursor(*db_, "a", 10, 100).ok());
  ASSERT_TRUE(SetExecCursor(*db_, "b", 3, 100).ok());
  ASSERT_TRUE(SetExecCursor(*db_, "a", 25, 200).ok());
  auto c = ReadExecCursors(*db_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, (std::map<std::string, int64_t>{{"a", 25}, {"b", 3}}));
  EXPECT_EQ(db_->QueryInt("SELECT updated_at_ms FROM detection_cursors WHERE rule_id = 'a'")->value_or(0),
            200);
}

TEST_F(RuleStoreTest, ExecCursorsOfABatchMoveTogether) {
  ASSERT_TRUE(SetExecCursor(*db_, "a", 10, 100).ok());
  ASSERT_TRUE(SetExecCursor(*db_, "c", 40, 100).ok());
  // "a" moves, "b" is new, "c" is not named and stays.
  ASSERT_TRUE(SetExecCursors(*db_, {"a", "b"}, 30, 300).ok());
  auto c = ReadExecCursors(*db_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, (std::map<std::string, int64_t>{{"a", 30}, {"b", 30}, {"c", 40}}));
  EXPECT_EQ(db_->QueryInt("SELECT count(*) FROM detection_cursors WHERE updated_at_ms = 300")->value_or(0),
            2);
  ASSERT_TRUE(SetExecCursors(*db_, {}, 99, 400).ok());
  ASSERT_TRUE(SetExecCursors(*db_, {"c"}, 45, 400).ok());
  EXPECT_EQ(ReadExecCursors(*db_)->at("c"), 45);
}

TEST_F(RuleStoreTest, OperatorOverrideSurvivesReloads) {
  Rule a = MakeRule("a", "SELECT pid FROM processes");
  ASSERT_TRUE(SyncRules(*db_, {a}, 100).ok());
  ASSERT_TRUE(SetRuleEnabled(*db_, a, false, 150).ok());
  a.query = "SELECT pid, name FROM processes";
  ASSERT_TRUE(SyncRules(*db_, {a}, 200).ok());
  auto states = ReadRuleStates(*db_);
  ASSERT_TRUE(states.ok());
  EXPECT_FALSE(states->at("a").enabled);
  EXPECT_EQ(states->at("a").enabled_override, false);
  EXPECT_FALSE(EffectiveEnabled(a, *states));
  ASSERT_TRUE(SetRuleEnabled(*db_, a, true, 250).ok());
  states = ReadRuleStates(*db_);
  EXPECT_TRUE(EffectiveEnabled(a, *states));

  // A file-disabled rule stays disabled without an override.
  Rule off = MakeRule("off", "SELECT 1");
  off.enabled = false;
  ASSERT_TRUE(SyncRules(*db_, {a, off}, 300).ok());
  states = ReadRuleStates(*db_);
  EXPECT_FALSE(states->at("off").enabled);
  EXPECT_FALSE(EffectiveEnabled(off, *states));
  // The brief read the real-time detector uses decides the same.
  ASSERT_TRUE(SetRuleEnabled(*db_, a, false, 350).ok());
  auto brief = ReadRuleEnablement(*db_);
  ASSERT_TRUE(brief.ok());
  states = ReadRuleStates(*db_);
  for (const Rule* r : {&a, &off}) {
    EXPECT_EQ(EffectiveEnabled(*r, *brief), EffectiveEnabled(*r, *states)) << r->id;
    EXPECT_EQ(brief->at(r->id).version, states->at(r->id).version) << r->id;
  }
  EXPECT_FALSE(EffectiveEnabled(a, *brief));
  EXPECT_EQ(brief->at("a").version, 2);
}

TEST_F(RuleStoreTest, RemovedRuleIsKeptDisabledAndRunsAreRecorded) {
  Rule a = MakeRule("a", "SELECT pid FROM processes");
  Rule b = MakeRule("b", "SELECT name FROM processes");
  ASSERT_TRUE(SyncRules(*db_, {a, b}, 100).ok());
  ASSERT_TRUE(RecordRuleRun(*db_, "a", 110, 7, "").ok());
  ASSERT_TRUE(RecordRuleRun(*db_, "b", 110, 9, "rule b: interrupted").ok());
  auto out = SyncRules(*db_, {a}, 200);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].change, SyncChange::kRemoved);
  auto states = ReadRuleStates(*db_);
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(states->at("a").last_run_ms, 110);
  EXPECT_EQ(states->at("a").last_duration_ms, 7);
  EXPECT_FALSE(states->at("a").last_error.has_value());
  EXPECT_FALSE(states->at("b").enabled);
  EXPECT_EQ(states->at("b").last_error, "rule file removed");
  // Restoring the file brings it back.
  out = SyncRules(*db_, {a, b}, 300);
  ASSERT_TRUE(out.ok());
  states = ReadRuleStates(*db_);
  EXPECT_TRUE(states->at("b").enabled);
  EXPECT_FALSE(states->at("b").last_error.has_value());
}

}  // namespace
}  // namespace sentinel::detection
