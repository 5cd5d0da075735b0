// sentinelcli: the operator's tool (SPEC §9). Thin: parses the command line,
// loads the configuration and hands over to commands/*.
#include <unistd.h>

#include <functional>
#include <iostream>
#include <string_view>

#include <CLI/CLI.hpp>

#include "sentinel/base/escape.h"
#include "sentinel/base/features.h"
#include "sentinel/base/version.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/sql_guard.h"
#include "sentinelcli/commands/alerts_cmd.h"
#include "sentinelcli/commands/audit_cmd.h"
#include "sentinelcli/commands/config_cmd.h"
#include "sentinelcli/commands/context.h"
#include "sentinelcli/commands/dlq_cmd.h"
#include "sentinelcli/commands/export.h"
#include "sentinelcli/commands/health_cmd.h"
#include "sentinelcli/commands/process_cmd.h"
#include "sentinelcli/commands/query.h"
#include "sentinelcli/commands/rules_cmd.h"
#include "sentinelcli/output/command_line.h"

namespace sentinel::cli {
namespace {

// Every value the command line can set; CLI11 writes into it while parsing.
struct Options {
  GlobalOptions global;
  QueryArgs query;
  ExportArgs exp;
  std::string validate_file;
  std::string rule_id;
  std::string rules_test_since;
  std::vector<std::string> rule_files;
  std::string import_path;
  bool coverage_builtin = false;
  bool coverage_markdown = false;
  std::string export_dir;
  std::string convert_path;
  std::string convert_dir;
  AlertListArgs alert_list;
  std::string alert_id;
  bool alert_tree = false;
  ProcessArgs process;
  DlqArgs dlq;
  int64_t audit_limit = 20;
  std::string keygen_path;
};

// Actions recorded in the audit ledger: on a signed ledger they need the agent (decisions.md).
enum class Audited : bool { kNo = false, kYes = true };

// A command that runs: the (sub)command that selects it and what it does.
struct Command {
  CLI::App* app;
  Audited audited;
  std::function<int(const CommandContext&)> run;
};

class Cli {
 public:
  Cli() {
    app_.require_subcommand(1);
    app_.fallthrough();
    app_.set_version_flag("--version", std::string("sentinelcli ") + kVersion + "\n" + FeaturesLine());
    // CLI11's errors quote the arguments as given: escaped, like every other text we print.
    EscapeFailureMessages(app_);
    AddGlobalOptions();
    AddQuery();
    AddExport();
    AddConfig();
    AddRules();
    AddAlerts();
    AddProcess();
    AddAudit();
    AddHealth();
  }

  int Main(int argc, char** argv);

 private:
  void AddGlobalOptions();
  void AddQuery();
  void AddExport();
  void AddConfig();
  void AddRules();
  void AddAlerts();
  void AddDlq(CLI::App* alerts);
  void AddProcess();
  void AddAudit();
  void AddHealth();
  void Add(CLI::App* app, std::function<int(const CommandContext&)> run, Audited audited = Audited::kNo) {
    commands_.push_back({app, audited, std::move(run)});
  }
  int Dispatch(const CommandContext& ctx) const;

