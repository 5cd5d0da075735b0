// sentinelfleet: the SOC's console (SPEC §14). Thin: parses the command
// line, loads the configuration and hands over to the commands.
#include <signal.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <string_view>

#include <CLI/CLI.hpp>

#include "sentinel/base/escape.h"
#include "sentinel/base/features.h"
#include "sentinel/base/version.h"
#include "sentinel/detection/query_worker.h"
#include "sentinelcli/output/command_line.h"
#include "sentinelfleet/commands.h"

namespace sentinel::console {
namespace {

// Every value the command line can set; CLI11 writes into it while parsing.
struct Options {
  GlobalOptions global;
  InitArgs init;
  QueryArgs query;
  std::string rules_dir;
  std::string push_timeout = "10s";
  std::string key_output;
  AlertListArgs alert_list;
  std::string alert_id;
  std::vector<std::string> forget_hosts;
};

// A command that runs: the (sub)command that selects it and what it does.
struct Command {
  CLI::App* app;
  std::function<int(const Context&)> run;
};

class Cli {
 public:
  Cli() {
    app_.require_subcommand(1);
    app_.fallthrough();
    app_.set_version_flag("--version", std::string("sentinelfleet ") + kVersion + "\n" + FeaturesLine());
    // CLI11's errors quote the arguments as given: escaped, like every other text we print.
    cli::EscapeFailureMessages(app_);
    AddGlobalOptions();
    AddInitServe();
    AddHosts();
    AddAlerts();
    AddQuery();
    AddRules();
    AddKeys();
  }

  int Main(int argc, char** argv);

 private:
  void AddGlobalOptions();
  void AddInitServe();
  void AddHosts();
  void AddQuery();
  void AddRules();
  void AddAlerts();
  void AddKeys();
  void Add(CLI::App* app, std::function<int(const Context&)> run) {
    commands_.push_back({app, std::move(run)});
  }

