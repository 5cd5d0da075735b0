// The fixture of the observability tests (observability_test.cc, with the HTTP endpoint, and
// health_cli_test.cc): a sandbox, the agent started in its own process group, `sentinelcli
// health` as JSON.
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace sentinel::itest {

inline std::string ComponentStatus(const nlohmann::json& report, const std::string& name) {
  return HealthComponent(report, name).value("status", "");
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = sb_.File("events.db");
    ::mkdir(sb_.File("rules.d").c_str(), 0755);  // readable by the agent's user
  }
  std::string SocketDir() const { return sb_.File("run"); }
  std::vector<std::string> Env(std::vector<std::string> extra = {}) const {
    std::vector<std::string> env{"SENTINELD_DATABASE__PATH=" + db_,
                                 "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit.db"),
                                 "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]",
                                 "SENTINELD_TELEMETRY__LOG_FORMAT=text",
                                 "SENTINELD_IPC__SOCKET_DIR=" + SocketDir(),
                                 "SENTINELD_COLLECTION__INTERVAL_SECS=2",
                                 "SENTINELD_DETECTION__INTERVAL_SECS=2"};
    env.insert(env.end(), extra.begin(), extra.end());
    return sb_.ProcmondEnv(env);
  }
  std::unique_ptr<Child> StartAgent(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> argv{AgentBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Child>(argv, Env(std::move(env)), sb_.File("agent.out"), sb_.File("agent.err"),
                                   /*new_group=*/true);
  }
  std::string AgentLog() const { return testing::ReadFile(sb_.File("agent.err")); }
  RunResult CliHealth(bool json) const {
    std::vector<std::string> args;
    if (json) args.push_back("--json");
    args.push_back("health");
    return testing::Run(
        [&] {
          std::vector<std::string> a{CliBin()};
          a.insert(a.end(), args.begin(), args.end());
          return a;
        }(),
        Env());
  }
  nlohmann::json CliHealthJson(int* exit_code) const {
    RunResult r = CliHealth(true);
    *exit_code = r.exit_code;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j;
  }

  Sandbox sb_;
  std::string db_;
};

}  // namespace sentinel::itest
