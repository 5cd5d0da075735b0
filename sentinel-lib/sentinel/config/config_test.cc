#include "sentinel/config/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "sentinel/base/strings.h"
#include "sentinel/config/internal/checks.h"

namespace sentinel::config {
namespace {

// The schema's tests run in every build: the loader is told every feature is built (the
// feature checks are FeatureChecksTest's).
bool AllBuilt(Feature) {
  return true;
}

LoadOptions SchemaOptions() {
  LoadOptions options;
  options.feature_built = &AllBuilt;
  return options;
}

Result<LoadedConfig> ValidateSchema(const std::string& path) {
  LoadOptions options = SchemaOptions();
  options.explicit_file = path;
  return Load(options);
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sentinel_config_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) chmod(entry.path().c_str(), 0600);
    std::filesystem::remove_all(dir_);
  }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // Loads `yaml` as the --config file.
  Result<LoadedConfig> LoadYaml(const std::string& yaml, const std::string& name = "config.yaml") {
    LoadOptions options = SchemaOptions();
    options.explicit_file = Write(name, yaml);
    return Load(options);
  }

  // The one-line InvalidArgument message that loading `options` fails with.
  static std::string ErrorOf(const LoadOptions& options) {
    Result<LoadedConfig> r = Load(options);
    if (r.ok()) return "<loaded without error>";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
    return r.status().message();
  }
  std::string ErrorOfYaml(const std::string& yaml) {
    LoadOptions options = SchemaOptions();
    options.explicit_file = Write("config.yaml", yaml);
    return ErrorOf(options);
  }
  std::string FilePrefix() const { return dir_ + "/config.yaml: "; }

  std::string dir_;
};

