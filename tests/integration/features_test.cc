// Build-time features through the real binaries (docs/building.md "Build features"), in every
// build: each binary's `--version` lists the features it was built with, `sentinelcli health`
// shows them, and a configuration or a command that needs a feature this build lacks is refused
// with exit 2, naming the feature's CMake option, before anything is written. Where the feature
// is built, the same configuration validates.
#include <sys/stat.h>

#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/base/features.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

// A configuration that needs one feature: as a file, and (for keys the harness sets in the
// environment) the environment that names it for the daemons.
struct FeatureConfig {
  std::string name;
  Feature feature;
  std::string yaml;
  std::vector<std::string> env;
};

// gtest names a case by it (not by the bytes of the struct).
void PrintTo(const FeatureConfig& c, std::ostream* os) {
  *os << c.name;
}

std::vector<FeatureConfig> FeatureConfigs() {
  const std::string key(64, 'a');
  return {
      {"EbpfRealtimeSource", Feature::kEbpf, "collection: {realtime_source: ebpf}\n", {}},
      {"WebhookSink",
       Feature::kWebhook,
       "alerting: {sinks: [{name: hook, type: webhook, url: \"http://127.0.0.1:9/x\"}]}\n",
       {}},
      {"EmailSink",
       Feature::kEmail,
       "alerting: {sinks: [{name: mail, type: email, smtp_url: \"smtp://127.0.0.1:9\", from: a@b.example, "
       "to: [c@d.example]}]}\n",
       {}},
      {"AuditSigningKey",
       Feature::kAuditSigning,
       "database: {audit_signing_key: /nonexistent/audit.key}\n",
       {}},
      {"HttpListen",
       Feature::kHttp,
       "telemetry: {http_listen: \"127.0.0.1:9\"}\n",
       {"SENTINELD_TELEMETRY__HTTP_LISTEN=127.0.0.1:9"}},
      {"ConsoleHttpListen", Feature::kHttp, "console: {http_listen: \"127.0.0.1:9\"}\n", {}},
      {"FleetServers", Feature::kFleet, "fleet: {servers: [\"nats://127.0.0.1:9\"]}\n", {}},
      {"FleetTrustedKeys", Feature::kFleet, "fleet: {trusted_keys: [\"" + key + "\"]}\n", {}},
      {"NatsSink",
       Feature::kFleet,
       "fleet: {servers: [\"nats://127.0.0.1:9\"]}\nalerting: {sinks: [{name: n, type: nats}]}\n",
       {}},
  };
}

class FeaturesTest : public ::testing::TestWithParam<FeatureConfig> {
 protected:
  std::vector<std::string> Env(std::vector<std::string> extra = {}) const {
    std::vector<std::string> env{"SENTINELD_DATABASE__PATH=" + sb_.File("events.db"),
                                 "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit.db"),
                                 "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]"};
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  }
  static void ExpectRefused(const RunResult& r, const FeatureConfig& c, const std::string& who) {
    const FeatureInfo& info = FeatureOf(c.feature);
    EXPECT_EQ(r.exit_code, 2) << who << ": " << r.err;
    EXPECT_NE(r.err.find("-D" + std::string(info.option) + "=ON"), std::string::npos) << who << ": " << r.err;
    EXPECT_NE(r.err.find("the " + std::string(info.name) + " feature is not in this build"),
              std::string::npos)
        << who << ": " << r.err;
  }
  Sandbox sb_;
};

TEST_P(FeaturesTest, ConfigNeedingAMissingFeatureIsRefusedByEveryBinary) {
  const FeatureConfig& c = GetParam();
  const std::string cfg = sb_.File("config.yaml");
  testing::WriteFile(cfg, c.yaml);
  RunResult validate = sb_.Cli({"config", "validate", cfg}, Env());
  if (Built(c.feature)) {
    EXPECT_EQ(validate.exit_code, 0) << validate.err;
    return;
  }
  ExpectRefused(validate, c, "sentinelcli config validate");
  ExpectRefused(sb_.Cli({"--config", cfg, "query", "SELECT 1"}, Env(c.env)), c, "sentinelcli query");
  ExpectRefused(sb_.Procmond({"--config", cfg, "--once"}, Env(c.env)), c, "procmond --once");
  ExpectRefused(sb_.Agent({"--config", cfg, "--once", "--no-collector"}, Env(c.env)), c,
                "sentinelagent --once");
  // Refused before anything was written.
  struct stat st {};
  EXPECT_NE(::stat(sb_.File("events.db").c_str(), &st), 0) << "the event store was created";
  EXPECT_NE(::stat(sb_.File("audit.db").c_str(), &st), 0) << "the audit ledger was created";
}

