// sentinelcli: the operator's tool (SPEC §9). Thin: parses the command line,
// loads the configuration and hands over to commands/*.
#include <unistd.h>

#include <iostream>

#include <CLI/CLI.hpp>

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
#include "sentinelcli/commands/query.h"
#include "sentinelcli/commands/rules_cmd.h"

namespace {}

int main(int argc, char** argv) {
  // Re-executed as a query worker (sentinel/detection/query_worker.h).
  if (auto worker = sentinel::detection::RunQueryWorkerIfRequested(argc, argv)) return *worker;
  using namespace sentinel::cli;
  CLI::App app{"sentinelcli: query and manage SentinelD"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", std::string("sentinelcli ") + sentinel::kVersion);

  GlobalOptions global;
  app.add_option("--config", global.config_file, "Configuration file (layered over the defaults)");
  app.add_option("--database", global.database, "Event store path (overrides database.path)");
  app.add_option("--format", global.format, "Output format: table, json or csv");
  app.add_flag("--json", global.json, "Same as --format json");
  app.add_flag("--no-color", global.no_color, "No colour in table output");

  QueryArgs query;
  auto* query_cmd = app.add_subcommand("query", "Run a read-only SQL query over the process history");
  query_cmd->add_option("sql", query.sql, "One SELECT statement")->required();
  query_cmd->add_option("--param", query.params, "Named parameter NAME=VALUE (repeatable)");
  query_cmd->add_option("--limit", query.limit, "At most N rows");
  query_cmd->add_option("--offset", query.offset, "Skip the first N rows");

  ExportArgs exp;
  auto* export_cmd = app.add_subcommand("export", "Export a table as JSON lines, CSV or JSON");
  export_cmd->add_option("table", exp.table, "Table to export")->required();
  export_cmd->add_option("--since", exp.since, "From this time (ISO-8601 or 15m, 2h, 7d)");
  export_cmd->add_option("--until", exp.until, "Before this time (ISO-8601 or 15m, 2h, 7d)");
  export_cmd->add_option("--format", exp.format, "jsonl (default), csv or json");
  export_cmd->add_option("--output", exp.output, "Write to FILE instead of stdout");

  auto* config_cmd = app.add_subcommand("config", "Show or validate the configuration");
  config_cmd->require_subcommand(1);
  auto* config_show = config_cmd->add_subcommand("show", "Print the effective configuration");
  std::string validate_file;
  auto* config_validate = config_cmd->add_subcommand("validate", "Validate a configuration file");
  config_validate->add_option("file", validate_file, "File to validate (default: the layered configuration)");

  auto* rules_cmd =
      app.add_subcommand("rules", "List, show, validate, test, enable, disable, import or export rules");
  rules_cmd->require_subcommand(1);
  auto* rules_list = rules_cmd->add_subcommand("list", "The rule set the agent loads, with its stored state");
  std::string rule_id;
  auto* rules_show = rules_cmd->add_subcommand("show", "One rule as YAML (or JSON) with its state");
  rules_show->add_option("id", rule_id, "Rule id")->required();
  std::vector<std::string> rule_files;
  auto* rules_validate = rules_cmd->add_subcommand("validate", "Check rule files (fields and sandboxed SQL)");
  rules_validate->add_option("files", rule_files, "Rule files")->required();
  auto* rules_test = rules_cmd->add_subcommand("test", "Run a rule against the store and print its findings");
  rules_test->add_option("rule", rule_id, "Rule id or rule file")->required();
  auto* rules_enable = rules_cmd->add_subcommand("enable", "Enable a rule (kept across reloads)");
  rules_enable->add_option("id", rule_id, "Rule id")->required();
  auto* rules_disable = rules_cmd->add_subcommand("disable", "Disable a rule (kept across reloads)");
  rules_disable->add_option("id", rule_id, "Rule id")->required();
  std::string import_path;
  auto* rules_import =
      rules_cmd->add_subcommand("import", "Validate rule files and copy them into the rules directory");
  rules_import->add_option("path", import_path, "Rule file or directory")->required();
  std::string export_dir;
  auto* rules_export =
      rules_cmd->add_subcommand("export", "Write every rule as YAML (stdout or --output DIR)");
  rules_export->add_option("--output", export_dir, "Directory to write <id>.yaml files to");

  auto* alerts_cmd = app.add_subcommand("alerts", "List or show alerts");
  alerts_cmd->require_subcommand(1);
  AlertListArgs alert_list;
  auto* alerts_list = alerts_cmd->add_subcommand("list", "Alerts, newest first");
  alerts_list->add_option("--severity", alert_list.severity,
                          "At least this severe: low, medium, high, critical");
  alerts_list->add_option("--rule", alert_list.rule, "Only this rule's alerts");
  alerts_list->add_option("--since", alert_list.since, "From this time (ISO-8601 or 15m, 2h, 7d)");
  alerts_list->add_option("--limit", alert_list.limit, "At most N alerts");
  std::string alert_id;
  auto* alerts_show = alerts_cmd->add_subcommand("show", "One alert with every field");
  alerts_show->add_option("id", alert_id, "Alert id")->required();
  DlqArgs dlq;
  auto* dlq_cmd = alerts_cmd->add_subcommand("dlq", "The dead-letter queue: deliveries that gave up");
  dlq_cmd->require_subcommand(1);
  auto* dlq_list = dlq_cmd->add_subcommand("list", "Dead letters, oldest first");
  dlq_list->add_option("--sink", dlq.sink, "Only this sink's dead letters");
  auto* dlq_retry = dlq_cmd->add_subcommand("retry", "Queue dead letters for delivery again (no network)");
  dlq_retry->add_option("ids", dlq.ids, "Dead letter ids (default: all)");
  dlq_retry->add_option("--sink", dlq.sink, "Only this sink's dead letters");

  auto* audit_cmd = app.add_subcommand("audit", "Verify or list the tamper-evident audit ledger");
  audit_cmd->require_subcommand(1);
  auto* audit_verify =
      audit_cmd->add_subcommand("verify", "Recompute the hash chain and signatures (exit 3 if tampered)");
  int64_t audit_limit = 20;
  auto* audit_list = audit_cmd->add_subcommand("list", "Show the most recent audit entries");
  audit_list->add_option("--limit", audit_limit, "At most N most recent entries (0: all)")
      ->capture_default_str();
  std::string keygen_path;
  auto* audit_keygen = audit_cmd->add_subcommand("keygen", "Create an Ed25519 signing key file (mode 0600)");
  audit_keygen->add_option("file", keygen_path, "Private key file to create")->required();

  auto* health_cmd = app.add_subcommand(
      "health", "Component health: collector, agent, database, sinks, audit chain (exit 4 if unhealthy)");

  // Name an unknown command instead of CLI11's "A subcommand is required".
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" || a == "--database" || a == "--format") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    if (a != "query" && a != "export" && a != "config" && a != "rules" && a != "alerts" && a != "audit" &&
        a != "health") {
      std::cerr << "sentinelcli: unknown command \"" << a
                << "\" (expected query, export, rules, alerts, audit, health or config; see --help)\n";
      return kExitUsage;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  // Whatever a query asks of SQLite, the process stays bounded (SPEC §6).
  sentinel::detection::SetMemoryCeiling(sentinel::detection::kDefaultMemoryCeiling);
  CommandContext ctx{global, {}, DetectTerminal(STDOUT_FILENO, global.no_color), &std::cout, &std::cerr};
  // `config validate FILE` checks the file on its own: a broken layered
  // configuration must not stop it.
  if (config_validate->parsed() && !validate_file.empty()) return RunConfigValidate(ctx, validate_file);

  auto loaded = LoadCliConfig(global);
  if (!loaded.ok()) {
    std::cerr << "sentinelcli: " << loaded.status().message() << "\n";
    return kExitUsage;
  }
  ctx.config = std::move(loaded).value();

  // Actions recorded in the audit ledger: on a signed ledger they need the agent (decisions.md).
  if (query_cmd->parsed() || rules_enable->parsed() || rules_disable->parsed() || rules_import->parsed() ||
      dlq_retry->parsed()) {
    if (sentinel::Status s = RequireCliAudit(ctx); !s.ok()) return FailRuntime(ctx, s);
  }
  if (query_cmd->parsed()) return RunQuery(ctx, query);
  if (export_cmd->parsed()) return RunExport(ctx, exp);
  if (config_show->parsed()) return RunConfigShow(ctx);
  if (config_validate->parsed()) return RunConfigValidate(ctx, "");
  if (rules_list->parsed()) return RunRulesList(ctx);
  if (rules_show->parsed()) return RunRulesShow(ctx, rule_id);
  if (rules_validate->parsed()) return RunRulesValidate(ctx, rule_files);
  if (rules_test->parsed()) return RunRulesTest(ctx, rule_id);
  if (rules_enable->parsed()) return RunRulesEnable(ctx, rule_id, true);
  if (rules_disable->parsed()) return RunRulesEnable(ctx, rule_id, false);
  if (rules_import->parsed()) return RunRulesImport(ctx, import_path);
  if (rules_export->parsed()) return RunRulesExport(ctx, export_dir);
  if (alerts_list->parsed()) return RunAlertsList(ctx, alert_list);
  if (alerts_show->parsed()) return RunAlertsShow(ctx, alert_id);
  if (dlq_list->parsed()) return RunDlqList(ctx, dlq);
  if (dlq_retry->parsed()) return RunDlqRetry(ctx, dlq);
  if (health_cmd->parsed()) return RunHealth(ctx);
  if (audit_verify->parsed()) return RunAuditVerify(ctx);
  if (audit_list->parsed()) return RunAuditList(ctx, audit_limit);
  if (audit_keygen->parsed()) return RunAuditKeygen(ctx, keygen_path);
  return kExitUsage;
}
