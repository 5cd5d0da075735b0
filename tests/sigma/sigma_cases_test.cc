// Sigma scenarios through real processes (SPEC §13, issue 18):
// - every process of testdata/sigma/cases.yaml is exec'd for real (its image
//   path, argv, parent, working directory, user, login uid), captured by
//   procmond's real-time source, and evaluated by the agent with the rules
//   `sentinelcli rules convert` made of the Sigma files: each `match` entry is
//   exactly one alert of its rule for its process, each `nomatch` entry none;
// - the harness itself, with a hand-written native `on: exec` rule that reads
//   every field a Sigma rule can (so it holds whatever the converter does).
// Needs root: mount namespaces, users, /proc/self/loginuid, BPF.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "tests/sigma/sigma_process_harness.h"

namespace sentinel::sigma_test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kCasesYaml = SIGMA_TESTDATA_DIR "/cases.yaml";

class SigmaScenarioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "privileged test: replaying a process needs a mount namespace, other users, "
                      "/proc/self/loginuid (CAP_AUDIT_CONTROL) and procmond's real-time source (BPF)";
    }
    pipeline_ = std::make_unique<DetectionPipeline>(sb_);
    scratch_ = sb_.File("ns-scratch");
    ASSERT_EQ(::mkdir(scratch_.c_str(), 0700), 0);
  }

  // The stored exec of each replayed process, checked against its scenario;
  // `labels` name each scenario in messages.
  std::vector<std::optional<ExecRow>> StoredExecs(const std::vector<ProcessScenario>& scenarios,
                                                  const std::vector<ReplayedProcess>& replayed,
                                                  const std::vector<std::string>& labels) {
    std::vector<std::optional<ExecRow>> rows;
    for (size_t i = 0; i < scenarios.size(); ++i) {
      rows.emplace_back();
      if (!replayed[i].error.empty()) continue;
      rows.back() = pipeline_->WaitForExec(replayed[i].pid, 30s);
      if (!rows.back()) {
        ADD_FAILURE() << labels[i] << ": no exec event for pid " << replayed[i].pid << "\n"
                      << pipeline_->Logs();
        continue;
      }
      EXPECT_EQ(CompareExec(*rows.back(), scenarios[i]), "")
          << labels[i] << ": the stored exec is not the scenario's process (pid " << replayed[i].pid << ")";
    }
    return rows;
  }

  static int64_t MaxId(const std::vector<std::optional<ExecRow>>& rows) {
    int64_t id = 0;
    for (const auto& r : rows) id = r ? std::max(id, r->id) : id;
    return id;
  }

  // Declared first: the users outlive the daemons that name them.
  ScenarioUsers users_;
  itest::Sandbox sb_;
  std::unique_ptr<DetectionPipeline> pipeline_;
  std::string scratch_;
};