INSTANTIATE_TEST_SUITE_P(EveryFeature, FeaturesTest, ::testing::ValuesIn(FeatureConfigs()),
                         [](const ::testing::TestParamInfo<FeatureConfig>& p) { return p.param.name; });

class FeatureCommandsTest : public ::testing::Test {
 protected:
  std::vector<std::string> Env() const {
    return {"SENTINELD_DATABASE__PATH=" + sb_.File("events.db"),
            "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit.db"),
            "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]"};
  }
  Sandbox sb_;
};

TEST_F(FeatureCommandsTest, EveryBinaryListsItsFeaturesUnderItsVersion) {
  for (const std::string& bin : {ProcmondBin(), AgentBin(), CliBin()}) {
    RunResult r = testing::Run({bin, "--version"}, sb_.Env());
    EXPECT_EQ(r.exit_code, 0) << bin << ": " << r.err;
    EXPECT_NE(r.out.find("\n" + FeaturesLine() + "\n"), std::string::npos) << bin << ": " << r.out;
  }
}

TEST_F(FeatureCommandsTest, HealthShowsTheFeatures) {
  RunResult json = sb_.Cli({"--json", "health"}, Env());
  auto report = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << json.out << json.err;
  ASSERT_TRUE(report["features"].is_object()) << report.dump(2);
  for (const FeatureInfo& f : kFeatures) {
    EXPECT_EQ(report["features"].value(std::string(f.name), !f.built), f.built) << f.name;
  }
  RunResult table = sb_.Cli({"health"}, Env());
  EXPECT_NE(table.out.find(FeaturesLine()), std::string::npos) << table.out;
}

// A Sigma rule needs the sigma feature: `rules validate`, `import` and `convert` refuse it by name
// without it, and accept it with it.
TEST_F(FeatureCommandsTest, SigmaRulesNeedTheSigmaFeature) {
  const std::string rule = sb_.File("nc.yml");
  testing::WriteFile(rule,
                     "title: Netcat listener\nid: 7c1d0b4e-0000-4000-8000-000000000001\n"
                     "logsource: {product: linux, category: process_creation}\n"
                     "detection: {sel: {Image|endswith: /nc}, condition: sel}\nlevel: medium\n");
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"rules", "validate", rule}, {"rules", "convert", rule}, {"rules", "import", rule}}) {
    RunResult r = sb_.Cli(args, Env());
    if (Built(Feature::kSigma)) {
      EXPECT_EQ(r.exit_code, 0) << args[1] << ": " << r.err;
    } else {
      EXPECT_EQ(r.exit_code, 2) << args[1] << ": " << r.err;
      EXPECT_NE(r.err.find("-DSENTINEL_SIGMA=ON"), std::string::npos) << args[1] << ": " << r.err;
    }
  }
}

// A signed bundle needs the fleet feature (libsodium checks it); an audit key the audit-signing one.
TEST_F(FeatureCommandsTest, BundlesAndAuditKeysNeedTheirFeatures) {
  const std::string bundle = sb_.File("bundle.json");
  testing::WriteFile(bundle, R"({"v":1,"kind":"bundle","key":")" + std::string(64, 'a') +
                                 R"(","issued_at":1,"nonce":"n","payload":"{}","sig":"00"})");
  RunResult import = sb_.Cli({"rules", "import", bundle}, Env());
  EXPECT_EQ(import.exit_code, 2) << import.err;  // refused either way: no trusted key, or no fleet
  EXPECT_EQ(import.err.find("-DSENTINEL_FLEET=ON") != std::string::npos, !Built(Feature::kFleet))
      << import.err;

  RunResult keygen = sb_.Cli({"audit", "keygen", sb_.File("audit.key")}, Env());
  if (Built(Feature::kAuditSigning)) {
    EXPECT_EQ(keygen.exit_code, 0) << keygen.err;
  } else {
    EXPECT_EQ(keygen.exit_code, 2) << keygen.err;
    EXPECT_NE(keygen.err.find("-DSENTINEL_AUDIT_SIGNING=ON"), std::string::npos) << keygen.err;
    struct stat st {};
    EXPECT_NE(::stat(sb_.File("audit.key").c_str(), &st), 0) << "a key was written";
  }
}

}  // namespace
}  // namespace sentinel::itest
