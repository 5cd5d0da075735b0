// procmond: the privileged collector. Enumerates processes from /proc and
// writes one scan per interval to the event store (SPEC §5).
//
// Exit codes: 0 success (including SIGTERM/SIGINT), 1 runtime failure,
// 2 bad usage or configuration.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include <CLI/CLI.hpp>

#include "procmond/collector.h"
#include "procmond/platform/linux/linux_process_source.h"
#include "procmond/version.h"
#include "sentinel/base/time.h"
#include "sentinel/config/config.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace {

using namespace sentinel;
using telemetry::LogError;
using telemetry::LogInfo;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

struct Flags {
  std::string config_file;
  std::string database;
  std::string interval;
  bool once = false;
  std::string log_level;
};

Result<config::LoadedConfig> LoadConfig(const Flags& f) {
  config::LoadOptions opts;
  opts.optional_files = config::DefaultFiles();
  if (!f.config_file.empty()) opts.explicit_file = f.config_file;
  opts.environment = config::CurrentEnvironment();
  if (!f.database.empty()) opts.overrides.push_back({"database.path", f.database});
  if (!f.interval.empty()) opts.overrides.push_back({"collection.interval_secs", f.interval});
  if (!f.log_level.empty()) opts.overrides.push_back({"telemetry.log_level", f.log_level});
  return config::Load(opts);
}

void InitLog(const config::Config& c) {
  auto level = telemetry::ParseLogLevel(c.telemetry.log_level);
  auto format = telemetry::ParseLogFormat(c.telemetry.log_format);
  telemetry::InitLogging("procmond", level.ok() ? *level : telemetry::LogLevel::kInfo,
                         format.ok() ? *format : telemetry::LogFormat::kJson);
}

int Run(const Flags& flags) {
  auto loaded = LoadConfig(flags);
  if (!loaded.ok()) {
    std::fprintf(stderr, "procmond: %s\n", loaded.status().message().c_str());
    return kExitUsage;
  }
  config::Config cfg = loaded->config;
  InitLog(cfg);
  LogInfo("procmond starting", {{"version", procmond::kVersion},
                                {"pid", getpid()},
                                {"uid", getuid()},
                                {"config_hash", loaded->hash},
                                {"config_sources", loaded->sources},
                                {"database", cfg.database.path}});

  // Block the signals we handle; they are taken synchronously between scans.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);

  auto store = storage::EventStore::Open(
      {cfg.database.path, storage::OpenMode::kReadWrite, cfg.database.busy_timeout_ms});
  if (!store.ok()) {
    LogError("cannot open event store", {{"error", store.status().message()}});
    std::fprintf(stderr, "procmond: %s\n", store.status().message().c_str());
    return kExitRuntime;
  }
  procmond::LinuxProcessSource source;
  procmond::Collector collector(source, **store);

  while (true) {
    auto summary = collector.RunScan();
    if (summary.ok()) {
      LogInfo("scan written", {{"scan_id", summary->scan_id},
                               {"processes", summary->processes},
                               {"errors", summary->errors},
                               {"duration_ms", summary->duration_ms}});
    } else {
      LogError("scan failed", {{"error", summary.status().message()}});
      if (flags.once) {
        std::fprintf(stderr, "procmond: scan failed: %s\n", summary.status().message().c_str());
        return kExitRuntime;
      }
    }
    if (flags.once) return 0;

    timespec wait{static_cast<time_t>(cfg.collection.interval_secs), 0};
    const int64_t deadline = MonotonicMs() + cfg.collection.interval_secs * 1000;
    while (true) {
      int sig = sigtimedwait(&sigs, nullptr, &wait);
      if (sig == SIGTERM || sig == SIGINT) {
        LogInfo("procmond stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        return 0;
      }
      if (sig == SIGHUP) {
        auto reloaded = LoadConfig(flags);
        if (reloaded.ok()) {
          cfg.collection = reloaded->config.collection;
          cfg.telemetry = reloaded->config.telemetry;
          InitLog(cfg);
          LogInfo("configuration reloaded", {{"config_hash", reloaded->hash}});
        } else {
          LogError("configuration reload refused; keeping the running configuration",
                   {{"error", reloaded.status().message()}});
        }
      }
      if (sig < 0 && errno == EAGAIN) break;  // interval elapsed
      int64_t left = deadline - MonotonicMs();
      if (left <= 0) break;
      wait = {static_cast<time_t>(left / 1000), static_cast<long>((left % 1000) * 1'000'000)};
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::umask(027);
  CLI::App app{"procmond: SentinelD process collector"};
  Flags flags;
  app.add_option("--config", flags.config_file, "Configuration file (layered over the defaults)");
  app.add_option("--database", flags.database, "Event store path (database.path)");
  app.add_option("--interval", flags.interval, "Scan interval in seconds (collection.interval_secs)");
  app.add_flag("--once", flags.once, "Run one scan, write it and exit");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error|critical|off");
  app.set_version_flag("--version", std::string("procmond ") + sentinel::procmond::kVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return Run(flags);
}