// The scenarios of cases.yaml, through the real converter and the real agent.
TEST_F(SigmaScenarioTest, EveryCasesYamlProcessMatchesOrNotAsTheFileSays) {
  std::string error;
  const auto cases = LoadCases(kCasesYaml, &error);
  ASSERT_TRUE(cases.has_value()) << error;
  ASSERT_EQ(cases->size(), 45u) << "cases.yaml holds 45 processes (issue 18); " << kCasesYaml;

  std::set<std::string> rule_ids;
  std::map<std::string, std::string> converted;  // rule file -> why not, "" when converted
  for (const auto& c : *cases) {
    if (converted.count(c.rule_file)) continue;
    const auto r = pipeline_->Convert(c.rule_file);
    const std::string out_file = pipeline_->rules_dir() + "/" + c.rule_id + ".yaml";
    std::string why;
    if (r.exit_code != 0)
      why = "sentinelcli rules convert exited " + std::to_string(r.exit_code) + ": " + r.err;
    if (why.empty() && !testing::FileExists(out_file))
      why = "no " + out_file + " after conversion: " + r.out + r.err;
    converted[c.rule_file] = why;
    EXPECT_EQ(why, "") << "converting " << c.rule_file;
    if (why.empty()) rule_ids.insert(c.rule_id);
  }
  pipeline_->Start();
  if (HasFatalFailure()) return;

  std::vector<ProcessScenario> scenarios;
  std::vector<std::string> labels;
  for (const auto& c : *cases) {
    scenarios.push_back(c.process);
    labels.push_back(c.label + " (" + c.why + ")");
  }
  const std::string host_before = HostPathState(scenarios);
  const auto replayed = ReplayProcesses(scenarios, scratch_, users_, &error);
  ASSERT_TRUE(replayed.has_value()) << error;
  EXPECT_EQ(HostPathState(scenarios), host_before) << "the replay changed the host's files";
  for (size_t i = 0; i < cases->size(); ++i) {
    EXPECT_EQ((*replayed)[i].error, "") << labels[i] << ": the process could not be replayed";
    EXPECT_EQ((*replayed)[i].exit_code, 0) << labels[i] << ": the probe at the image path did not run";
  }
  const auto rows = StoredExecs(scenarios, *replayed, labels);
  const std::set<std::string> behind = pipeline_->WaitEvaluated(rule_ids, MaxId(rows), 60s);
  EXPECT_TRUE(behind.empty()) << behind.size() << " rule(s) never evaluated event " << MaxId(rows)
                              << " (rejected by the agent?)\n"
                              << pipeline_->Logs();

  for (size_t i = 0; i < cases->size(); ++i) {
    const SigmaCase& c = (*cases)[i];
    if (!rows[i]) continue;  // reported above
    std::string unchecked;
    if (!converted[c.rule_file].empty()) unchecked = "its rule was not converted: " + converted[c.rule_file];
    if (behind.count(c.rule_id)) unchecked = "the agent never evaluated its exec with " + c.rule_id;
    if (!unchecked.empty()) {
      ADD_FAILURE() << c.label << " cannot be checked: " << unchecked << "\n  why: " << c.why
                    << "\n  rule file: " << c.rule_file;
      continue;
    }
    const auto alerts = pipeline_->Alerts(c.rule_id, (*replayed)[i].pid, rows[i]->start_time);
    const int64_t want = c.must_match ? 1 : 0;
    EXPECT_TRUE(alerts.of_pid == want && alerts.of_process == want)
        << c.label << (c.must_match ? " must raise exactly one alert" : " must raise no alert") << " of "
        << c.rule_id << " (pid " << (*replayed)[i].pid << ", start_time " << rows[i]->start_time
        << "): alerts naming the pid " << alerts.of_pid << ", of the process " << alerts.of_process
        << "\n  why: " << c.why << "\n  rule file: " << c.rule_file << "\n  alerts of the rule:\n"
        << pipeline_->DescribeAlerts(c.rule_id);
  }
}

