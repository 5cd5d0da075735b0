// Sigma rules with the real binaries (SPEC §13): `sentinelcli rules convert`
// prints or writes the translated rules and names every refused file;
// `rules validate` / `rules import` accept Sigma; `rules show` shows the
// Sigma provenance; the agent loads a Sigma file from its rules directory
// and its alert carries the rule's author. The `re` modifier runs through
// regexp() (RE2) inside the agent's confined query worker.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;

constexpr const char* kRuleId = "sigma-5e0b1c2d-3f4a-4b5c-8d6e-7f8091a2b3c4";

// Matches the probe process below: Image|endswith plus an `re` on its argv.
std::string ProbeSigma() {
  return "title: Sigma probe running\n"
         "id: 5E0B1C2D-3F4A-4B5C-8D6E-7F8091A2B3C4\n"
         "status: test\n"
         "description: The test's probe process.\n"
         "author: Ada Example, Grace Example\n"
         "references:\n    - https://example.org/probe\n"
         "tags:\n    - attack.execution\n    - attack.t1059.004\n"
         "logsource:\n    product: linux\n    category: process_creation\n"
         "detection:\n"
         "    selection:\n        Image|endswith: '/sigma-probe'\n        CommandLine|re: ' 6{1}0{2}$'\n"
         "    filter:\n        ParentImage|endswith: '/nothing-like-this'\n"
         "    condition: selection and not filter\n"
         "falsepositives:\n    - None\n"
         "level: high\n";
}

class SigmaCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = sb_.File("events.db");
    rules_dir_ = sb_.File("rules.d");
    ::mkdir(rules_dir_.c_str(), 0755);
    src_ = sb_.File("sigma");
    ::mkdir(src_.c_str(), 0755);
    ::mkdir((src_ + "/nested").c_str(), 0755);
  }
  std::vector<std::string> Env() const { return DetectionEnv(sb_, db_, rules_dir_); }
  RunResult Cli(const std::vector<std::string>& args) const { return sb_.Cli(args, Env()); }

  Sandbox sb_;
  std::string db_;
  std::string rules_dir_;
  std::string src_;
};

