#include "sentinel/detection/rule.h"

#include <gtest/gtest.h>

#include <set>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::detection {
namespace {

constexpr const char* kGood = R"(id: test-rule.1
name: A test rule
description: Something worth knowing.
severity: high
category: process
tags: [defense-evasion, test]
mitre: [T1070.004, T1059]
enabled: false
dedup_keys: [pid, exe_path]
query: |
  SELECT pid, name, exe_path FROM processes WHERE exe_path LIKE '% (deleted)'
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

void ExpectError(const std::string& text, const std::string& want) {
  auto r = ParseRule(text, "rules/x.yaml");
  ASSERT_FALSE(r.ok()) << "accepted: " << text;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("rules/x.yaml: "), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().message();
}

TEST(RuleTest, ParsesEveryField) {
  auto r = ParseRule(kGood, "rules/x.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->id, "test-rule.1");
  EXPECT_EQ(r->name, "A test rule");
  EXPECT_EQ(r->description, "Something worth knowing.");
  EXPECT_EQ(r->severity, models::Severity::kHigh);
  EXPECT_EQ(r->category, "process");
  EXPECT_EQ(r->tags, (std::vector<std::string>{"defense-evasion", "test"}));
  EXPECT_EQ(r->mitre, (std::vector<std::string>{"T1070.004", "T1059"}));
  EXPECT_FALSE(r->enabled);
  EXPECT_EQ(r->dedup_keys, (std::vector<std::string>{"pid", "exe_path"}));
  EXPECT_NE(r->query.find("FROM processes"), std::string::npos);
  EXPECT_EQ(r->source_path, "rules/x.yaml");
}

TEST(RuleTest, OnIsScanByDefaultOrExec) {
  auto r = ParseRule(kGood, "rules/x.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->on, RuleTrigger::kScan);
  auto e = ParseRule(std::string(kGood) + "on: exec\n", "rules/x.yaml");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->on, RuleTrigger::kExec);
  EXPECT_EQ(RuleTriggerName(e->on), "exec");
  auto s = ParseRule(std::string(kGood) + "on: scan\n", "rules/x.yaml");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->on, RuleTrigger::kScan);
  ExpectError(std::string(kGood) + "on: exit\n", "on: expected scan or exec, got \"exit\"");
  ExpectError(std::string(kGood) + "on: [exec]\n", "on: expected scan or exec, got a list");
  // Part of an exec rule's checksum (its findings change); a scan rule's checksum is as before.
  EXPECT_NE(e->Checksum(), r->Checksum());
  EXPECT_EQ(s->Checksum(), r->Checksum());
  // Exported and read back.
  auto back = ParseRule(RuleToYaml(*e), "export.yaml");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->on, RuleTrigger::kExec);
  EXPECT_EQ(RuleToYaml(*r).find("\non:"), std::string::npos);
  EXPECT_NE(RuleToYaml(*e).find("\non: exec\n"), std::string::npos);
}

TEST(RuleTest, NamesFileAndFieldOfEachProblem) {
  ExpectError(Replace(kGood, "severity: high", "severity: urgent"),
              "severity: expected one of low, medium, high");
  ExpectError(Replace(kGood, "id: test-rule.1", "id: Bad_Id"), "id: expected [a-z0-9]");
  ExpectError(Replace(kGood, "id: test-rule.1", "id: -x"), "id: expected");
  ExpectError(Replace(kGood, "id: test-rule.1\n", ""), "id: is required");
  ExpectError(Replace(kGood, "name: A test rule", "name: [a, b]"), "name: expected a string, got a list");
  ExpectError(Replace(kGood, "enabled: false", "enabled: maybe"), "enabled: expected true or false");
  ExpectError(Replace(kGood, "enabled: false", "enabled: \"true\""), "enabled: expected true or false");
  ExpectError(Replace(kGood, "mitre: [T1070.004, T1059]", "mitre: [lateral]"),
              "mitre[0]: expected an ATT&CK");
  ExpectError(Replace(kGood, "tags: [defense-evasion, test]", "tags: evasion"), "tags: expected a list");
  ExpectError(Replace(kGood, "tags: [defense-evasion, test]", "tags: [a, a]"), "tags[1]: duplicate");
  ExpectError(Replace(kGood, "dedup_keys: [pid, exe_path]", "dedup_key: [pid]"),
              "\"dedup_key\": unknown field");
  ExpectError(Replace(kGood, "query: |", "query: ''\nx: |"), "unknown field");
  ExpectError("id: [unclosed", "not valid YAML");
  ExpectError("- a\n- b\n", "expected a mapping");
  ExpectError("", "expected a mapping");
  ExpectError(Replace(kGood, "name: A test rule", "name: bad\xff\xfe"), "");  // raw invalid UTF-8
  ExpectError(std::string(kMaxRuleFileBytes + 1, '#'), "larger than");
}