// The harness without the converter: a native rule that compares every
// field a Sigma rule reads (Image, CommandLine, ParentImage,
// ParentCommandLine, CurrentDirectory, User, LogonId) with one scenario whose
// image, parent image and working directory do not exist on the host, whose
// user the host lacks and whose image name holds a backslash. Its twin
// differs in the login uid only; a third process runs at an existing path.
TEST_F(SigmaScenarioTest, HarnessReplaysEveryFieldForANativeExecRule) {
  testing::WriteFile(pipeline_->rules_dir() + "/replay-check.yaml", R"(id: replay-check
name: Replayed scenario seen with every field
description: The harness's own check (tests/sigma/sigma_cases_test.cc).
severity: low
category: process
tags: [execution]
enabled: true
dedup_keys: [pid, start_time]
on: exec
query: |
  SELECT pid, ppid, name, exe_path, start_time, user_name, command_line,
         CASE WHEN id IS NULL THEN 'scan' ELSE 'event' END AS source
  FROM exec_events
  WHERE exe_path = '/tmp/sentinel-sigma-\x'
    AND command_text = 'x --flag=1 two  words'
    AND parent_exe_path = '/opt/sentinel-sigma-replay/bin/omiagent'
    AND parent_command_text = '-omiagent 9 10'
    AND cwd = '/srv/sentinel-sigma-replay/work dir'
    AND user_name = 'sentinel-sigma'
    AND login_uid = 4242
)");
  ProcessScenario hit;
  hit.image = "/tmp/sentinel-sigma-\\x";
  hit.argv = {"x", "--flag=1", "two ", "words"};  // "two  words": argv is not re-split
  hit.parent_image = "/opt/sentinel-sigma-replay/bin/omiagent";
  hit.parent_argv = *SplitCommandLine("-omiagent 9 10");
  hit.cwd = "/srv/sentinel-sigma-replay/work dir";
  hit.user = "sentinel-sigma";
  hit.login_uid = 4242;
  ProcessScenario twin = hit;
  twin.login_uid = 4243;
  ProcessScenario existing{"/usr/bin/true", {"true"}, "/usr/bin/bash", {"-bash"}, "/", "root", std::nullopt};
  const std::vector<ProcessScenario> scenarios{hit, twin, existing};
  const std::vector<std::string> labels{"hit", "twin (login uid 4243)", "existing paths"};

  pipeline_->Start();
  if (HasFatalFailure()) return;
  const std::string host_before = HostPathState(scenarios);
  std::string error;
  const auto replayed = ReplayProcesses(scenarios, scratch_, users_, &error);
  ASSERT_TRUE(replayed.has_value()) << error;
  EXPECT_EQ(HostPathState(scenarios), host_before) << "the replay changed the host's files";
  for (size_t i = 0; i < scenarios.size(); ++i) {
    ASSERT_EQ((*replayed)[i].error, "") << labels[i];
    EXPECT_EQ((*replayed)[i].exit_code, 0) << labels[i] << ": the probe at the image path did not run";
  }
  const auto rows = StoredExecs(scenarios, *replayed, labels);
  ASSERT_TRUE(pipeline_->WaitEvaluated({"replay-check"}, MaxId(rows), 60s).empty()) << pipeline_->Logs();
  for (size_t i = 0; i < scenarios.size(); ++i) {
    ASSERT_TRUE(rows[i].has_value()) << labels[i];
    const auto alerts = pipeline_->Alerts("replay-check", (*replayed)[i].pid, rows[i]->start_time);
    const int64_t want = i == 0 ? 1 : 0;
    EXPECT_TRUE(alerts.of_pid == want && alerts.of_process == want)
        << labels[i] << ": alerts naming the pid " << alerts.of_pid << ", of the process "
        << alerts.of_process << ", want " << want << "\n"
        << pipeline_->DescribeAlerts("replay-check");
  }
  EXPECT_EQ(
      std::find(users_.created().begin(), users_.created().end(), "sentinel-sigma") != users_.created().end(),
      true)
      << "the scenario's user was not created by the test";
}

TEST(SigmaScenarioSplit, ParentCommandLinesSplitOnlyWhenTheyJoinBack) {
  EXPECT_EQ(SplitCommandLine("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),
            (std::vector<std::string>{"sshd:", "/usr/sbin/sshd", "-D", "[listener]", "0", "of", "10-100",
                                      "startups"}));
  EXPECT_EQ(SplitCommandLine("-bash"), (std::vector<std::string>{"-bash"}));
  EXPECT_EQ(SplitCommandLine("a  b"), std::nullopt);
  EXPECT_EQ(SplitCommandLine(" a"), std::nullopt);
  EXPECT_EQ(SplitCommandLine("a "), std::nullopt);
  EXPECT_EQ(SplitCommandLine(""), std::nullopt);
}

}  // namespace
}  // namespace sentinel::sigma_test
