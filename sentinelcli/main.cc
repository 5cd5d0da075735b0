// sentinelcli: the operator's tool (SPEC §9). Thin: parses the command line,
// loads the configuration and hands over to commands/*.
#include <unistd.h>

#include <iostream>

#include <CLI/CLI.hpp>

#include "sentinelcli/commands/config_cmd.h"
#include "sentinelcli/commands/context.h"
#include "sentinelcli/commands/export.h"
#include "sentinelcli/commands/query.h"

namespace {
constexpr const char* kVersion = "0.1.0";
}

int main(int argc, char** argv) {
  using namespace sentinel::cli;
  CLI::App app{"sentinelcli: query and manage SentinelD"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", std::string("sentinelcli ") + kVersion);

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

  // Name an unknown command instead of CLI11's "A subcommand is required".
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" || a == "--database" || a == "--format") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    if (a != "query" && a != "export" && a != "config") {
      std::cerr << "sentinelcli: unknown command \"" << a << "\" (expected query, export or config; see --help)\n";
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

  if (query_cmd->parsed()) return RunQuery(ctx, query);
  if (export_cmd->parsed()) return RunExport(ctx, exp);
  if (config_show->parsed()) return RunConfigShow(ctx);
  if (config_validate->parsed()) return RunConfigValidate(ctx, "");
  return kExitUsage;
}
