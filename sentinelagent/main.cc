// sentinelagent: supervises procmond, runs the detection rules on a schedule,
// turns findings into deduplicated alerts and delivers them through the
// configured sinks (SPEC §1, §6, §7). The agent itself is sentinelagent/agent.h;
// this file parses the flags and drives it.
//
// Exit codes: 0 success (including SIGTERM/SIGINT), 1 runtime failure,
// 2 bad usage or configuration.
#include <sys/stat.h>

#include <string>

#include <CLI/CLI.hpp>

#include "sentinel/base/features.h"
#include "sentinel/base/version.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/sql_guard.h"
#include "sentinelagent/agent.h"

int main(int argc, char** argv) {
  using namespace sentinel;
  // Re-executed as a rule worker (sentinel/detection/query_worker.h).
  if (auto worker = detection::RunQueryWorkerIfRequested(argc, argv)) return *worker;
  ::umask(027);
  // Rule queries cannot grow the agent without bound (SPEC §6).
  detection::SetMemoryCeiling(detection::kDefaultMemoryCeiling);
  CLI::App app{"sentinelagent: SentinelD detection and alerting agent"};
  agent::AgentFlags flags;
  app.add_option("--config", flags.config_file, "Configuration file (layered over the defaults)");
  app.add_option("--database", flags.database, "Event store path (database.path)");
  app.add_flag("--once", flags.once, "Run every enabled rule once, store the alerts and exit");
  app.add_flag("--no-collector", flags.no_collector, "Do not spawn and supervise procmond");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error|critical|off");
  app.set_version_flag("--version", std::string("sentinelagent ") + kVersion + "\n" + FeaturesLine());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : agent::kExitUsage;
  }
  agent::Agent sentinelagent(flags);
  if (auto failed = sentinelagent.Start()) return *failed;
  return flags.once ? sentinelagent.RunOnce() : sentinelagent.Run();
}
