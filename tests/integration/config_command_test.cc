// `sentinelcli config show | validate` (SPEC §3, §9): layering as a user
// sees it, and that what `show` prints is a configuration `validate` accepts.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;

json ShowJson(const Sandbox& sb, const std::vector<std::string>& args,
              const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = args;
  argv.insert(argv.end(), {"--json", "config", "show"});
  RunResult r = sb.Cli(argv, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(doc.is_object()) << r.out;
  return doc;
}

TEST(ConfigCommand, ShowJsonFollowsTheLayers) {
  Sandbox sb;
  // Nothing of the host leaks in: the built-in default. (The system file
  // cannot be redirected; a host that has one is told so, not failed.)
  json defaults = ShowJson(sb, {});
  ASSERT_TRUE(defaults.is_object());
  if (testing::FileExists("/etc/sentineld/config.yaml")) {
    std::printf("note: /etc/sentineld/config.yaml exists on this host; built-in defaults not checked\n");
  } else {
    EXPECT_EQ(defaults["database"]["path"], "/var/lib/sentineld/events.db");
    EXPECT_EQ(defaults["collection"]["interval_secs"], 30);
  }

  // The user file under XDG_CONFIG_HOME, then the environment, then the flag.
  ASSERT_EQ(::mkdir(sb.File("home/.config").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(sb.File("home/.config/sentineld").c_str(), 0700), 0);
  testing::WriteFile(sb.File("home/.config/sentineld/config.yaml"),
                     "database:\n  path: " + sb.File("user.db") + "\ncollection:\n  interval_secs: 11\n");
  json user = ShowJson(sb, {});
  EXPECT_EQ(user["database"]["path"], sb.File("user.db"));
  EXPECT_EQ(user["collection"]["interval_secs"], 11);

  const std::vector<std::string> env{"SENTINELD_DATABASE__PATH=" + sb.File("env.db")};
  json from_env = ShowJson(sb, {}, env);
  EXPECT_EQ(from_env["database"]["path"], sb.File("env.db"));
  EXPECT_EQ(from_env["collection"]["interval_secs"], 11) << "the environment replaced more than its key";

  json from_flag = ShowJson(sb, {"--database", sb.File("flag.db")}, env);
  EXPECT_EQ(from_flag["database"]["path"], sb.File("flag.db"));

  // Showing the configuration opens no store.
  for (const char* name : {"user.db", "env.db", "flag.db"})
    EXPECT_FALSE(testing::FileExists(sb.File(name))) << name;
}

TEST(ConfigCommand, ValidateGoodAndBadFiles) {
  Sandbox sb;
  const std::string good = sb.File("good.yaml");
  testing::WriteFile(good, "collection:\n  interval_secs: 5\ntelemetry:\n  log_format: text\n");
  RunResult ok = sb.Cli({"config", "validate", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, good + ": configuration is valid\n");

  const std::string bad = sb.File("bad.yaml");
  testing::WriteFile(bad, "collection:\n  interval_secs: fast\n");
  RunResult ko = sb.Cli({"config", "validate", bad});
  EXPECT_EQ(ko.exit_code, 2);
  EXPECT_EQ(ko.err, "sentinelcli: " + bad +
                        ": collection.interval_secs: expected a positive integer, got \"fast\"\n");
  EXPECT_EQ(ko.out, "");

  const std::string broken = sb.File("broken.yaml");
  testing::WriteFile(broken, "collection: {interval_secs: 5\n");
  RunResult syntax = sb.Cli({"config", "validate", broken});
  EXPECT_EQ(syntax.exit_code, 2);
  EXPECT_TRUE(Contains(syntax.err, broken) && Contains(syntax.err, "line")) << syntax.err;

  RunResult missing = sb.Cli({"config", "validate", sb.File("missing.yaml")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(Contains(missing.err, sb.File("missing.yaml"))) << missing.err;
}

TEST(ConfigCommand, ShownYamlValidatesAndLoadsBackTheSame) {
  Sandbox sb;
  const std::string cfg = sb.File("in.yaml");
  testing::WriteFile(cfg, "database:\n  path: '" + sb.File("weird: path #1.db") +
                              "'\n"
                              "collection:\n  interval_secs: 7\n  hash_executables: false\n"
                              "detection:\n  rules_dirs: ['" +
                              sb.File("rules a") + "', '" + sb.File("rules \"b\"") +
                              "']\n"
                              "telemetry:\n  http_listen: \"\"\n");
  // Environment values are YAML scalars too (config.h).
  const std::vector<std::string> env{"SENTINELD_DATABASE__RETENTION_DAYS=9"};
  RunResult shown = sb.Cli({"--config", cfg, "config", "show"}, env);
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_TRUE(Contains(shown.out, "interval_secs: 7")) << shown.out;
  const std::string written = sb.File("out.yaml");
  testing::WriteFile(written, shown.out);

  RunResult valid = sb.Cli({"config", "validate", written});
  EXPECT_EQ(valid.exit_code, 0) << valid.err << "\n--- shown:\n" << shown.out;

  json original = ShowJson(sb, {"--config", cfg}, env);
  json reloaded = ShowJson(sb, {"--config", written});
  EXPECT_EQ(reloaded, original) << "shown YAML loads back differently:\n" << shown.out;
  EXPECT_EQ(reloaded["database"]["path"], sb.File("weird: path #1.db"));
  EXPECT_EQ(reloaded["database"]["retention_days"], 9);
  EXPECT_EQ(reloaded["collection"]["hash_executables"], false);
  EXPECT_EQ(reloaded["detection"]["rules_dirs"][1], sb.File("rules \"b\""));
}

}  // namespace
}  // namespace sentinel::itest