TEST(RuleTest, ChecksumFollowsQueryAndDedupKeysOnly) {
  auto a = ParseRule(kGood, "a");
  auto b = ParseRule(Replace(kGood, "name: A test rule", "name: Renamed"), "b");
  auto c = ParseRule(Replace(kGood, "LIKE '% (deleted)'", "LIKE '%(deleted)'"), "c");
  auto d = ParseRule(Replace(kGood, "dedup_keys: [pid, exe_path]", "dedup_keys: [pid]"), "d");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_EQ(a->Checksum().size(), 64u);
  EXPECT_EQ(a->Checksum(), b->Checksum());
  EXPECT_NE(a->Checksum(), c->Checksum());
  EXPECT_NE(a->Checksum(), d->Checksum());
}

TEST(RuleTest, YamlRoundTrip) {
  auto a = ParseRule(kGood, "a");
  ASSERT_TRUE(a.ok());
  auto b = ParseRule(RuleToYaml(*a), "a");
  ASSERT_TRUE(b.ok()) << b.status().message() << "\n" << RuleToYaml(*a);
  EXPECT_EQ(b->id, a->id);
  EXPECT_EQ(b->query, a->query);
  EXPECT_EQ(b->tags, a->tags);
  EXPECT_EQ(b->enabled, a->enabled);
  EXPECT_EQ(b->Checksum(), a->Checksum());
}

TEST(RuleTest, ExportKeepsEveryQueryExactly) {
  // Found by fuzz/rule_fuzz: a query without its final newline (a file ending right after it),
  // with several, or starting with a space came back from `rules export` changed, and with it
  // the checksum (a new stored version for an unchanged rule).
  const std::string head = "id: q\nname: Q\nseverity: low\nquery: ";
  for (const std::string& query :
       {std::string("|\n  SELECT 1\n"), std::string("|\n  SELECT 1"), std::string("|+\n  SELECT 1\n\n\n"),
        std::string("\"  SELECT 1\""), std::string("\"SELECT 1 -- \\t tab\\r\""),
        std::string("|\n  SELECT\n    1\n")}) {
    auto a = ParseRule(head + query, "a");
    ASSERT_TRUE(a.ok()) << a.status().message();
    const std::string exported = RuleToYaml(*a);
    auto b = ParseRule(exported, "b");
    ASSERT_TRUE(b.ok()) << b.status().message() << "\n" << exported;
    EXPECT_EQ(b->query, a->query) << exported;
    EXPECT_EQ(b->Checksum(), a->Checksum());
  }
  // The usual multi-line query keeps its readable literal block.
  auto a = ParseRule(kGood, "a");
  ASSERT_TRUE(a.ok());
  EXPECT_NE(RuleToYaml(*a).find("query: |\n  SELECT pid"), std::string::npos) << RuleToYaml(*a);
}

