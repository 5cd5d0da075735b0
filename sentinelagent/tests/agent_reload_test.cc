// Agent::Reload (the SIGHUP path) on a real agent started in a child process
// (Start() blocks signals, sets up logging and, as root, drops to
// privileges.user for good: none of that may happen to the test process).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/testing/temp_dir.h"
#include "sentinelagent/agent.h"

namespace sentinel::agent {
namespace {

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Starts an agent on `config` in a child, rewrites the file to `reloaded`,
// calls Reload() and reports the running configuration as JSON.
nlohmann::json StartThenReload(const std::string& config, const std::string& reloaded,
                               const std::string& config_text) {
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(out[0]);
    // The user layer of the configuration is read from $HOME (as the dropped user).
    ::setenv("HOME", std::filesystem::path(config).parent_path().c_str(), 1);
    ::unsetenv("XDG_CONFIG_HOME");
    Agent agent({.config_file = config, .no_collector = true});
    if (auto rc = agent.Start()) _exit(10 + *rc);
    testing::WriteFile(config, reloaded);
    agent.Reload();
    const config::Config& c = agent.config();
    nlohmann::json sinks = nlohmann::json::array();
    for (const auto& s : c.alerting.sinks) sinks.push_back(s.name);
    const std::string j = nlohmann::json{
        {"database", c.database.path},
        {"scan_source", c.collection.scan_source},
        {"interval_secs", c.detection.interval_secs},
        {"sinks", sinks}}.dump();
    _exit(::write(out[1], j.data(), j.size()) == static_cast<ssize_t>(j.size()) ? 0 : 3);
  }
  ::close(out[1]);
  const std::string text = ReadAll(out[0]);
  ::close(out[0]);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status << " for\n"
                                                             << config_text;
  return text.empty() ? nlohmann::json() : nlohmann::json::parse(text, nullptr, false);
}

class AgentReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As root the agent drops to `nobody`, which must reach its files.
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  }

  // A configuration on the test's directories, with `rest` appended.
  std::string Config(const std::string& database, const std::string& rest) const {
    // Every path in the test's directory: the default audit ledger is the host's.
    return "database: {path: " + dir_.File(database) + ", audit_path: " + dir_.File("data/audit.db") +
           "}\nipc: {socket_dir: " + dir_.File("run") +
           "}\nprivileges: {user: nobody}\ntelemetry: {log_format: text, http_listen: \"\"}\n" + rest;
  }

  // The running configuration of both tests: 30 s cycles, the console sink.
  std::string Before() const {
    return Config("data/events.db",
                  "detection: {interval_secs: 30, builtin_rules: false, rules_dirs: []}\n"
                  "alerting: {sinks: [{name: console, type: stdout}]}\n");
  }

  nlohmann::json Reload(const std::string& after) {
    const std::string before = Before();
    const std::string file = dir_.File("config.yaml");
    testing::WriteFile(file, before);
    EXPECT_EQ(::chmod(file.c_str(), 0666), 0);
    return StartThenReload(file, after, before);
  }

  testing::TempDir dir_;
};

TEST_F(AgentReloadTest, RestartOnlyKeysKeepTheirRunningValuesTheRestApplies) {
  const nlohmann::json running =
      Reload(Config("data/other.db",
                    "collection: {scan_source: proc}\n"
                    "detection: {interval_secs: 45, builtin_rules: false, rules_dirs: []}\n"
                    "alerting: {sinks: [{name: disk, type: file, path: " +
                        dir_.File("data/alerts.jsonl") + "}]}\n"));
  ASSERT_TRUE(running.is_object()) << running;
  // Restart-only: the running values stay.
  EXPECT_EQ(running["database"], dir_.File("data/events.db"));
  EXPECT_EQ(running["scan_source"], config::Config().collection.scan_source);
  // Reloadable: applied now, the new sinks included.
  EXPECT_EQ(running["interval_secs"], 45);
  EXPECT_EQ(running["sinks"], nlohmann::json::array({"disk"}));
  EXPECT_FALSE(testing::FileExists(dir_.File("data/other.db")));
}

TEST_F(AgentReloadTest, SinksThatCannotBeBuiltKeepTheRunningSinksTheRestStillApplies) {
  // A syslog sink (in every build) whose max_message_bytes the schema lets through but the sink
  // refuses when it is built.
  const nlohmann::json running =
      Reload(Config("data/events.db",
                    "detection: {interval_secs: 45, builtin_rules: false, rules_dirs: []}\n"
                    "alerting: {sinks: [{name: s, type: syslog, address: \"udp://127.0.0.1:9\", "
                    "max_message_bytes: 100}]}\n"));
  ASSERT_TRUE(running.is_object()) << running;
  EXPECT_EQ(running["sinks"], nlohmann::json::array({"console"}));
  EXPECT_EQ(running["interval_secs"], 45);
}

}  // namespace
}  // namespace sentinel::agent