  CLI::App app_{"sentinelcli: query and manage SentinelD"};
  Options o_;
  std::vector<Command> commands_;
  CLI::App* config_validate_ = nullptr;
};

void Cli::AddGlobalOptions() {
  cli::AddGlobalOptions(app_, o_.global, "Event store path (overrides database.path)");
}

void Cli::AddQuery() {
  QueryArgs& query = o_.query;
  auto* query_cmd = app_.add_subcommand("query", "Run a read-only SQL query over the process history");
  query_cmd->add_option("sql", query.sql, "One SELECT statement")->required();
  query_cmd->add_option("--param", query.params, "Named parameter NAME=VALUE (repeatable)");
  query_cmd->add_option("--limit", query.limit, "At most N rows");
  query_cmd->add_option("--offset", query.offset, "Skip the first N rows");
  Add(
      query_cmd, [this](const CommandContext& ctx) { return RunQuery(ctx, o_.query); }, Audited::kYes);
}

void Cli::AddExport() {
  ExportArgs& exp = o_.exp;
  auto* export_cmd = app_.add_subcommand("export", "Export a table as JSON lines, CSV or JSON");
  export_cmd->add_option("table", exp.table, "Table to export")->required();
  export_cmd->add_option("--since", exp.since, "From this time (ISO-8601 or 15m, 2h, 7d)");
  export_cmd->add_option("--until", exp.until, "Before this time (ISO-8601 or 15m, 2h, 7d)");
  export_cmd->add_option("--format", exp.format, "jsonl (default), csv or json");
  export_cmd->add_option("--output", exp.output, "Write to FILE instead of stdout");
  Add(export_cmd, [this](const CommandContext& ctx) { return RunExport(ctx, o_.exp); });
}

void Cli::AddConfig() {
  auto* config_cmd = app_.add_subcommand("config", "Show or validate the configuration");
  config_cmd->require_subcommand(1);
  auto* config_show = config_cmd->add_subcommand("show", "Print the effective configuration");
  Add(config_show, RunConfigShow);
  config_validate_ = config_cmd->add_subcommand("validate", "Validate a configuration file");
  config_validate_->add_option("file", o_.validate_file,
                               "File to validate (default: the layered configuration)");
  // With FILE it runs before the layered configuration is loaded (Main).
  Add(config_validate_, [](const CommandContext& ctx) { return RunConfigValidate(ctx, ""); });
}

void Cli::AddRules() {
  std::string& rule_id = o_.rule_id;
  auto* rules_cmd = app_.add_subcommand("rules",
                                        "List, show, validate, test, enable, disable, import, export, "
                                        "convert rules or show their ATT&CK coverage");
  rules_cmd->require_subcommand(1);
  auto* rules_list = rules_cmd->add_subcommand("list", "The rule set the agent loads, with its stored state");
  Add(rules_list, RunRulesList);
  auto* rules_show = rules_cmd->add_subcommand("show", "One rule as YAML (or JSON) with its state");
  rules_show->add_option("id", rule_id, "Rule id")->required();
  Add(rules_show, [this](const CommandContext& ctx) { return RunRulesShow(ctx, o_.rule_id); });
  auto* rules_validate = rules_cmd->add_subcommand("validate", "Check rule files (fields and sandboxed SQL)");
  rules_validate->add_option("files", o_.rule_files, "Rule files")->required();
  Add(rules_validate, [this](const CommandContext& ctx) { return RunRulesValidate(ctx, o_.rule_files); });
  auto* rules_test = rules_cmd->add_subcommand("test", "Run a rule against the store and print its findings");
  rules_test->add_option("rule", rule_id, "Rule id or rule file")->required();
  rules_test->add_option(
      "--since", o_.rules_test_since,
      "An on: exec rule over the exec events stored since this time (ISO-8601 or 15m, 2h, 7d)");
  Add(rules_test,
      [this](const CommandContext& ctx) { return RunRulesTest(ctx, o_.rule_id, o_.rules_test_since); });
  for (const bool enable : {true, false}) {
    auto* cmd = enable ? rules_cmd->add_subcommand("enable", "Enable a rule (kept across reloads)")
                       : rules_cmd->add_subcommand("disable", "Disable a rule (kept across reloads)");
    cmd->add_option("id", rule_id, "Rule id")->required();
    Add(
        cmd, [this, enable](const CommandContext& ctx) { return RunRulesEnable(ctx, o_.rule_id, enable); },
        Audited::kYes);
  }
  auto* rules_import =
      rules_cmd->add_subcommand("import", "Validate rule files and copy them into the rules directory");
  rules_import
      ->add_option("path", o_.import_path, "Rule file or directory, or a signed rule bundle (sentinelfleet)")
      ->required();
  Add(
      rules_import, [this](const CommandContext& ctx) { return RunRulesImport(ctx, o_.import_path); },
      Audited::kYes);
  auto* rules_export =
      rules_cmd->add_subcommand("export", "Write every rule as YAML (stdout or --output DIR)");
  rules_export->add_option("--output", o_.export_dir, "Directory to write <id>.yaml files to");
  Add(rules_export, [this](const CommandContext& ctx) { return RunRulesExport(ctx, o_.export_dir); });
  auto* rules_coverage =
      rules_cmd->add_subcommand("coverage", "The ATT&CK tactics and techniques the rules cover");
  rules_coverage->add_flag("--builtin", o_.coverage_builtin, "Only the built-in rules");
  rules_coverage->add_flag("--markdown", o_.coverage_markdown, "As the Markdown table of docs/rules.md");
  Add(rules_coverage, [this](const CommandContext& ctx) {
    return RunRulesCoverage(ctx, o_.coverage_builtin, o_.coverage_markdown);
  });
  auto* rules_convert = rules_cmd->add_subcommand(
      "convert", "Translate Sigma rules into native rules (stdout or --output DIR) without importing them");
  rules_convert->add_option("path", o_.convert_path, "Sigma rule file or directory (searched recursively)")
      ->required();
  rules_convert->add_option("--output", o_.convert_dir, "Directory to write <id>.yaml files to");
  Add(rules_convert,
      [this](const CommandContext& ctx) { return RunRulesConvert(ctx, o_.convert_path, o_.convert_dir); });
}

void Cli::AddAlerts() {
  auto* alerts_cmd =
      app_.add_subcommand("alerts", "List or show alerts (show --tree: the process tree of one)");
  alerts_cmd->require_subcommand(1);
  AlertListArgs& alert_list = o_.alert_list;
  auto* alerts_list = alerts_cmd->add_subcommand("list", "Alerts, newest first");
  alerts_list->add_option("--severity", alert_list.severity,
                          "At least this severe: low, medium, high, critical");
  alerts_list->add_option("--rule", alert_list.rule, "Only this rule's alerts");
  alerts_list->add_option("--since", alert_list.since, "From this time (ISO-8601 or 15m, 2h, 7d)");
  alerts_list->add_option("--limit", alert_list.limit, "At most N alerts");
  Add(alerts_list, [this](const CommandContext& ctx) { return RunAlertsList(ctx, o_.alert_list); });
  auto* alerts_show = alerts_cmd->add_subcommand("show", "One alert with every field");
  alerts_show->add_option("id", o_.alert_id, "Alert id")->required();
  alerts_show->add_flag("--tree", o_.alert_tree,
                        "The alert's process tree instead: ancestry, children, what each ran, exit codes, "
                        "alerts (from the store; table or json)");
  Add(alerts_show, [this](const CommandContext& ctx) {
    return o_.alert_tree ? RunAlertTree(ctx, o_.alert_id) : RunAlertsShow(ctx, o_.alert_id);
  });
  AddDlq(alerts_cmd);
}

void Cli::AddDlq(CLI::App* alerts) {
  DlqArgs& dlq = o_.dlq;
  auto* dlq_cmd = alerts->add_subcommand("dlq", "The dead-letter queue: deliveries that gave up");
  dlq_cmd->require_subcommand(1);
  auto* dlq_list = dlq_cmd->add_subcommand("list", "Dead letters, oldest first");
  dlq_list->add_option("--sink", dlq.sink, "Only this sink's dead letters");
  Add(dlq_list, [this](const CommandContext& ctx) { return RunDlqList(ctx, o_.dlq); });
  auto* dlq_retry = dlq_cmd->add_subcommand("retry", "Queue dead letters for delivery again (no network)");
  dlq_retry->add_option("ids", dlq.ids, "Dead letter ids (default: all)");
  dlq_retry->add_option("--sink", dlq.sink, "Only this sink's dead letters");
  Add(
      dlq_retry, [this](const CommandContext& ctx) { return RunDlqRetry(ctx, o_.dlq); }, Audited::kYes);
}

void Cli::AddProcess() {
  ProcessArgs& process = o_.process;
  auto* process_cmd = app_.add_subcommand(
      "process",
      "A process's tree from the store (also long exited): ancestry, children, what each ran, exit codes, "
      "alerts");
  process_cmd->add_option("pid", process.pid, "Process id")->required();
  process_cmd->add_option("--at", process.at,
                          "The process with that pid alive at this time, or the last one before it "
                          "(ISO-8601 or 15m, 2h, 7d; default: the most recent)");
  Add(process_cmd, [this](const CommandContext& ctx) { return RunProcess(ctx, o_.process); });
}

void Cli::AddAudit() {
  auto* audit_cmd = app_.add_subcommand("audit", "Verify or list the tamper-evident audit ledger");
  audit_cmd->require_subcommand(1);
  auto* audit_verify =
      audit_cmd->add_subcommand("verify", "Recompute the hash chain and signatures (exit 3 if tampered)");
  Add(audit_verify, RunAuditVerify);
  auto* audit_list = audit_cmd->add_subcommand("list", "Show the most recent audit entries");
  audit_list->add_option("--limit", o_.audit_limit, "At most N most recent entries (0: all)")
      ->capture_default_str();
  Add(audit_list, [this](const CommandContext& ctx) { return RunAuditList(ctx, o_.audit_limit); });
  auto* audit_keygen = audit_cmd->add_subcommand("keygen", "Create an Ed25519 signing key file (mode 0600)");
  audit_keygen->add_option("file", o_.keygen_path, "Private key file to create")->required();
  Add(audit_keygen, [this](const CommandContext& ctx) { return RunAuditKeygen(ctx, o_.keygen_path); });
}

void Cli::AddHealth() {
  auto* health_cmd = app_.add_subcommand(
      "health", "Component health: collector, agent, database, sinks, audit chain (exit 4 if unhealthy)");
  Add(health_cmd, RunHealth);
}

int Cli::Main(int argc, char** argv) {
  // Name an unknown command instead of CLI11's "A subcommand is required".
  if (const char* word = UnknownCommandWord(
          argc, argv, {"--config", "--database", "--format"},
          {"query", "export", "config", "rules", "alerts", "process", "audit", "health"})) {
    std::cerr << "sentinelcli: unknown command \"" << EscapeText(word)
              << "\" (expected query, export, rules, alerts, process, audit, health or config; see --help)\n";
    return kExitUsage;
  }
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app_.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  // Whatever a query asks of SQLite, the process stays bounded (SPEC §6).
  detection::SetMemoryCeiling(detection::kDefaultMemoryCeiling);
  CommandContext ctx{
      o_.global, {}, DetectTerminal(STDOUT_FILENO, o_.global.no_color), &std::cout, &std::cerr};
  // `config validate FILE` checks the file on its own: a broken layered
  // configuration must not stop it.
  if (config_validate_->parsed() && !o_.validate_file.empty())
    return RunConfigValidate(ctx, o_.validate_file);

  auto loaded = LoadCliConfig(o_.global);
  if (!loaded.ok()) {
    std::cerr << "sentinelcli: " << loaded.status().message() << "\n";
    return kExitUsage;
  }
  ctx.config = std::move(loaded).value();
  return Dispatch(ctx);
}

int Cli::Dispatch(const CommandContext& ctx) const {
  for (const Command& command : commands_) {
    if (!command.app->parsed()) continue;
    if (command.audited == Audited::kYes) {
      if (Status s = RequireCliAudit(ctx); !s.ok()) return FailRuntime(ctx, s);
    }
    return command.run(ctx);
  }
  return kExitUsage;
}

}  // namespace
}  // namespace sentinel::cli

int main(int argc, char** argv) {
  // Re-executed as a query worker (sentinel/detection/query_worker.h).
  if (auto worker = sentinel::detection::RunQueryWorkerIfRequested(argc, argv)) return *worker;
  sentinel::cli::Cli cli;
  return cli.Main(argc, argv);
}
