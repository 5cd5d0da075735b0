#include "sentinel/detection/attack_coverage.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sentinel::detection {
namespace {

Rule R(std::string id, std::vector<std::string> tags, std::vector<std::string> mitre) {
  Rule r;
  r.id = std::move(id);
  r.tags = std::move(tags);
  r.mitre = std::move(mitre);
  return r;
}

// A technique goes under the rule's tactics that ATT&CK files it under (else
// all of ATT&CK's); an unknown technique under the rule's tactics.
TEST(AttackCoverage, TechniquesAreListedUnderTheirTacticsInMatrixOrder) {
  auto c = BuildAttackCoverage({
      R("cron", {"persistence", "execution"}, {"T1053.003"}),
      R("shell", {"Execution", "rootkit", "initial-access"}, {"T1059.004", "T1053.003"}),
      R("sigma-x", {"attack.privilege_escalation", "attack.t1548.001", "attack.g0032"}, {"T1548.001"}),
      R("untagged", {}, {"T1496"}),
      R("plain", {"discovery"}, {}),
      R("future", {"attack.stealth"}, {"T1686", "T1564"}),
  });
  EXPECT_EQ(c.rules, 6u);
  EXPECT_EQ(c.techniques, 6u);
  ASSERT_EQ(c.rows.size(), 5u);
  EXPECT_EQ(c.rows[0].tactic->tag, "execution");
  ASSERT_EQ(c.rows[0].techniques.size(), 2u);
  EXPECT_EQ(c.rows[0].techniques[0].technique, "T1053.003");
  EXPECT_EQ(c.rows[0].techniques[0].rules, (std::vector<std::string>{"cron", "shell"}));
  EXPECT_EQ(c.rows[0].techniques[1].technique, "T1059.004");
  EXPECT_EQ(c.rows[1].tactic->tag, "persistence");
  EXPECT_EQ(c.rows[1].techniques[0].rules, (std::vector<std::string>{"cron"}));
  EXPECT_EQ(c.rows[2].tactic->tag, "privilege-escalation");
  EXPECT_EQ(c.rows[3].tactic->tag, "stealth");  // Defense Evasion's T1564 and the unknown T1686
  ASSERT_EQ(c.rows[3].techniques.size(), 2u);
  EXPECT_EQ(c.rows[3].techniques[1].technique, "T1686");
  EXPECT_EQ(c.rows[4].tactic->tag, "impact");  // untagged: where ATT&CK files T1496
  EXPECT_EQ(c.without_tactic, (std::vector<std::string>{"untagged"}));
  EXPECT_EQ(c.without_technique, (std::vector<std::string>{"plain"}));

  const std::string md = AttackCoverageMarkdown(c);
  EXPECT_NE(md.find("| Execution (TA0002) | T1059.004 Unix Shell | shell |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Persistence (TA0003) | T1053.003 Cron | cron |"), std::string::npos) << md;
  EXPECT_NE(md.find("no tactic tag: untagged"), std::string::npos) << md;
}

TEST(AttackCoverage, TechniqueIdsAndNames) {
  EXPECT_TRUE(IsAttackTechniqueId("T1059"));
  EXPECT_TRUE(IsAttackTechniqueId("T1059.004"));
  for (const char* bad : {"T105", "t1059", "T1059.04", "T1059-004", "TA0002", "G0032", "T1059.0041", ""})
    EXPECT_FALSE(IsAttackTechniqueId(bad)) << bad;
  EXPECT_EQ(AttackTechniqueName("T1059.004"), "Unix Shell");
  EXPECT_EQ(AttackTechniqueName("T1003.008"), "/etc/passwd and /etc/shadow");
  EXPECT_EQ(AttackTechniqueName("T9999"), "");
  EXPECT_EQ(FindAttackTactic("ATTACK.Command_And_Control")->id, "TA0011");
  EXPECT_EQ(FindAttackTactic("rootkit"), nullptr);
}

}  // namespace
}  // namespace sentinel::detection