  CLI::App app_{"sentinelfleet: the SentinelD fleet console (NATS JetStream)"};
  Options o_;
  std::vector<Command> commands_;
};

void Cli::AddGlobalOptions() {
  cli::AddGlobalOptions(app_, o_.global, "Console store path (overrides console.database)");
}

void Cli::AddInitServe() {
  InitArgs& init = o_.init;
  auto* init_cmd = app_.add_subcommand("init", "Create or update the fleet's streams and buckets");
  init_cmd->add_option("--replicas", init.replicas, "Replicas of each (default: min(3, cluster size))");
  init_cmd->add_option("--max-age", init.max_age, "Streams keep messages this long (30d; default: no limit)");
  init_cmd->add_option("--max-bytes", init.max_bytes,
                       "Streams keep at most this many bytes each (-1: no limit)");
  init_cmd->add_option("--timeout", init.timeout, "Time limit to reach a server")->capture_default_str();
  Add(init_cmd, [this](const Context& ctx) { return RunInit(ctx, o_.init); });
  auto* serve = app_.add_subcommand("serve", "Store every host's alerts and heartbeats until SIGTERM");
  Add(serve, RunServe);
}

void Cli::AddQuery() {
  QueryArgs& query = o_.query;
  auto* query_cmd = app_.add_subcommand("query", "Run a signed read-only SQL query on the hosts");
  query_cmd->add_option("sql", query.sql, "One SELECT statement")->required();
  query_cmd->add_option("--hosts", query.hosts, "all, or host ids separated by commas")
      ->capture_default_str();
  query_cmd->add_option("--timeout", query.timeout, "Wait this long for the hosts (10s, 500ms)")
      ->capture_default_str();
  query_cmd->add_option("--max-rows", query.max_rows, "At most N rows per host")->capture_default_str();
  Add(query_cmd, [this](const Context& ctx) { return RunQuery(ctx, o_.query); });
}

void Cli::AddRules() {
  auto* rules = app_.add_subcommand("rules", "Push a signed rule bundle, or see what each host loaded");
  rules->require_subcommand(1);
  auto* push = rules->add_subcommand("push", "Validate, sign and publish the rule files of DIR");
  push->add_option("dir", o_.rules_dir, "Directory of *.yaml / *.yml rule files (native or Sigma)")
      ->required();
  push->add_option("--timeout", o_.push_timeout, "Time limit to reach a server")->capture_default_str();
  Add(push, [this](const Context& ctx) { return RunRulesPush(ctx, o_.rules_dir, o_.push_timeout); });
  auto* status = rules->add_subcommand("status", "Per host: rule count, checksum and the last bundle's fate");
  Add(status, RunRulesStatus);
}

void Cli::AddHosts() {
  auto* hosts = app_.add_subcommand("hosts", "Every host: its last heartbeat (store, refreshed live)");
  auto* forget = hosts->add_subcommand("forget", "Forget hosts that are gone (their alerts stay)");
  forget->add_option("host_id", o_.forget_hosts, "Host ids")->required();
  // Before `hosts`: the first command parsed runs, and `hosts` is parsed too.
  Add(forget, [this](const Context& ctx) { return RunHostsForget(ctx, o_.forget_hosts); });
  Add(hosts, RunHosts);
}

void Cli::AddAlerts() {
  auto* alerts_cmd = app_.add_subcommand("alerts", "The fleet's alerts, as `serve` stored them");
  alerts_cmd->require_subcommand(1);
  AlertListArgs& list = o_.alert_list;
  auto* alerts_list = alerts_cmd->add_subcommand("list", "Alerts, newest first");
  alerts_list->add_option("--host", list.host, "Only this host's alerts");
  alerts_list->add_option("--since", list.since, "From this time (ISO-8601 or 15m, 2h, 7d)");
  alerts_list->add_option("--limit", list.limit, "At most N alerts");
  Add(alerts_list, [this](const Context& ctx) { return RunAlertsList(ctx, o_.alert_list); });
  auto* alerts_show = alerts_cmd->add_subcommand("show", "One alert with every field");
  alerts_show->add_option("id", o_.alert_id, "Console alert id, or HOST:ALERT_ID")->required();
  Add(alerts_show, [this](const Context& ctx) { return RunAlertsShow(ctx, o_.alert_id); });
}

void Cli::AddKeys() {
  auto* keys = app_.add_subcommand("keys", "The console's Ed25519 signing key");
  keys->require_subcommand(1);
  auto* generate =
      keys->add_subcommand("generate", "Create a signing key file (mode 0600); prints the public key");
  generate->add_option("--output", o_.key_output, "Private key file to create")->required();
  Add(generate, [this](const Context& ctx) { return RunKeysGenerate(ctx, o_.key_output); });
}

int Cli::Main(int argc, char** argv) {
  // Name an unknown command instead of CLI11's "A subcommand is required".
  if (const char* word =
          cli::UnknownCommandWord(argc, argv, {"--config", "--database", "--format"},
                                  {"init", "serve", "hosts", "alerts", "query", "rules", "keys"})) {
    std::cerr << "sentinelfleet: unknown command \"" << EscapeText(word)
              << "\" (expected init, serve, hosts, alerts, query, rules or keys; see --help)\n";
    return kExitUsage;
  }
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app_.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  Context ctx{o_.global, {}, cli::DetectTerminal(STDOUT_FILENO, o_.global.no_color), &std::cout, &std::cerr};
  auto loaded = LoadConsoleConfig(o_.global);
  if (!loaded.ok()) {
    std::cerr << "sentinelfleet: " << EscapeText(loaded.status().message()) << "\n";
    return kExitUsage;
  }
  ctx.config = std::move(loaded).value();
  for (const Command& command : commands_) {
    if (command.app->parsed()) return command.run(ctx);
  }
  return kExitUsage;
}

}  // namespace
}  // namespace sentinel::console

int main(int argc, char** argv) {
  // Re-executed as a query worker: `rules push` checks each rule's SQL in the sandbox.
  if (auto worker = sentinel::detection::RunQueryWorkerIfRequested(argc, argv)) return *worker;
  // A closed pipe (`sentinelfleet alerts list | head`) is a write error, not a kill.
  ::signal(SIGPIPE, SIG_IGN);
  sentinel::console::Cli cli;
  return cli.Main(argc, argv);
}