TEST(RuleTest, NoncharactersAreRefusedNamingTheField) {
  // Found by fuzz/rule_fuzz: yaml-cpp exports U+FFFF (and every other noncharacter) as U+FFFD,
  // so a rule holding one came back from `rules export` changed. Escaped or raw, it is refused.
  const std::string head = "id: q\nname: Q\nseverity: low\n";
  for (const std::string& bad :
       {std::string("query: \"SELECT 1 -- \\x01\\uFFFF\"\n"), std::string("query: \"SELECT 1 -- \\uFDD0\"\n"),
        std::string("query: \"SELECT 1 -- \\U0001FFFE\"\n"),
        std::string("query: SELECT 1 -- \xEF\xBF\xBE raw\n")}) {
    auto r = ParseRule(head + bad, "n.yaml");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("query"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("noncharacter"), std::string::npos) << r.status().message();
  }
  auto tag = ParseRule(head + "tags: [\"a\\uFFFFb\"]\nquery: SELECT 1\n", "t.yaml");
  ASSERT_FALSE(tag.ok());
  EXPECT_NE(tag.status().message().find("tags[0]"), std::string::npos) << tag.status().message();
  // Characters next to them stay allowed: U+FFFD itself, U+FDCF, U+EFFFD, and text in any script.
  auto ok =
      ParseRule(head + "name: \"caf\\u00e9 \\uFFFD \\uFDCF \\U000EFFFD\"\nquery: SELECT 1\n", "ok.yaml");
  EXPECT_TRUE(ok.ok()) << ok.status().message();
}

TEST(RuleTest, BuiltinRulesAreEmbeddedAndValid) {
  auto rules = BuiltinRules();
  ASSERT_TRUE(rules.ok()) << rules.status().message();
  ASSERT_FALSE(rules->empty());
  std::set<std::string> ids;
  for (const auto& r : *rules) {
    EXPECT_EQ(r.source, RuleSource::kBuiltin);
    EXPECT_TRUE(ids.insert(r.id).second) << r.id;
    EXPECT_EQ(r.source_path, "builtin:rules/" + r.id + ".yaml");
  }
}

TEST(RuleTest, RuleSetSkipsBadFilesAndDuplicateIds) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("a.yaml"), kGood);
  testing::WriteFile(dir.File("b.yaml"), kGood);  // same id
  testing::WriteFile(dir.File("c.yaml"), "id: [");
  testing::WriteFile(dir.File("notes.txt"), "ignored");
  testing::WriteFile(dir.File("d.yml"), Replace(kGood, "id: test-rule.1", "id: other"));
  RuleSet set = LoadRuleSet(false, {dir.path(), dir.File("missing")});
  ASSERT_EQ(set.rules.size(), 2u);
  EXPECT_EQ(set.rules[0].id, "test-rule.1");
  EXPECT_EQ(set.rules[1].id, "other");
  ASSERT_EQ(set.problems.size(), 2u);
  EXPECT_NE(set.problems[0].status.message().find("already defined by " + dir.File("a.yaml")),
            std::string::npos)
      << set.problems[0].status.message();
  EXPECT_NE(set.problems[1].status.message().find("c.yaml"), std::string::npos);
  EXPECT_EQ(set.missing_dirs, (std::vector<std::string>{dir.File("missing")}));
  // Built-ins come first and win over a user file with the same id.
  RuleSet with_builtin = LoadRuleSet(true, {dir.path()});
  ASSERT_FALSE(with_builtin.rules.empty());
  EXPECT_EQ(with_builtin.rules.front().source, RuleSource::kBuiltin);
}

TEST(RuleTest, ProvenanceFieldsDoNotChangeTheChecksum) {
  auto plain = ParseRule(kGood, "a.yaml");
  auto with = ParseRule(std::string(kGood) +
                            "author: A\nstatus: test\nsigma_id: x-1\nreferences: [https://x]\n"
                            "falsepositives: [admins]\n",
                        "a.yaml");
  ASSERT_TRUE(plain.ok() && with.ok()) << with.status().message();
  EXPECT_EQ(plain->Checksum(), with->Checksum());
  EXPECT_EQ(with->author, "A");
  EXPECT_EQ(with->falsepositives, (std::vector<std::string>{"admins"}));
}

}  // namespace
}  // namespace sentinel::detection