TEST_F(SigmaCliTest, ConvertPrintsOrWritesRulesAndNamesEveryRefusal) {
  testing::WriteFile(src_ + "/nested/probe.yml", ProbeSigma());
  std::string cidr = ProbeSigma();
  cidr.replace(cidr.find("Image|endswith: '/sigma-probe'"), 30, "CommandLine|cidr: 10.0.0.0/8");
  cidr.replace(cidr.find("5E0B"), 4, "6E0B");
  testing::WriteFile(src_ + "/cidr.yml", cidr);
  testing::WriteFile(src_ + "/native.yaml",
                     "id: proc-x\nname: X\nseverity: low\nquery: SELECT pid FROM processes\n");

  RunResult all = Cli({"rules", "convert", src_});
  EXPECT_EQ(all.exit_code, 2) << all.err;
  EXPECT_TRUE(Contains(all.out, std::string("id: ") + kRuleId)) << all.out;
  EXPECT_TRUE(Contains(all.out, "regexp(' 6{1}0{2}$', command_text)")) << all.out;
  EXPECT_TRUE(
      Contains(all.err, src_ + "/cidr.yml: detection.selection.CommandLine|cidr: modifier \"cidr\" is not "
                               "supported"))
      << all.err;
  EXPECT_TRUE(Contains(all.err, src_ + "/native.yaml: file: not a Sigma rule")) << all.err;
  EXPECT_TRUE(Contains(all.err, "2 of 3 file(s) refused")) << all.err;

  RunResult one = Cli({"rules", "convert", src_ + "/nested/probe.yml"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_TRUE(Contains(one.out, "author: Ada Example, Grace Example")) << one.out;

  const std::string out = sb_.File("converted");
  RunResult written = Cli({"rules", "convert", src_, "--output", out});
  EXPECT_EQ(written.exit_code, 2);
  EXPECT_EQ(ListDir(out), (std::set<std::string>{std::string(kRuleId) + ".yaml"}));
  // What convert writes is a native rule the sandbox accepts.
  RunResult valid = Cli({"rules", "validate", out + "/" + kRuleId + ".yaml"});
  EXPECT_EQ(valid.exit_code, 0) << valid.err;

  RunResult missing = Cli({"rules", "convert", sb_.File("nope")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(Contains(missing.err, "no such file or directory")) << missing.err;
}

TEST_F(SigmaCliTest, ValidateImportAndShowAcceptSigma) {
  testing::WriteFile(src_ + "/probe.yml", ProbeSigma());
  RunResult v = Cli({"rules", "validate", src_ + "/probe.yml"});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_TRUE(Contains(v.out, std::string("ok (") + kRuleId + ")")) << v.out;
  std::string windows = ProbeSigma();
  windows.replace(windows.find("product: linux"), 14, "product: windows");
  testing::WriteFile(src_ + "/windows.yml", windows);
  RunResult bad = Cli({"rules", "validate", src_ + "/windows.yml"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(Contains(bad.err, "windows.yml: logsource: product: windows")) << bad.err;

  RunResult imp = Cli({"rules", "import", src_ + "/probe.yml"});
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_EQ(ListDir(rules_dir_), (std::set<std::string>{std::string(kRuleId) + ".yaml"}));
  RunResult show = Cli({"rules", "show", kRuleId});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_TRUE(Contains(show.out, "author: Ada Example, Grace Example")) << show.out;
  EXPECT_TRUE(Contains(show.out, "sigma_id: 5E0B1C2D-3F4A-4B5C-8D6E-7F8091A2B3C4")) << show.out;
  EXPECT_TRUE(Contains(show.out, "https://example.org/probe")) << show.out;
  EXPECT_TRUE(Contains(show.out, "on: exec")) << show.out;
  RunResult js = Cli({"rules", "show", kRuleId, "--json"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  json j = json::parse(js.out);
  EXPECT_EQ(j["author"], "Ada Example, Grace Example");
  EXPECT_EQ(j["mitre"], json::array({"T1059.004"}));
  EXPECT_EQ(j["severity"], "high");
}

TEST_F(SigmaCliTest, AgentLoadsSigmaFromItsRulesDirAndTheAlertNamesTheAuthor) {
  testing::WriteFile(rules_dir_ + "/probe.yml", ProbeSigma());
  const std::string probe = sb_.File("sigma-probe");
  std::filesystem::copy_file("/bin/sleep", probe);
  ::chmod(probe.c_str(), 0755);
  Child matching({probe, "600"}, {});
  Child near_miss({probe, "6000"}, {});  // the re does not match
  ASSERT_TRUE(WaitFor([&] { return ReadProc(matching.pid()) && ReadProc(near_miss.pid()); },
                      std::chrono::seconds(10)));
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  RunResult agent = sb_.Agent({"--once", "--no-collector"}, Env());
  ASSERT_EQ(agent.exit_code, 0) << agent.err;
  const std::string mine = std::string("rule_id = '") + kRuleId + "'";
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM alerts WHERE " + mine).value_or(-1), 1)
      << agent.out << agent.err;
  RunResult list = Cli({"alerts", "list", "--json", "--rule", kRuleId});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json alerts = json::parse(list.out);
  ASSERT_EQ(alerts.size(), 1u) << list.out;
  RunResult show = Cli({"alerts", "show", std::to_string(alerts[0]["id"].get<int64_t>()), "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  json a = json::parse(show.out);
  EXPECT_EQ(a["raw_data"]["pid"], matching.pid()) << show.out;
  EXPECT_EQ(a["raw_data"]["sigma"]["author"], "Ada Example, Grace Example") << show.out;
  EXPECT_EQ(a["raw_data"]["sigma"]["id"], "5E0B1C2D-3F4A-4B5C-8D6E-7F8091A2B3C4") << show.out;
  EXPECT_EQ(a["title"], "Sigma probe running");
}

TEST_F(SigmaCliTest, QueryHasTheRe2RegexpAndNoOther) {
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  RunResult ok =
      Cli({"--json", "query", "SELECT regexp('a+t$', 'caat') AS m, 'wget -O x' REGEXP '\\s-O\\s' AS op"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  json rows = json::parse(ok.out);
  ASSERT_EQ(rows.size(), 1u) << ok.out;
  EXPECT_EQ(rows[0]["m"], 1);
  EXPECT_EQ(rows[0]["op"], 1);
  RunResult bad = Cli({"query", "SELECT regexp('(a)\\1', name) FROM processes"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(Contains(bad.err, "invalid pattern")) << bad.err;
}

}  // namespace
}  // namespace sentinel::itest