TEST_F(ConfigTest, DefaultsMatchSpec) {
  Result<LoadedConfig> r = Load(SchemaOptions());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = r->config;
  EXPECT_EQ(r->sources, std::vector<std::string>{"built-in defaults"});
  EXPECT_EQ(c.database.path, "/var/lib/sentineld/events.db");
  EXPECT_EQ(c.database.audit_path, "/var/lib/sentineld/audit.db");
  EXPECT_EQ(c.database.retention_days, 30);
  EXPECT_EQ(c.database.alert_retention_days, 365);
  EXPECT_EQ(c.collection.interval_secs, 30);
  EXPECT_TRUE(c.collection.hash_executables);
  EXPECT_TRUE(c.collection.realtime_events);
  EXPECT_EQ(c.collection.max_hash_bytes, 268435456);
  EXPECT_EQ(c.privileges.user, "sentineld");
  EXPECT_EQ(c.privileges.keep_capabilities,
            (std::vector<std::string>{"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}));
  EXPECT_EQ(c.detection.interval_secs, 30);
  EXPECT_EQ(c.detection.rules_dirs, std::vector<std::string>{"/etc/sentineld/rules.d"});
  EXPECT_EQ(c.detection.rule_timeout_secs, 30);
  EXPECT_TRUE(c.detection.builtin_rules);
  EXPECT_EQ(c.detection.realtime_batch_ms, 250);
  EXPECT_EQ(c.alerting.dedup_window_secs, 3600);
  EXPECT_EQ(c.alerting.retry.max_attempts, 3);
  EXPECT_EQ(c.alerting.retry.initial_backoff_ms, 1000);
  EXPECT_EQ(c.alerting.retry.max_backoff_ms, 60000);
  EXPECT_EQ(c.alerting.circuit_breaker.failure_threshold, 5);
  EXPECT_EQ(c.alerting.circuit_breaker.open_secs, 60);
  ASSERT_EQ(c.alerting.sinks.size(), 1u);
  EXPECT_EQ(c.alerting.sinks[0].name, "console");
  EXPECT_EQ(c.alerting.sinks[0].type, "stdout");
  EXPECT_EQ(c.alerting.sinks[0].format, "text");
  EXPECT_EQ(c.telemetry.log_level, "info");
  EXPECT_EQ(c.telemetry.log_format, "json");
  EXPECT_EQ(c.telemetry.summary_interval_secs, 60);
  // Without the HTTP endpoint (SENTINEL_HTTP=OFF) the default is "": no default needs a feature.
  EXPECT_EQ(c.telemetry.http_listen, Built(Feature::kHttp) ? "127.0.0.1:9464" : "");
  EXPECT_TRUE(c.telemetry.web_ui);
  EXPECT_EQ(c.ipc.socket_dir, "/run/sentineld");
  EXPECT_EQ(r->hash, Hash(Config{}));
}

TEST_F(ConfigTest, SpecExampleFileLoads) {
  // The example of SPEC §3, sinks included (with real values for the elided ones).
  Result<LoadedConfig> r = LoadYaml(R"(
database:
  path: /var/lib/sentineld/events.db
  audit_path: /var/lib/sentineld/audit.db
  retention_days: 30
  alert_retention_days: 365
collection: {interval_secs: 30, hash_executables: true, realtime_events: true, max_hash_bytes: 268435456}
privileges:
  user: sentineld
  keep_capabilities: [CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH]
detection: {interval_secs: 30, rules_dirs: [/etc/sentineld/rules.d], rule_timeout_secs: 30}
alerting:
  dedup_window_secs: 3600
  retry: {max_attempts: 3, initial_backoff_ms: 1000, max_backoff_ms: 60000}
  circuit_breaker: {failure_threshold: 5, open_secs: 60}
  sinks:
    - {name: console, type: stdout, format: text}
    - {name: local, type: file, path: /var/log/sentineld/alerts.jsonl}
    - {name: siem, type: syslog, address: "udp://127.0.0.1:514", facility: auth}
    - {name: soar, type: webhook, url: "https://soar.example/hook", headers: {}, timeout_ms: 5000,
       min_severity: medium}
    - {name: oncall, type: email, smtp_url: "smtp://127.0.0.1:25", from: "sentineld@example.org",
       to: ["soc@example.org"], min_severity: high}
telemetry: {log_level: info, log_format: json, http_listen: "127.0.0.1:9464"}
ipc: {socket_dir: /run/sentineld}
)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->config.alerting.sinks.size(), 5u);
  EXPECT_EQ(r->config.alerting.sinks[1].format, "json");  // a file sink writes JSON lines
  EXPECT_EQ(r->config.alerting.sinks[3].min_severity, "medium");
  EXPECT_EQ(r->config.alerting.sinks[4].to, std::vector<std::string>{"soc@example.org"});
}

TEST_F(ConfigTest, FilesLayerLaterWinsListsReplacedSectionsMerged) {
  std::string first = Write("first.yaml", R"(
database: {path: /first/events.db, retention_days: 10}
detection: {rules_dirs: [/a, /b]}
alerting:
  retry: {initial_backoff_ms: 500}
  sinks:
    - {name: hook, type: webhook, url: "http://x/", headers: {X-A: "1", X-B: "2"}}
)");
  std::string second = Write("second.yaml", R"(
database: {retention_days: 20}
detection: {rules_dirs: [/c]}
alerting:
  retry: {max_attempts: 7}
)");
  LoadOptions options = SchemaOptions();
  options.optional_files = {first, dir_ + "/missing.yaml", second};
  Result<LoadedConfig> r = Load(options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = r->config;
  EXPECT_EQ(c.database.retention_days, 20);                           // later wins
  EXPECT_EQ(c.database.path, "/first/events.db");                     // section merged key by key
  EXPECT_EQ(c.detection.rules_dirs, std::vector<std::string>{"/c"});  // list replaced whole
  EXPECT_EQ(c.alerting.retry.initial_backoff_ms, 500);                // nested section merged
  EXPECT_EQ(c.alerting.retry.max_attempts, 7);
  ASSERT_EQ(c.alerting.sinks.size(), 1u);
  EXPECT_EQ(c.alerting.sinks[0].headers, (std::map<std::string, std::string>{{"X-A", "1"}, {"X-B", "2"}}));
  EXPECT_EQ(r->sources, (std::vector<std::string>{"built-in defaults", first, second}));

  // The explicit file comes after the optional ones.
  options.explicit_file = Write("explicit.yaml", "database: {retention_days: 40}\n");
  r = Load(options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.database.retention_days, 40);
  EXPECT_EQ(r->sources.back(), *options.explicit_file);
}

TEST_F(ConfigTest, EnvironmentOverridesFiles) {
  LoadOptions options = SchemaOptions();
  options.optional_files = {Write("c.yaml", "collection: {interval_secs: 10}\ndatabase: {path: /file.db}\n")};
  options.environment = {
      "PATH=/usr/bin",
      "SENTINELD_COLLECTION__INTERVAL_SECS=5",
      "SENTINELD_ALERTING__RETRY__MAX_ATTEMPTS=9",
      "SENTINELD_DETECTION__RULES_DIRS=[/a, /b]",
      "SENTINELD_COLLECTION__HASH_EXECUTABLES=no",
      "SENTINELD_TELEMETRY__HTTP_LISTEN=",
      "SENTINELD_SUPERVISOR_PID=1234",  // the product's own variables, not configuration keys
      "SENTINELD_SKIP_SETUP=1",
  };
  Result<LoadedConfig> r = Load(options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = r->config;
  EXPECT_EQ(c.collection.interval_secs, 5);
  EXPECT_FALSE(c.collection.hash_executables);
  EXPECT_EQ(c.alerting.retry.max_attempts, 9);
  EXPECT_EQ(c.alerting.retry.initial_backoff_ms, 1000);
  EXPECT_EQ(c.detection.rules_dirs, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(c.telemetry.http_listen, "");  // an empty value is the empty string
  EXPECT_EQ(c.database.path, "/file.db");
  EXPECT_EQ(r->sources, (std::vector<std::string>{"built-in defaults", options.optional_files[0],
                                                  "environment SENTINELD_ALERTING__RETRY__MAX_ATTEMPTS",
                                                  "environment SENTINELD_COLLECTION__HASH_EXECUTABLES",
                                                  "environment SENTINELD_COLLECTION__INTERVAL_SECS",
                                                  "environment SENTINELD_DETECTION__RULES_DIRS",
                                                  "environment SENTINELD_TELEMETRY__HTTP_LISTEN"}));
}

TEST_F(ConfigTest, WholeSectionFromEnvironmentThenDeeperVariable) {
  LoadOptions options = SchemaOptions();
  options.environment = {"SENTINELD_ALERTING__RETRY__MAX_ATTEMPTS=4",
                         "SENTINELD_ALERTING__RETRY={max_attempts: 2, max_backoff_ms: 9000}"};
  Result<LoadedConfig> r = Load(options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.alerting.retry.max_attempts, 4);  // the deeper variable is applied after
  EXPECT_EQ(r->config.alerting.retry.max_backoff_ms, 9000);
}

TEST_F(ConfigTest, OverridesBeatEnvironment) {
  LoadOptions options = SchemaOptions();
  options.environment = {"SENTINELD_DATABASE__PATH=/env.db", "SENTINELD_COLLECTION__INTERVAL_SECS=5"};
  options.overrides = {{"database.path", "/cli.db"},
                       {"alerting.sinks", "[{name: out, type: stdout, format: json}]"}};
  Result<LoadedConfig> r = Load(options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.database.path, "/cli.db");
  EXPECT_EQ(r->config.collection.interval_secs, 5);
  ASSERT_EQ(r->config.alerting.sinks.size(), 1u);
  EXPECT_EQ(r->config.alerting.sinks[0].format, "json");
  EXPECT_EQ(r->sources.back(), "command line alerting.sinks");
  EXPECT_EQ(r->sources[r->sources.size() - 2], "command line database.path");
}

TEST_F(ConfigTest, EmptyAndCommentOnlyFilesAreEmptyLayers) {
  for (const std::string& text : {std::string(""), std::string("# nothing here\n\n# at all\n"),
                                  std::string("---\n"), std::string("alerting:\n  # retry: {}\n")}) {
    Result<LoadedConfig> r = LoadYaml(text);
    ASSERT_TRUE(r.ok()) << "for " << testing::PrintToString(text) << ": " << r.status().ToString();
    EXPECT_EQ(r->config, Config{});
    EXPECT_EQ(r->sources.size(), 2u);
  }
}

TEST_F(ConfigTest, MalformedYamlNamesFileAndLine) {
  std::string msg = ErrorOfYaml("database:\n  path: [unclosed\n  retention_days: 3\n");
  EXPECT_TRUE(msg.starts_with(FilePrefix() + "line ")) << msg;
  EXPECT_NE(msg.find(", column "), std::string::npos) << msg;

  msg = ErrorOfYaml("a: 1\n---\nb: 2\n");
  EXPECT_EQ(msg, FilePrefix() + "expected one YAML document, found 2");
}

TEST_F(ConfigTest, StreamsTheYamlParserStallsOnAreRefusedWithTheirLine) {
  // Found by fuzz/config_fuzz: for these, yaml-cpp 0.7's LoadAll() returned empty documents
  // forever, allocating until memory ran out (jbeder/yaml-cpp#1040); Load() never returned.
  EXPECT_EQ(ErrorOfYaml(","),
            FilePrefix() + "line 1, column 1: not valid YAML (the parser read no document there)");
  EXPECT_EQ(ErrorOfYaml(", u\n\x17"
                        "deton:\n  int u"),
            FilePrefix() + "line 1, column 1: not valid YAML (the parser read no document there)");
  EXPECT_EQ(ErrorOfYaml("a: 1\n---\n,\n"),
            FilePrefix() + "line 3, column 1: not valid YAML (the parser read no document there)");
}

TEST_F(ConfigTest, WrongTypeMessageIsTheSpecsOne) {
  EXPECT_EQ(ErrorOfYaml("collection:\n  interval_secs: fast\n"),
            FilePrefix() + "collection.interval_secs: expected a positive integer, got \"fast\"");

  LoadOptions env = SchemaOptions();
  env.environment = {"SENTINELD_COLLECTION__INTERVAL_SECS=fast"};
  EXPECT_EQ(ErrorOf(env),
            "environment SENTINELD_COLLECTION__INTERVAL_SECS: collection.interval_secs: "
            "expected a positive integer, got \"fast\"");

  LoadOptions cli = SchemaOptions();
  cli.overrides = {{"database.path", ""}};
  EXPECT_EQ(ErrorOf(cli), "command line: database.path: expected a non-empty path, got \"\"");
}

TEST_F(ConfigTest, WrongTypesRefused) {
  EXPECT_EQ(ErrorOfYaml("collection: {interval_secs: 1.5}"),
            FilePrefix() + "collection.interval_secs: expected a positive integer, got 1.5");
  EXPECT_EQ(ErrorOfYaml("collection: {interval_secs: 5s}"),
            FilePrefix() + "collection.interval_secs: expected a positive integer, got \"5s\"");
  EXPECT_EQ(ErrorOfYaml("collection: {interval_secs: \"5\"}"),
            FilePrefix() + "collection.interval_secs: expected a positive integer, got \"5\"");
  EXPECT_EQ(ErrorOfYaml("collection: {interval_secs: }"),
            FilePrefix() + "collection.interval_secs: expected a positive integer, got null");
  EXPECT_EQ(ErrorOfYaml("collection: {hash_executables: maybe}"),
            FilePrefix() + "collection.hash_executables: expected true or false, got \"maybe\"");
  EXPECT_EQ(ErrorOfYaml("detection: {rules_dirs: /etc/rules}"),
            FilePrefix() + "detection.rules_dirs: expected a list of paths, got \"/etc/rules\"");
  EXPECT_EQ(ErrorOfYaml("detection: {rules_dirs: [/a, [/b]]}"),
            FilePrefix() + "detection.rules_dirs[1]: expected a non-empty path, got a list");
  EXPECT_EQ(ErrorOfYaml("database: /tmp"), FilePrefix() + "database: expected a mapping, got \"/tmp\"");
  EXPECT_EQ(ErrorOfYaml("database: {path: [a]}"),
            FilePrefix() + "database.path: expected a non-empty path, got a list");
}

TEST_F(ConfigTest, BooleansAcceptYamlWords) {
  Result<LoadedConfig> r = LoadYaml(
      "collection: {hash_executables: no, realtime_events: yes}\n"
      "detection: {builtin_rules: False}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->config.collection.hash_executables);
  EXPECT_TRUE(r->config.collection.realtime_events);
  EXPECT_FALSE(r->config.detection.builtin_rules);
}

TEST_F(ConfigTest, UnknownKeysRefusedAtEveryLevel) {
  EXPECT_EQ(ErrorOfYaml("colection: {}\n"),
            FilePrefix() +
                "colection: unknown key (known keys: database, collection, privileges, detection, "
                "alerting, telemetry, ipc, fleet, console)");
  EXPECT_EQ(ErrorOfYaml("collection: {intervl_secs: 5}\n"),
            FilePrefix() +
                "collection.intervl_secs: unknown key (known keys: interval_secs, hash_executables, "
                "realtime_events, realtime_source, scan_source, max_hash_bytes)");
  EXPECT_EQ(ErrorOfYaml("alerting: {retry: {attempts: 5}}\n"),
            FilePrefix() +
                "alerting.retry.attempts: unknown key (known keys: max_attempts, initial_backoff_ms, "
                "max_backoff_ms)");
  EXPECT_EQ(ErrorOfYaml("alerting: {circuit_breaker: {threshold: 5}}\n"),
            FilePrefix() +
                "alerting.circuit_breaker.threshold: unknown key (known keys: failure_threshold, "
                "open_secs)");
  EXPECT_EQ(ErrorOfYaml("alerting: {sinks: [{name: a, type: stdout, colour: red}]}\n"),
            FilePrefix() +
                "alerting.sinks[0].colour: unknown key (known keys of stdout sinks: name, type, "
                "min_severity, enabled, format)");
  EXPECT_EQ(ErrorOfYaml("collection: {interval_secs: 5, interval_secs: 6}\n"),
            FilePrefix() + "collection.interval_secs: duplicate key");
}

TEST_F(ConfigTest, OutOfRangeRefused) {
  EXPECT_EQ(ErrorOfYaml("detection: {realtime_batch_ms: 5}"),
            FilePrefix() + "detection.realtime_batch_ms: expected an integer from 10 to 10000, got 5");
  EXPECT_EQ(ErrorOfYaml("detection: {realtime_batch_ms: 10001}"),
            FilePrefix() + "detection.realtime_batch_ms: expected an integer from 10 to 10000, got 10001");
  EXPECT_EQ(ErrorOfYaml("collection: {interval_secs: 0}"),
            FilePrefix() + "collection.interval_secs: expected an integer from 1 to 86400, got 0");
  EXPECT_EQ(ErrorOfYaml("collection: {interval_secs: 86401}"),
            FilePrefix() + "collection.interval_secs: expected an integer from 1 to 86400, got 86401");
  EXPECT_EQ(ErrorOfYaml("collection: {max_hash_bytes: -1}"),
            FilePrefix() + "collection.max_hash_bytes: expected a non-negative integer, got -1");
  EXPECT_EQ(ErrorOfYaml("database: {retention_days: 0}"),
            FilePrefix() + "database.retention_days: expected an integer from 1 to 36500, got 0");
  EXPECT_EQ(ErrorOfYaml("alerting: {retry: {max_attempts: 500}}"),
            FilePrefix() + "alerting.retry.max_attempts: expected an integer from 1 to 100, got 500");
  EXPECT_EQ(ErrorOfYaml("telemetry: {summary_interval_secs: -1}"),
            FilePrefix() + "telemetry.summary_interval_secs: expected an integer from 0 to 86400, got -1");
  EXPECT_EQ(ErrorOfYaml("telemetry: {http_listen: \"127.0.0.1:70000\"}"),
            FilePrefix() +
                "telemetry.http_listen: expected \"\" or host:port with port 1..65535, got "
                "\"127.0.0.1:70000\"");
  const std::string keepable =
      "expected CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH (the only capabilities procmond may keep after "
      "dropping root), got ";
  EXPECT_EQ(ErrorOfYaml("privileges: {keep_capabilities: [CAP_SYS_PTRACE, CAP_WIZARDRY]}"),
            FilePrefix() + "privileges.keep_capabilities[1]: " + keepable + "\"CAP_WIZARDRY\"");
  const std::string service_user =
      "expected an unprivileged user name, not root ([A-Za-z_][A-Za-z0-9_.-]*, at most 32 characters), got ";
  EXPECT_EQ(ErrorOfYaml("privileges: {user: \"\"}"),
            FilePrefix() + "privileges.user: " + service_user + "\"\"");
}

// Issue 14 item 8: a collector that keeps more than it needs, or daemons that
// never leave root, are configuration errors, not settings.
TEST_F(ConfigTest, PrivilegesThatKeepRootRefused) {
  const std::string keepable =
      "expected CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH (the only capabilities procmond may keep after "
      "dropping root), got ";
  EXPECT_EQ(ErrorOfYaml("privileges: {keep_capabilities: [CAP_SYS_ADMIN]}"),
            FilePrefix() + "privileges.keep_capabilities[0]: " + keepable + "\"CAP_SYS_ADMIN\"");
  for (const char* cap : {"CAP_SETUID", "CAP_DAC_OVERRIDE", "CAP_CHOWN", "CAP_BPF", "CAP_NET_ADMIN"}) {
    EXPECT_EQ(ErrorOfYaml(std::string("privileges: {keep_capabilities: [CAP_DAC_READ_SEARCH, ") + cap + "]}"),
              FilePrefix() + "privileges.keep_capabilities[1]: " + keepable + "\"" + cap + "\"");
  }
  EXPECT_EQ(ErrorOfYaml("privileges: {user: root}"),
            FilePrefix() +
                "privileges.user: expected an unprivileged user name, not root ([A-Za-z_][A-Za-z0-9_.-]*, "
                "at most 32 characters), got \"root\"");
  // The environment layer is checked the same way.
  LoadOptions env = SchemaOptions();
  env.environment = {"SENTINELD_PRIVILEGES__USER=root"};
  EXPECT_EQ(
      ErrorOf(env),
      "environment SENTINELD_PRIVILEGES__USER: privileges.user: expected an unprivileged user name, not "
      "root ([A-Za-z_][A-Za-z0-9_.-]*, at most 32 characters), got \"root\"");
  // What procmond may keep is still accepted, and so is keeping nothing.
  auto kept =
      LoadYaml("privileges: {user: nobody, keep_capabilities: [CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE]}");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  auto none = LoadYaml("privileges: {keep_capabilities: []}");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->config.privileges.keep_capabilities.empty());
  EXPECT_EQ(ErrorOfYaml("database: {path: \"\"}"),
            FilePrefix() + "database.path: expected a non-empty path, got \"\"");
}

TEST_F(ConfigTest, BadEnumRefused) {
  EXPECT_EQ(ErrorOfYaml("telemetry: {log_format: xml}"),
            FilePrefix() + "telemetry.log_format: expected one of json, text, got \"xml\"");
  EXPECT_EQ(ErrorOfYaml("telemetry: {log_level: verbose}"),
            FilePrefix() +
                "telemetry.log_level: expected one of trace, debug, info, warn, error, critical, off, "
                "got \"verbose\"");
}

TEST_F(ConfigTest, CrossKeyRulesBlameTheLaterLayer) {
  EXPECT_EQ(ErrorOfYaml("alerting: {retry: {initial_backoff_ms: 120000}}"),
            FilePrefix() +
                "alerting.retry.initial_backoff_ms: expected at most alerting.retry.max_backoff_ms "
                "(60000), got 120000");
  LoadOptions options = SchemaOptions();
  options.explicit_file = Write("config.yaml", "alerting: {retry: {initial_backoff_ms: 5000}}\n");
  options.environment = {"SENTINELD_ALERTING__RETRY__MAX_BACKOFF_MS=100"};
  EXPECT_EQ(ErrorOf(options),
            "environment SENTINELD_ALERTING__RETRY__MAX_BACKOFF_MS: "
            "alerting.retry.max_backoff_ms: expected at least "
            "alerting.retry.initial_backoff_ms (5000), got 100");
  EXPECT_EQ(ErrorOfYaml("database: {audit_path: /var/lib/sentineld/events.db}"),
            FilePrefix() +
                "database.audit_path: expected a different file from database.path, got "
                "\"/var/lib/sentineld/events.db\"");
}

TEST_F(ConfigTest, BadSinksRefused) {
  auto sinks = [this](const std::string& list) { return ErrorOfYaml("alerting:\n  sinks: " + list + "\n"); };
  EXPECT_EQ(sinks("[{name: hook, type: webhook}]"),
            FilePrefix() + "alerting.sinks[0].url: required for a webhook sink");
  EXPECT_EQ(sinks("[{name: a, type: stdout}, {name: p, type: pager}]"),
            FilePrefix() +
                "alerting.sinks[1].type: expected one of stdout, file, syslog, webhook, email, nats, got "
                "\"pager\"");
  EXPECT_EQ(sinks("[{name: a, type: stdout}, {name: a, type: stdout}]"),
            FilePrefix() + "alerting.sinks[1].name: duplicate sink name \"a\" (also alerting.sinks[0])");
  EXPECT_EQ(sinks("[{name: a, type: stdout}, {name: f, type: file, path: /x, url: \"http://h/\"}]"),
            FilePrefix() +
                "alerting.sinks[1].url: not valid for a file sink (valid keys: name, type, "
                "min_severity, enabled, format, path, fsync, rotate_bytes, rotate_keep)");
  EXPECT_EQ(sinks("[{name: s, type: syslog, address: \"udp://127.0.0.1\"}]"),
            FilePrefix() +
                "alerting.sinks[0].address: expected udp://host:port, tcp://host:port or "
                "unix:///absolute/path, got \"udp://127.0.0.1\"");
  EXPECT_EQ(sinks("[{name: s, type: syslog, address: \"unix://dev/log\"}]"),
            FilePrefix() +
                "alerting.sinks[0].address: expected udp://host:port, tcp://host:port or "
                "unix:///absolute/path, got \"unix://dev/log\"");
  EXPECT_EQ(sinks("[{name: w, type: webhook, url: \"ftp://h/\"}]"),
            FilePrefix() +
                "alerting.sinks[0].url: expected an http:// or https:// URL with a host, got \"ftp://h/\"");
  EXPECT_EQ(
      sinks("[{name: m, type: email, smtp_url: \"smtp://h\", from: a@b, to: []}]"),
      FilePrefix() + "alerting.sinks[0].to: expected a non-empty list of email addresses, got an empty list");
  EXPECT_EQ(sinks("[{name: m, type: email, smtp_url: \"http://h\", from: a@b, to: [c@d]}]"),
            FilePrefix() +
                "alerting.sinks[0].smtp_url: expected an smtp:// or smtps:// URL with a host, got "
                "\"http://h\"");
  // Issue 14: a URL may carry credentials; a refused one is never echoed in full.
  EXPECT_EQ(sinks("[{name: w, type: webhook, url: \"ftp://u:PASSWORD@h/x?token=SECRET\"}]"),
            FilePrefix() +
                "alerting.sinks[0].url: expected an http:// or https:// URL with a host, got "
                "\"ftp://h/\xE2\x80\xA6\"");
  EXPECT_EQ(sinks("[{name: m, type: email, smtp_url: \"http://u:PASSWORD@h\", from: a@b, to: [c@d]}]"),
            FilePrefix() +
                "alerting.sinks[0].smtp_url: expected an smtp:// or smtps:// URL with a host, got "
                "\"http://h/\xE2\x80\xA6\"");
  EXPECT_EQ(sinks("[{type: stdout}]"),
            FilePrefix() + "alerting.sinks[0].name: required: every sink needs a unique name");
  EXPECT_EQ(sinks("[{name: x}]"), FilePrefix() +
                                      "alerting.sinks[0].type: required: expected one of stdout, file, "
                                      "syslog, webhook, email, nats");
  EXPECT_EQ(
      sinks("[{name: \"bad name\", type: stdout}]"),
      FilePrefix() + "alerting.sinks[0].name: expected a sink name of [a-zA-Z0-9_.-]+, got \"bad name\"");
  EXPECT_EQ(sinks("[{name: f, type: file, format: text, path: /x}]"),
            FilePrefix() + "alerting.sinks[0].format: expected one of json, ocsf, got \"text\"");
  EXPECT_EQ(sinks("[{name: s, type: stdout, min_severity: urgent}]"),
            FilePrefix() +
                "alerting.sinks[0].min_severity: expected one of \"\", low, medium, high, critical, got "
                "\"urgent\"");
  EXPECT_EQ(sinks("[{name: w, type: webhook, url: \"https://h/\", headers: {\"X Bad\": v}}]"),
            FilePrefix() + "alerting.sinks[0].headers: expected an HTTP header name, got \"X Bad\"");
  EXPECT_EQ(sinks("[{name: w, type: webhook, url: \"https://h/\", headers: {X-Evil: \"a\\r\\nHost: b\"}}]"),
            FilePrefix() +
                "alerting.sinks[0].headers.X-Evil: expected UTF-8 text without control characters, got "
                "\"a\\x0d\\x0aHost: b\"");
  EXPECT_EQ(sinks("{name: a}"), FilePrefix() +
                                    "alerting.sinks: expected a list of sinks (mappings with name and "
                                    "type), got a mapping");
}

TEST_F(ConfigTest, UnreadableFileRefused) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "running as root: root reads a mode-000 file, so it cannot be made unreadable";
  }
  std::string path = Write("secret.yaml", "database: {retention_days: 3}\n");
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  LoadOptions options = SchemaOptions();
  options.explicit_file = path;
  EXPECT_EQ(ErrorOf(options), path + ": cannot read: Permission denied");
  options.explicit_file.reset();  // an optional file that exists but cannot be read is an error too
  options.optional_files = {path};
  EXPECT_EQ(ErrorOf(options), path + ": cannot read: Permission denied");
}

TEST_F(ConfigTest, MissingExplicitFileRefusedMissingOptionalSkipped) {
  LoadOptions options = SchemaOptions();
  options.explicit_file = dir_ + "/nope.yaml";
  EXPECT_EQ(ErrorOf(options), dir_ + "/nope.yaml: cannot read: No such file or directory");
  options.explicit_file = dir_;
  EXPECT_EQ(ErrorOf(options), dir_ + ": cannot read: Is a directory");

  LoadOptions optional = SchemaOptions();
  optional.optional_files = {dir_ + "/nope.yaml", dir_ + "/no/such/dir.yaml"};
  Result<LoadedConfig> r = Load(optional);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->sources, std::vector<std::string>{"built-in defaults"});
}

TEST_F(ConfigTest, TopLevelMustBeAMapping) {
  EXPECT_EQ(ErrorOfYaml("- a\n- b\n"), FilePrefix() + "expected a mapping at the top level, got a list");
  EXPECT_EQ(ErrorOfYaml("hello\n"), FilePrefix() + "expected a mapping at the top level, got \"hello\"");
}

TEST_F(ConfigTest, EnvironmentVariablesNamingNoKeyRefused) {
  LoadOptions options = SchemaOptions();
  options.environment = {"SENTINELD_FOO__BAR=1"};
  EXPECT_EQ(ErrorOf(options),
            "environment SENTINELD_FOO__BAR: foo: unknown key (known keys: database, collection, "
            "privileges, detection, alerting, telemetry, ipc, fleet, console)");
  options.environment = {"SENTINELD_COLLECTION__INTERVAL=1"};
  EXPECT_TRUE(
      ErrorOf(options).starts_with("environment SENTINELD_COLLECTION__INTERVAL: collection.interval: "
                                   "unknown key"));
  options.environment = {"SENTINELD_COLLECTION____X=1"};
  EXPECT_TRUE(
      ErrorOf(options).starts_with("environment SENTINELD_COLLECTION____X: not a configuration variable"));
  options.environment = {"SENTINELD_SUPERVISOR_PID=77", "SENTINELD_SKIP_SETUP=1"};
  EXPECT_TRUE(Load(options).ok());
  options.environment = {"SENTINELD_DETECTION__RULES_DIRS=[/a,"};
  EXPECT_TRUE(
      ErrorOf(options).starts_with("environment SENTINELD_DETECTION__RULES_DIRS: detection.rules_dirs: "
                                   "invalid YAML value"));
}

// SENTINELD_COLLECTION=5 (no "__KEY") and other SENTINELD_ names that are no key were skipped
// silently: the operator believed a setting was applied (issue 14, item 8).
TEST_F(ConfigTest, EnvironmentVariablesThatAreNotKeysRefusedNamingTheVariable) {
  LoadOptions options = SchemaOptions();
  options.environment = {"PATH=/usr/bin", "SENTINELD_COLLECTION=5"};
  EXPECT_EQ(ErrorOf(options),
            "environment SENTINELD_COLLECTION: names the section collection but no key (expected "
            "SENTINELD_COLLECTION__<KEY>, e.g. SENTINELD_COLLECTION__INTERVAL_SECS)");
  options.environment = {"SENTINELD_ALERTING={dedup_window_secs: 5}"};
  EXPECT_TRUE(
      ErrorOf(options).starts_with("environment SENTINELD_ALERTING: names the section alerting but no key"));
  options.environment = {"SENTINELD_HOME=/x"};
  EXPECT_EQ(ErrorOf(options),
            "environment SENTINELD_HOME: not a configuration variable: no section \"home\" (expected "
            "SENTINELD_<SECTION>__<KEY>[__<SUBKEY>] with SECTION one of DATABASE, COLLECTION, PRIVILEGES, "
            "DETECTION, ALERTING, TELEMETRY, IPC, FLEET, CONSOLE; the other SENTINELD_ variables are "
            "SENTINELD_SUPERVISOR_PID, "
            "SENTINELD_SKIP_SETUP)");
  options.environment = {"SENTINELD_=1"};
  EXPECT_TRUE(ErrorOf(options).starts_with("environment SENTINELD_: not a configuration variable"));
  options.environment = {"SENTINELD_COLLECTION__=1"};
  EXPECT_TRUE(
      ErrorOf(options).starts_with("environment SENTINELD_COLLECTION__: not a configuration variable"));
  options.environment = {"SENTINELD_DEBUG=1"};
  EXPECT_TRUE(ErrorOf(options).starts_with("environment SENTINELD_DEBUG: not a configuration variable"));
  // A misspelt product variable is refused too, not taken for the real one.
  options.environment = {"SENTINELD_SUPERVISOR_PIDS=1"};
  EXPECT_TRUE(
      ErrorOf(options).starts_with("environment SENTINELD_SUPERVISOR_PIDS: not a configuration variable"));
  // Variables outside the prefix are none of ours.
  options.environment = {"SENTINELDX_COLLECTION=5", "MY_SENTINELD_COLLECTION=5"};
  EXPECT_TRUE(Load(options).ok());
}

TEST_F(ConfigTest, BadOverridePathRefused) {
  LoadOptions options = SchemaOptions();
  options.overrides = {{"database..path", "/x"}};
  EXPECT_EQ(ErrorOf(options),
            "command line: invalid key path \"database..path\" (expected dotted keys such as database.path)");
  options.overrides = {{"database.pth", "/x"}};
  EXPECT_TRUE(ErrorOf(options).starts_with("command line: database.pth: unknown key (known keys: path, "));
}

TEST_F(ConfigTest, HashStableAndSensitive) {
  Result<LoadedConfig> a = LoadYaml("collection: {interval_secs: 10}\n", "a.yaml");
  Result<LoadedConfig> b =
      LoadYaml("collection:\n  interval_secs: 10   # same value, other spelling\n", "b.yaml");
  Result<LoadedConfig> c = LoadYaml("collection: {interval_secs: 11}\n", "c.yaml");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->hash.size(), 64u);
  EXPECT_EQ(a->hash, b->hash);
  EXPECT_NE(a->hash, c->hash);
  EXPECT_NE(a->hash, Hash(Config{}));
  EXPECT_EQ(a->hash, Hash(a->config));
}

TEST_F(ConfigTest, ToJsonUsesYamlKeysAndOnlyTheSinkTypesKeys) {
  Config c;
  c.alerting.sinks.push_back(SinkConfig{.name = "local", .type = "file", .format = "json", .path = "/x"});
  nlohmann::json j = ToJson(c);
  EXPECT_EQ(j["collection"]["interval_secs"], 30);
  EXPECT_EQ(j["alerting"]["retry"]["max_attempts"], 3);
  EXPECT_EQ(j["privileges"]["keep_capabilities"], nlohmann::json({"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}));
  const nlohmann::json& file_sink = j["alerting"]["sinks"][1];
  EXPECT_EQ(file_sink["path"], "/x");
  EXPECT_FALSE(file_sink.contains("url"));
  EXPECT_FALSE(file_sink.contains("facility"));
  EXPECT_EQ(j["alerting"]["sinks"][0].size(), 5u);  // name type min_severity enabled format
}

TEST_F(ConfigTest, ToYamlRoundTrips) {
  Config c;
  c.database.path = "/data/e v e n t s.db";
  c.privileges.keep_capabilities = {};
  c.privileges.user = "null";  // a string that must not read back as YAML null
  c.detection.rules_dirs = {"/r1", "/r 2"};
  c.telemetry.http_listen = "";
  c.telemetry.log_level = "off";
  c.alerting.retry.max_attempts = 10;
  c.alerting.sinks = {
      SinkConfig{.name = "console", .type = "stdout", .format = "json", .min_severity = "low"},
      SinkConfig{
          .name = "local", .type = "file", .format = "json", .path = "/var/log/a.jsonl", .enabled = false},
      SinkConfig{.name = "siem", .type = "syslog", .address = "tcp://[::1]:6514", .facility = "local3"},
      SinkConfig{.name = "soar",
                 .type = "webhook",
                 .format = "json",
                 .url = "https://h:8443/x?y=1",
                 .headers = {{"Authorization", "Bearer: x#y"}, {"X-Empty", ""}},
                 .timeout_ms = 2500},
      SinkConfig{.name = "oncall",
                 .type = "email",
                 .timeout_ms = 9000,
                 .smtp_url = "smtps://mail:465",
                 .from = "SentinelD <s@example.org>",
                 .to = {"a@example.org", "b@example.org"},
                 .min_severity = "critical"},
  };
  std::string yaml = ToYaml(c);
  Result<LoadedConfig> r = LoadYaml(yaml);
  ASSERT_TRUE(r.ok()) << r.status().ToString() << "\n" << yaml;
  EXPECT_EQ(r->config, c);
  EXPECT_EQ(r->hash, Hash(c));

  Result<LoadedConfig> defaults = LoadYaml(ToYaml(Config{}), "defaults.yaml");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->hash, Hash(Config{}));
}

TEST_F(ConfigTest, ValidateFileUsesOnlyThatFile) {
  std::string good = Write("good.yaml", "collection: {interval_secs: 7}\n");
  Result<LoadedConfig> r = ValidateFile(good);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.collection.interval_secs, 7);
  EXPECT_EQ(r->sources, (std::vector<std::string>{"built-in defaults", good}));
  std::string bad = Write("bad.yaml", "collection: {interval_secs: fast}\n");
  EXPECT_EQ(ValidateFile(bad).status().message(),
            bad + ": collection.interval_secs: expected a positive integer, got \"fast\"");
}

// Which keys a SIGHUP cannot apply is declared in the schema; this list changes only on purpose,
// together with what the binaries re-apply on SIGHUP (procmond/main.cc, sentinelagent/main.cc).
TEST_F(ConfigTest, RestartOnlyKeysAreTheOnesNoReloadCanApply) {
  std::vector<std::string> restart;
  for (const KeyInfo& key : Keys()) {
    if (key.restart && key.type != "section") restart.push_back(key.path);
  }
  EXPECT_EQ(restart, (std::vector<std::string>{"database.path",
                                               "database.audit_path",
                                               "database.audit_signing_key",
                                               "database.busy_timeout_ms",
                                               "collection.realtime_events",
                                               "collection.realtime_source",
                                               "collection.scan_source",
                                               "privileges.user",
                                               "privileges.keep_capabilities",
                                               "telemetry.http_listen",
                                               "telemetry.web_ui",
                                               "ipc.socket_dir",
                                               "fleet.servers",
                                               "fleet.host_id",
                                               "fleet.credentials",
                                               "fleet.tls.ca",
                                               "fleet.tls.cert",
                                               "fleet.tls.key",
                                               "fleet.trusted_keys",
                                               "fleet.forward"}));
}

TEST_F(ConfigTest, RestartOnlyChangesNamesOnlyTheRestartOnlyKeysThatDiffer) {
  Result<LoadedConfig> running = LoadYaml("collection: {interval_secs: 10}\n");
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  EXPECT_TRUE(RestartOnlyChanges(running->config, running->config).empty());
  Result<LoadedConfig> loaded = LoadYaml(R"(
database: {path: /new/events.db, retention_days: 9}
collection: {interval_secs: 5, realtime_source: netlink, hash_executables: false}
privileges: {user: nobody, keep_capabilities: [CAP_SYS_PTRACE]}
telemetry: {log_level: debug, http_listen: "127.0.0.1:1"}
ipc: {socket_dir: /new/run}
alerting: {sinks: []}
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(
      RestartOnlyChanges(running->config, loaded->config),
      (std::vector<std::string>{"database.path", "collection.realtime_source", "privileges.user",
                                "privileges.keep_capabilities", "telemetry.http_listen", "ipc.socket_dir"}));
}

TEST_F(ConfigTest, ReloadableConfigKeepsTheRunningRestartOnlyValuesAndTakesTheRest) {
  Result<LoadedConfig> running = LoadYaml("database: {path: /old/events.db, busy_timeout_ms: 100}\n");
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  Result<LoadedConfig> loaded = LoadYaml(R"(
database: {path: /new/events.db, audit_path: /new/audit.db, busy_timeout_ms: 200, retention_days: 9}
collection: {interval_secs: 5, scan_source: proc, max_hash_bytes: 7}
privileges: {user: nobody}
detection: {interval_secs: 3, rules_dirs: [/r]}
telemetry: {log_level: debug, http_listen: ""}
ipc: {socket_dir: /new/run}
alerting: {dedup_window_secs: 0, sinks: []}
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Config c = ReloadableConfig(running->config, loaded->config);
  // Kept: what the running process opened, bound or dropped at start-up.
  EXPECT_EQ(c.database.path, "/old/events.db");
  EXPECT_EQ(c.database.audit_path, running->config.database.audit_path);
  EXPECT_EQ(c.database.busy_timeout_ms, 100);
  EXPECT_EQ(c.collection.scan_source, "auto");
  EXPECT_EQ(c.privileges, running->config.privileges);
  EXPECT_EQ(c.telemetry.http_listen, running->config.telemetry.http_listen);
  EXPECT_EQ(c.ipc.socket_dir, "/run/sentineld");
  // Taken: everything a reload applies.
  EXPECT_EQ(c.database.retention_days, 9);
  EXPECT_EQ(c.collection.interval_secs, 5);
  EXPECT_EQ(c.collection.max_hash_bytes, 7);
  EXPECT_EQ(c.detection, loaded->config.detection);
  EXPECT_EQ(c.alerting, loaded->config.alerting);
  EXPECT_EQ(c.telemetry.log_level, "debug");
  EXPECT_TRUE(RestartOnlyChanges(running->config, c).empty());
}

TEST_F(ConfigTest, KeysDescribeEveryKeyOnce) {
  std::vector<KeyInfo> keys = Keys();
  std::set<std::string> paths;
  nlohmann::json defaults = ToJson(Config{});
  for (const KeyInfo& key : keys) {
    EXPECT_TRUE(paths.insert(key.path + "/" + Join(key.sink_types, ",")).second) << key.path;
    EXPECT_FALSE(key.description.empty()) << key.path;
    EXPECT_FALSE(key.expected.empty()) << key.path;
    if (key.path.find("[]") != std::string::npos) continue;
    std::string pointer_text = key.path;
    std::replace(pointer_text.begin(), pointer_text.end(), '.', '/');
    nlohmann::json::json_pointer pointer(pointer_text.insert(0, 1, '/'));
    ASSERT_TRUE(defaults.contains(pointer)) << key.path;
    if (key.type != "section") {
      EXPECT_EQ(defaults[pointer].dump(), key.default_value) << key.path;
    }
  }
  EXPECT_TRUE(paths.count("collection.interval_secs/"));
  EXPECT_TRUE(paths.count("alerting.sinks[].url/webhook"));
  EXPECT_TRUE(paths.count("alerting.sinks[].format/file,webhook,nats"));
  EXPECT_TRUE(paths.count("alerting.sinks[].timeout_ms/syslog,webhook,email,nats"));
  EXPECT_TRUE(paths.count("alerting.sinks[].hmac_secret_env/webhook"));
  EXPECT_TRUE(paths.count("alerting.sinks[].tls_verify/webhook,email"));
  EXPECT_TRUE(paths.count("database.audit_signing_key/"));
  // 9 sections, their 43 keys, the 5 keys of retry and circuit_breaker, the 3 of fleet.tls,
  // 27 sink keys.
  EXPECT_EQ(keys.size(), 9u + 43u + 5u + 3u + 27u);
  EXPECT_TRUE(paths.count("telemetry.summary_interval_secs/"));
  EXPECT_TRUE(paths.count("console.stream_max_age_days/"));
  EXPECT_TRUE(paths.count("console.stream_max_bytes/"));
  EXPECT_TRUE(paths.count("console.http_listen/"));
  EXPECT_TRUE(paths.count("console.alert_retention_days/"));
  EXPECT_TRUE(paths.count("console.host_expiry_days/"));
  EXPECT_TRUE(paths.count("telemetry.web_ui/"));
  EXPECT_TRUE(paths.count("fleet.servers/"));
  EXPECT_TRUE(paths.count("fleet.tls.cert/"));
  EXPECT_TRUE(paths.count("console.signing_key/"));
  EXPECT_TRUE(paths.count("detection.realtime_batch_ms/"));
  EXPECT_TRUE(paths.count("alerting.sinks[].max_message_bytes/syslog,webhook,email,nats"));
  EXPECT_TRUE(paths.count("database.maintenance_interval_secs/"));
}

TEST_F(ConfigTest, DefaultFilesHonourXdgConfigHome) {
  const char* old_xdg = std::getenv("XDG_CONFIG_HOME");
  const char* old_home = std::getenv("HOME");
  std::string saved_xdg = old_xdg ? old_xdg : "", saved_home = old_home ? old_home : "";
  setenv("HOME", "/home/u", 1);
  setenv("XDG_CONFIG_HOME", "/xdg", 1);
  EXPECT_EQ(DefaultFiles(),
            (std::vector<std::string>{"/etc/sentineld/config.yaml", "/xdg/sentineld/config.yaml"}));
  setenv("XDG_CONFIG_HOME", "relative", 1);
  EXPECT_EQ(DefaultFiles(), (std::vector<std::string>{"/etc/sentineld/config.yaml",
                                                      "/home/u/.config/sentineld/config.yaml"}));
  unsetenv("XDG_CONFIG_HOME");
  unsetenv("HOME");
  EXPECT_EQ(DefaultFiles(), std::vector<std::string>{"/etc/sentineld/config.yaml"});
  if (old_xdg) setenv("XDG_CONFIG_HOME", saved_xdg.c_str(), 1);
  if (old_home) setenv("HOME", saved_home.c_str(), 1);
}

TEST_F(ConfigTest, CurrentEnvironmentReadsEnviron) {
  setenv("SENTINELD_TEST_MARKER", "42", 1);
  std::vector<std::string> env = CurrentEnvironment();
  EXPECT_NE(std::find(env.begin(), env.end(), "SENTINELD_TEST_MARKER=42"), env.end());
  unsetenv("SENTINELD_TEST_MARKER");
}

TEST(ConfigChecksTest, Shapes) {
  using namespace internal;  // NOLINT(google-build-using-namespace): test of the private checks
  EXPECT_TRUE(IsHostPort("127.0.0.1:9464"));
  EXPECT_TRUE(IsHostPort("[::1]:9464"));
  EXPECT_TRUE(IsHostPort("localhost:1"));
  EXPECT_FALSE(IsHostPort("[::1]"));
  EXPECT_FALSE(IsHostPort(":9464"));
  EXPECT_FALSE(IsHostPort("host:0"));
  EXPECT_FALSE(IsHostPort("host:+80"));
  EXPECT_FALSE(IsHostPort("a:b:80"));
  EXPECT_TRUE(IsSyslogAddress("unix:///dev/log"));
  EXPECT_FALSE(IsSyslogAddress("unix:///"));
  EXPECT_FALSE(IsSyslogAddress("udp://host"));
  EXPECT_TRUE(IsHttpUrl("https://user:pw@h.example:8443/p?q#f"));
  EXPECT_FALSE(IsHttpUrl("https://"));
  EXPECT_FALSE(IsHttpUrl("https:///path"));
  EXPECT_FALSE(IsHttpUrl("https://h/a b"));
  EXPECT_TRUE(IsUserName("sentineld"));
  EXPECT_TRUE(IsUserName("_svc$"));
  EXPECT_FALSE(IsUserName("1abc"));
  EXPECT_FALSE(IsUserName("a b"));
  EXPECT_TRUE(IsCapabilityName("CAP_CHECKPOINT_RESTORE"));
  EXPECT_FALSE(IsCapabilityName("cap_sys_ptrace"));
  EXPECT_TRUE(IsEmailAddress("SentinelD <s@example.org>"));
  EXPECT_FALSE(IsEmailAddress("@example.org"));
  EXPECT_FALSE(IsCleanText("a\nb"));
  EXPECT_FALSE(IsCleanText("\xff"));
}

}  // namespace
}  // namespace sentinel::config

namespace sentinel::config {
namespace {

// Delivery keys added with the delivery engine (issue 5): defaults, accepted values, refusals.
TEST_F(ConfigTest, DeliveryKeysDefaultsAndValues) {
  const std::string file =
      Write("c.yaml",
            "alerting:\n  sinks:\n"
            "    - {name: f, type: file, path: /x, fsync: always, rotate_bytes: 1024, rotate_keep: 2}\n"
            "    - {name: s, type: syslog, address: \"tcp://127.0.0.1:514\", timeout_ms: 700}\n"
            "    - {name: w, type: webhook, url: \"https://h/\", hmac_secret_env: HOOK_KEY,\n"
            "       signature_header: X-Sig, tls_verify: false, ca_file: /etc/ca.pem}\n"
            "    - {name: m, type: email, smtp_url: \"smtp://h\", from: a@b, to: [c@d], starttls: true,\n"
            "       username: bot, password_env: SMTP_PW}\n"
            "    - {name: d, type: file, path: /y}\n");
  auto r = ValidateSchema(file);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& sinks = r->config.alerting.sinks;
  ASSERT_EQ(sinks.size(), 5u);
  EXPECT_EQ(sinks[0].fsync, "always");
  EXPECT_EQ(sinks[0].rotate_bytes, 1024);
  EXPECT_EQ(sinks[0].rotate_keep, 2);
  EXPECT_EQ(sinks[1].timeout_ms, 700);
  EXPECT_EQ(sinks[2].hmac_secret_env, "HOOK_KEY");
  EXPECT_EQ(sinks[2].signature_header, "X-Sig");
  EXPECT_FALSE(sinks[2].tls_verify);
  EXPECT_EQ(sinks[2].ca_file, "/etc/ca.pem");
  EXPECT_TRUE(sinks[3].starttls);
  EXPECT_EQ(sinks[3].username, "bot");
  EXPECT_EQ(sinks[3].password_env, "SMTP_PW");
  EXPECT_EQ(sinks[4].fsync, "batch");
  EXPECT_EQ(sinks[4].rotate_bytes, 104857600);
  EXPECT_EQ(sinks[4].rotate_keep, 5);
  // Written back, read again: the same configuration.
  const std::string again = Write("again.yaml", ToYaml(r->config));
  auto r2 = ValidateSchema(again);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->config, r->config);
}

TEST_F(ConfigTest, DeliveryKeysRefusals) {
  auto error = [this](const std::string& sinks) {
    std::string message = ErrorOfYaml("alerting:\n  sinks: " + sinks + "\n");
    return StartsWith(message, FilePrefix()) ? message.substr(FilePrefix().size()) : message;
  };
  EXPECT_EQ(error("[{name: f, type: file, path: /x, fsync: sometimes}]"),
            "alerting.sinks[0].fsync: expected one of always, batch, never, got \"sometimes\"");
  EXPECT_EQ(error("[{name: f, type: file, path: /x, rotate_keep: 0}]"),
            "alerting.sinks[0].rotate_keep: expected an integer from 1 to 1000, got 0");
  EXPECT_EQ(error("[{name: f, type: file, path: /x, rotate_bytes: -1}]"),
            "alerting.sinks[0].rotate_bytes: expected a non-negative integer, got -1");
  EXPECT_EQ(error("[{name: w, type: webhook, url: \"http://h/\", hmac_secret_env: \"1BAD\"}]"),
            "alerting.sinks[0].hmac_secret_env: expected \"\" or an environment variable name "
            "([A-Za-z_][A-Za-z0-9_]*), got \"1BAD\"");
  EXPECT_EQ(
      error("[{name: w, type: webhook, url: \"http://h/\", hmac_secret_env: K, hmac_secret_file: /k}]"),
      "alerting.sinks[0].hmac_secret_file: expected at most one of hmac_secret_env and hmac_secret_file");
  EXPECT_EQ(error("[{name: w, type: webhook, url: \"http://h/\", signature_header: \"X Sig\"}]"),
            "alerting.sinks[0].signature_header: expected an HTTP header name, got \"X Sig\"");
  EXPECT_EQ(error("[{name: m, type: email, smtp_url: \"smtps://h\", from: a@b, to: [c@d], starttls: true}]"),
            "alerting.sinks[0].starttls: expected false with an smtps:// smtp_url (TLS from the start)");
  EXPECT_EQ(error("[{name: m, type: email, smtp_url: \"smtp://h\", from: a@b, to: [c@d], password_env: P}]"),
            "alerting.sinks[0].password_env: expected a username to go with it");
  EXPECT_EQ(
      error("[{name: s, type: stdout, tls_verify: false}]"),
      "alerting.sinks[0].tls_verify: not valid for a stdout sink (valid keys: name, type, min_severity, "
      "enabled, format)");
}

TEST_F(ConfigTest, FleetAndConsoleDefaultsAreOff) {
  const Config c;
  EXPECT_TRUE(c.fleet.servers.empty());
  EXPECT_EQ(c.fleet.host_id, "");
  EXPECT_EQ(c.fleet.forward, std::vector<std::string>{"alerts"});
  EXPECT_TRUE(c.fleet.trusted_keys.empty());
  EXPECT_EQ(c.console.database, "/var/lib/sentineld/fleet.db");
  EXPECT_EQ(c.console.signing_key, "");
  EXPECT_EQ(c.console.stream_max_age_days, 0);
  EXPECT_EQ(c.console.stream_max_bytes, -1);
  EXPECT_EQ(c.console.http_listen, "");  // the console's web UI is off until an address is set
}

TEST_F(ConfigTest, FleetSectionLoadsAndRoundTrips) {
  const std::string key(64, 'a');
  Result<LoadedConfig> r = LoadYaml(R"(
fleet:
  servers: ["nats://10.0.0.5:4222", "tls://user:secret@nats.example:4443"]
  host_id: web-01_a
  credentials: /etc/sentineld/host.creds
  tls: {ca: /etc/ca.pem, cert: /etc/c.pem, key: /etc/k.pem}
  trusted_keys: [")" + key + R"("]
  forward: [alerts, scans]
console: {database: /tmp/fleet.db, signing_key: /etc/sentineld/fleet.key, stream_max_age_days: 30,
          stream_max_bytes: 1073741824, http_listen: "127.0.0.1:9465"}
alerting:
  sinks:
    - {name: fleet, type: nats, format: ocsf, timeout_ms: 3000}
    - {name: hook, type: webhook, url: "https://siem.example/x", format: ocsf}
    - {name: f, type: file, path: /tmp/a.jsonl, format: ocsf}
)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = r->config;
  EXPECT_EQ(c.fleet.servers.size(), 2u);
  EXPECT_EQ(c.fleet.host_id, "web-01_a");
  EXPECT_EQ(c.fleet.tls.cert, "/etc/c.pem");
  EXPECT_EQ(c.fleet.trusted_keys, std::vector<std::string>{key});
  EXPECT_EQ(c.fleet.forward, (std::vector<std::string>{"alerts", "scans"}));
  EXPECT_EQ(c.console.signing_key, "/etc/sentineld/fleet.key");
  EXPECT_EQ(c.console.stream_max_age_days, 30);
  EXPECT_EQ(c.console.stream_max_bytes, 1073741824);
  EXPECT_EQ(c.console.http_listen, "127.0.0.1:9465");
  EXPECT_EQ(ErrorOfYaml("console: {http_listen: \"127.0.0.1:70000\"}"),
            FilePrefix() +
                "console.http_listen: expected \"\" or host:port with port 1..65535, got "
                "\"127.0.0.1:70000\"");
  EXPECT_NE(ErrorOfYaml("console: {stream_max_age_days: -1}").find("console.stream_max_age_days"),
            std::string::npos);
  EXPECT_NE(ErrorOfYaml("console: {stream_max_bytes: -2}").find("console.stream_max_bytes"),
            std::string::npos);
  ASSERT_EQ(c.alerting.sinks.size(), 3u);
  EXPECT_EQ(c.alerting.sinks[0].type, "nats");
  EXPECT_EQ(c.alerting.sinks[0].format, "ocsf");
  EXPECT_EQ(c.alerting.sinks[0].timeout_ms, 3000);
  EXPECT_EQ(c.alerting.sinks[1].format, "ocsf");
  Result<LoadedConfig> again = LoadYaml(ToYaml(c), "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->config, c);
}

TEST_F(ConfigTest, FleetKeysRefusedNamingTheKey) {
  const std::string p = FilePrefix();
  EXPECT_EQ(ErrorOfYaml("fleet: {servers: [\"http://x:1\"]}\n"),
            p + "fleet.servers[0]: expected a nats:// or tls:// URL with a host, got \"http://x:1\"");
  // Credentials in a refused URL are never echoed.
  EXPECT_EQ(ErrorOfYaml("fleet: {servers: [\"nats://u:hunter22@\"]}\n").find("hunter22"), std::string::npos);
  EXPECT_EQ(
      ErrorOfYaml("fleet: {host_id: \"a.b\"}\n"),
      p + "fleet.host_id: expected \"\" or a host id of [A-Za-z0-9_-], at most 64 characters, got \"a.b\"");
  EXPECT_EQ(ErrorOfYaml("fleet: {host_id: \"" + std::string(65, 'a') + "\"}\n").substr(0, p.size() + 14),
            p + "fleet.host_id:");
  EXPECT_EQ(
      ErrorOfYaml("fleet: {trusted_keys: [\"" + std::string(64, 'A') + "\"]}\n"),
      p + "fleet.trusted_keys[0]: expected an Ed25519 public key as 64 lowercase hex characters, got \"" +
          std::string(64, 'A') + "\"");
  EXPECT_EQ(ErrorOfYaml("fleet: {trusted_keys: [\"abc\"]}\n").substr(0, p.size() + 22),
            p + "fleet.trusted_keys[0]:");
  EXPECT_EQ(ErrorOfYaml("fleet: {forward: [alerts, logs]}\n"),
            p + "fleet.forward[1]: expected one of alerts, scans, events, got \"logs\"");
  EXPECT_EQ(ErrorOfYaml("fleet: {tls: {cert: /c.pem}}\n"),
            p + "fleet.tls.cert: expected together with fleet.tls.key");
  EXPECT_EQ(ErrorOfYaml("fleet: {tls: {pem: /c.pem}}\n").substr(0, p.size() + 26),
            p + "fleet.tls.pem: unknown key");
  EXPECT_EQ(ErrorOfYaml("console: {database: \"\"}\n"),
            p + "console.database: expected a non-empty path, got \"\"");
  EXPECT_EQ(ErrorOfYaml("alerting: {sinks: [{name: n, type: nats}]}\n"),
            p + "alerting.sinks: a sink of type nats needs fleet.servers");
  EXPECT_EQ(
      ErrorOfYaml("alerting: {sinks: [{name: n, type: nats, url: \"http://x\"}]}\n").substr(0, p.size() + 26),
      p + "alerting.sinks[0].url: not");
  EXPECT_EQ(
      ErrorOfYaml(
          "fleet: {servers: [\"nats://x:1\"]}\nalerting: {sinks: [{name: n, type: stdout, format: ocsf}]}\n"),
      p + "alerting.sinks[0].format: expected one of text, json, got \"ocsf\"");
}

TEST_F(ConfigTest, FleetServersFromTheEnvironmentSatisfyALaterNatsSink) {
  LoadOptions options = SchemaOptions();
  options.explicit_file = Write("config.yaml", "alerting: {sinks: [{name: n, type: nats}]}\n");
  options.environment = {"SENTINELD_FLEET__SERVERS=[\"nats://127.0.0.1:4222\"]"};
  Result<LoadedConfig> r = Load(options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.fleet.servers, std::vector<std::string>{"nats://127.0.0.1:4222"});
  options.environment = {"SENTINELD_FLEET__SERVERS=[]"};
  EXPECT_EQ(ErrorOf(options),
            "environment SENTINELD_FLEET__SERVERS: fleet.servers: expected at least one server: "
            "alerting.sinks has a sink of type nats");
}

TEST_F(ConfigTest, ResolveHostIdPrefersTheConfigThenMachineIdThenHostname) {
  FleetConfig fleet;
  fleet.host_id = "given-1";
  EXPECT_EQ(ResolveHostId(fleet, "/nonexistent", "h"), "given-1");
  fleet.host_id = "";
  std::string machine_id = Write("machine-id", "0123456789abcdef0123456789abcdef\n");
  EXPECT_EQ(ResolveHostId(fleet, machine_id, "h"), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(ResolveHostId(fleet, dir_ + "/none", "web.example.com"), "web_example_com");
  std::string blank = Write("blank", "\n");
  EXPECT_EQ(ResolveHostId(fleet, blank, "a*b>c d"), "a_b_c_d");
  EXPECT_EQ(ResolveHostId(fleet, blank, std::string(100, 'x')), std::string(64, 'x'));
}

// ---------------------------------------------------------------------------------------------
// Build-time features (internal/feature_checks.h, docs/building.md "Build features").

// One setting per feature that needs it, as a config file line.
struct FeatureSetting {
  Feature feature;
  std::string yaml;
  std::string path;  // the key path the refusal names
};

std::vector<FeatureSetting> FeatureSettings() {
  const std::string key(64, 'a');
  return {
      {Feature::kEbpf, "collection: {realtime_source: ebpf}\n", "collection.realtime_source"},
      {Feature::kEbpf, "collection: {scan_source: ebpf}\n", "collection.scan_source"},
      {Feature::kWebhook,
       "alerting: {sinks: [{name: c, type: stdout}, {name: h, type: webhook, url: \"https://x/\"}]}\n",
       "alerting.sinks[1].type"},
      {Feature::kEmail,
       "alerting: {sinks: [{name: m, type: email, smtp_url: \"smtp://h\", from: a@b, to: [c@d]}]}\n",
       "alerting.sinks[0].type"},
      {Feature::kAuditSigning, "database: {audit_signing_key: /etc/sentineld/audit.key}\n",
       "database.audit_signing_key"},
      {Feature::kHttp, "telemetry: {http_listen: \"127.0.0.1:9464\"}\n", "telemetry.http_listen"},
      {Feature::kFleet, "fleet: {servers: [\"nats://127.0.0.1:4222\"]}\n", "fleet.servers"},
      {Feature::kFleet, "fleet: {trusted_keys: [\"" + key + "\"]}\n", "fleet.trusted_keys"},
      {Feature::kFleet,
       "fleet: {servers: [\"nats://127.0.0.1:4222\"]}\nalerting: {sinks: [{name: n, type: nats}]}\n",
       "alerting.sinks[0].type"},
      {Feature::kFleet, "console: {signing_key: /etc/sentineld/fleet.key}\n", "console.signing_key"},
      {Feature::kHttp, "console: {http_listen: \"127.0.0.1:9465\"}\n", "console.http_listen"},
  };
}

bool NothingBuilt(Feature) {
  return false;
}

TEST_F(ConfigTest, EveryFeatureSettingIsRefusedWhereItsFeatureIsMissing) {
  for (const FeatureSetting& f : FeatureSettings()) {
    SCOPED_TRACE(f.yaml);
    LoadOptions options;
    options.explicit_file = Write("config.yaml", f.yaml);
    options.feature_built = &NothingBuilt;
    // This build's default endpoint would be refused first.
    if (f.path != "telemetry.http_listen") options.environment = {"SENTINELD_TELEMETRY__HTTP_LISTEN="};
    const FeatureInfo& info = FeatureOf(f.feature);
    const std::string expected_start = FilePrefix() + f.path + ": ";
    const std::string message = ErrorOf(options);
    EXPECT_EQ(message.substr(0, expected_start.size()), expected_start) << message;
    EXPECT_NE(message.find("the " + std::string(info.name) + " feature is not in this build"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("-D" + std::string(info.option) + "=ON"), std::string::npos) << message;
    // The same settings load where the feature is there.
    options.feature_built = &AllBuilt;
    EXPECT_TRUE(Load(options).ok()) << Load(options).status().ToString();
  }
}

TEST_F(ConfigTest, ThisBuildRefusesExactlyTheFeaturesItLacks) {
  for (const FeatureSetting& f : FeatureSettings()) {
    SCOPED_TRACE(f.yaml);
    LoadOptions options;  // this build's features
    options.explicit_file = Write("config.yaml", f.yaml);
    Result<LoadedConfig> r = Load(options);
    if (Built(f.feature)) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find(FeatureOf(f.feature).option), std::string::npos)
          << r.status().message();
    }
  }
  // The defaults and the shipped example configuration never need a missing feature.
  EXPECT_TRUE(Load(LoadOptions{}).ok());
  LoadOptions shipped;
  shipped.explicit_file = std::string(SENTINEL_SOURCE_DIR) + "/config/config.yaml";
  Result<LoadedConfig> r = Load(shipped);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(ConfigTest, AFeatureRefusalBlamesTheLayerThatSetIt) {
  LoadOptions options;
  options.feature_built = &NothingBuilt;
  options.explicit_file = Write("config.yaml", "telemetry: {http_listen: \"\"}\n");
  options.environment = {"SENTINELD_TELEMETRY__HTTP_LISTEN=127.0.0.1:1"};
  const std::string blamed = "environment SENTINELD_TELEMETRY__HTTP_LISTEN: telemetry.http_listen: ";
  EXPECT_EQ(ErrorOf(options).substr(0, blamed.size()), blamed);
  // A later layer that clears the setting makes the configuration loadable.
  options.explicit_file = Write("config.yaml", "database: {audit_signing_key: /k}\n");
  options.environment = {"SENTINELD_TELEMETRY__HTTP_LISTEN="};
  options.overrides = {{"database.audit_signing_key", "\"\""}};
  EXPECT_TRUE(Load(options).ok()) << Load(options).status().ToString();
}

}  // namespace
}  // namespace sentinel::config
