// procmond: the privileged collector. Enumerates processes from /proc and
// writes one scan per interval to the event store (SPEC §5).
//
// Exit codes: 0 success (including SIGTERM/SIGINT), 1 runtime failure,
// 2 bad usage or configuration.
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "procmond/batch_writer.h"
#include "procmond/collector.h"
#include "procmond/control.h"
#include "procmond/platform/linux/linux_process_source.h"
#include "procmond/privileges.h"
#include "procmond/realtime/event_writer.h"
#include "procmond/realtime/realtime_source.h"
#include "procmond/version.h"
#include "sentinel/audit/trail.h"
#include "sentinel/base/strings.h"
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
  sigaddset(&sigs, procmond::kScanNowSignal);  // scan-now over the control socket
  sigprocmask(SIG_BLOCK, &sigs, nullptr);

  // The target user is part of the configuration: check it before any store
  // is created or opened.
  if (geteuid() == 0) {
    auto user = procmond::LookupUser(cfg.privileges.user);
    if (!user.ok()) {
      std::fprintf(stderr, "procmond: %s\n", user.status().message().c_str());
      return kExitUsage;
    }
    // Another name for root (the schema refuses "root" itself).
    if (user->first == 0) {
      std::fprintf(stderr,
                   "procmond: privileges.user: expected an unprivileged user, got %s (uid 0 is root)\n",
                   QuoteForMessage(cfg.privileges.user).c_str());
      return kExitUsage;
    }
  }

  // The control socket (procmond/control.h), bound while still root and
  // before any store is touched: a live procmond.sock means another
  // collector is running. Any other failure only turns the socket off.
  procmond::ScanStats scan_stats;
  scan_stats.started_at_ms = MonotonicMs();
  std::unique_ptr<procmond::ProcmondControl> control;
  if (!flags.once) {
    auto listening = procmond::ProcmondControl::Listen(cfg, &scan_stats);
    if (listening.ok()) {
      control = std::move(listening).value();
    } else if (listening.status().code() == StatusCode::kAlreadyExists) {
      std::fprintf(stderr, "procmond: %s\n", listening.status().message().c_str());
      return kExitRuntime;
    } else {
      telemetry::LogWarn("control socket unavailable: health, stats, scan-now and reload over IPC are off",
                         {{"error", listening.status().message()}});
    }
  }

  // A data directory procmond creates itself belongs to the collector's user.
  std::string data_dir = std::filesystem::path(cfg.database.path).parent_path().string();
  std::error_code ec;
  const bool data_dir_existed = data_dir.empty() || std::filesystem::exists(data_dir, ec);

  // A bad audit signing key is a configuration error: found before any
  // store is created.
  if (!cfg.database.audit_signing_key.empty()) {
    if (auto key = audit::Signer::LoadPrivateKeyFile(cfg.database.audit_signing_key); !key.ok()) {
      std::fprintf(stderr, "procmond: database.audit_signing_key: %s\n", key.status().message().c_str());
      return kExitUsage;
    }
  }

  // Real-time events (docs/realtime.md): loading the BPF program or
  // subscribing to the proc connector needs root, so the source is opened
  // now, before any store is touched and before the privilege drop. A source
  // asked for by name that cannot be opened stops procmond (exit 1).
  std::unique_ptr<procmond::RealtimeSource> realtime;
  if (!flags.once) {
    procmond::RealtimeOptions ropts;
    ropts.mode = cfg.collection.realtime_events ? cfg.collection.realtime_source : "off";
    if (!cfg.collection.realtime_events && cfg.collection.realtime_source != "off") {
      LogInfo("real-time events off", {{"reason", "collection.realtime_events: false"}});
    }
    auto opened = procmond::OpenRealtimeSource(ropts, &procmond::CurrentRealtimeStats());
    if (!opened.ok()) {
      LogError("cannot open the real-time event source", {{"error", opened.status().message()}});
      std::fprintf(stderr, "procmond: %s\n", opened.status().message().c_str());
      return kExitRuntime;
    }
    realtime = std::move(*opened);
  }

  // How scans sample processes (docs/architecture.md): the BPF task
  // iterator is loaded as root, so now; asked for by name and not
  // available, procmond stops (exit 1); auto falls back to /proc, saying why.
  std::unique_ptr<procmond::TaskSampler> sampler;
  if (cfg.collection.scan_source != "proc") {
    auto opened = procmond::OpenBpfTaskSampler();
    if (opened.ok()) {
      sampler = std::move(*opened);
    } else if (cfg.collection.scan_source == "ebpf") {
      const std::string msg = "collection.scan_source: ebpf cannot be used: " + opened.status().message();
      LogError("cannot open the scan source", {{"error", msg}});
      std::fprintf(stderr, "procmond: %s\n", msg.c_str());
      return kExitRuntime;
    } else {
      telemetry::LogWarn("scans read /proc: the BPF task iterator is not available",
                         {{"reason", opened.status().message()}});
    }
  }
  LogInfo("scan source", {{"source", sampler ? "ebpf" : "proc"}});

  // Both of procmond's connections append; a small page cache each keeps
  // ~3 MiB of RSS off the collector (SQLite's default is 2,000 KiB each).
  constexpr int64_t kCollectorCacheKib = 512;
  auto store = storage::EventStore::Open(
      {cfg.database.path, storage::OpenMode::kReadWrite, cfg.database.busy_timeout_ms, kCollectorCacheKib});
  if (!store.ok()) {
    LogError("cannot open event store", {{"error", store.status().message()}});
    std::fprintf(stderr, "procmond: %s\n", store.status().message().c_str());
    return kExitRuntime;
  }

  // Real-time events are written on their own connection to the same WAL
  // database (the scan writer owns the first); the busy timeout serializes
  // the two writers.
  std::unique_ptr<storage::EventStore> event_store;
  if (realtime) {
    auto opened = storage::EventStore::Open(
        {cfg.database.path, storage::OpenMode::kReadWrite, cfg.database.busy_timeout_ms, kCollectorCacheKib});
    if (!opened.ok()) {
      LogError("cannot open the event store for real-time events", {{"error", opened.status().message()}});
      std::fprintf(stderr, "procmond: %s\n", opened.status().message().c_str());
      return kExitRuntime;
    }
    event_store = std::move(*opened);
  }

  // The audit ledger: opened (created) before the drop so its files can be
  // handed to the collector's user. A ledger that cannot be opened does not
  // stop collection; it is reported loudly.
  const std::string audit_dir = std::filesystem::path(cfg.database.audit_path).parent_path().string();
  const bool audit_dir_existed = audit_dir.empty() || std::filesystem::exists(audit_dir, ec);
  std::unique_ptr<audit::AuditTrail> trail;
  {
    auto opened = audit::AuditTrail::OpenForComponent(
        "procmond", cfg.database.audit_path, cfg.database.busy_timeout_ms, cfg.database.audit_signing_key);
    if (!opened.ok() && opened.status().code() == StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "procmond: %s\n", opened.status().message().c_str());
      return kExitUsage;
    }
    trail =
        opened.ok() ? std::move(*opened) : audit::AuditTrail::Disabled("procmond", opened.status().message());
  }
  trail->Record("component_start", {{"component", "procmond"},
                                    {"version", procmond::kVersion},
                                    {"pid", getpid()},
                                    {"uid", getuid()},
                                    {"once", flags.once}});
  trail->Record("config_loaded", {{"config_hash", loaded->hash}, {"sources", loaded->sources}});

  // Everything that needs root is open; drop to privileges.user.
  procmond::PrivilegeOptions popts;
  popts.user = cfg.privileges.user;
  popts.keep_capabilities = cfg.privileges.keep_capabilities;
  if (control) popts.chown_paths = control->ChownPaths();
  for (const char* suffix : {"", "-wal", "-shm"}) popts.chown_paths.push_back(cfg.database.path + suffix);
  if (!data_dir_existed) popts.chown_paths.push_back(data_dir);
  if (trail->enabled()) {
    for (const char* suffix : {"", "-wal", "-shm"})
      popts.chown_paths.push_back(cfg.database.audit_path + suffix);
    if (!audit_dir_existed && audit_dir != data_dir) popts.chown_paths.push_back(audit_dir);
  }
  auto priv = procmond::DropPrivileges(popts);
  if (!priv.ok()) {
    LogError("cannot drop privileges", {{"error", priv.status().message()}});
    std::fprintf(stderr, "procmond: cannot drop privileges: %s\n", priv.status().message().c_str());
    return priv.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime;
  }
  if (priv->dropped) {
    auto caps = procmond::ReadCapabilityState(getpid());
    LogInfo("privileges dropped", {{"user", priv->user},
                                   {"uid", priv->uid},
                                   {"gid", priv->gid},
                                   {"kept_capabilities", priv->kept},
                                   {"no_new_privs", caps.ok() && caps->no_new_privs}});
    trail->Record("privileges_dropped", {{"user", priv->user},
                                         {"uid", priv->uid},
                                         {"gid", priv->gid},
                                         {"kept_capabilities", priv->kept},
                                         {"no_new_privs", caps.ok() && caps->no_new_privs}});
  } else {
    telemetry::LogWarn("running without root: some data will be missing",
                       {{"uid", priv->uid}, {"not_visible", priv->missing}});
    trail->Record("privileges_not_dropped",
                  {{"uid", priv->uid}, {"reason", "not started as root"}, {"not_visible", priv->missing}});
  }

  // Never outlive the agent that started us (the drop cleared PDEATHSIG).
  if (!procmond::WatchSupervisor()) {
    LogInfo("procmond stopping", {{"reason", "its supervising sentinelagent is gone"}});
    trail->Record("component_stop",
                  {{"component", "procmond"}, {"clean", true}, {"reason", "supervisor gone"}});
    return 0;
  }

  procmond::LinuxProcessSourceOptions source_opts;
  source_opts.hash_executables = cfg.collection.hash_executables;
  source_opts.max_hash_bytes = static_cast<uint64_t>(cfg.collection.max_hash_bytes);
  procmond::LinuxProcessSource source(source_opts);
  if (sampler) source.SetTaskSampler(std::move(sampler));
  scan_stats.scan_source_ebpf = source.sampling_from_kernel();
  procmond::Collector collector(source, **store);
  // The writer thread owns the store from here on.
  procmond::BatchWriter writer(
      [&store](const models::ScanRecord& scan) { return (*store)->WriteScan(scan); },
      [&scan_stats](const models::ScanRecord& scan, int64_t scan_id, int64_t write_ms) {
        scan_stats.RecordWritten(scan, scan_id, write_ms);
        LogInfo("scan written", {{"scan_id", scan_id},
                                 {"processes", scan.processes.size()},
                                 {"errors", scan.errors},
                                 {"hash_cache_hits", scan.hash_cache_hits},
                                 {"hash_cache_misses", scan.hash_cache_misses},
                                 {"scan_ms", scan.completed_at_ms - scan.started_at_ms},
                                 {"write_ms", write_ms}});
      },
      procmond::BatchWriterOptions{},
      [&collector](models::ScanRecord&& written) { collector.Recycle(std::move(written)); });
  if (control) {
    if (Status st = control->Start(); st.ok()) {
      LogInfo("control socket listening", {{"path", control->path()}});
    } else {
      telemetry::LogWarn("control socket not started", {{"error", st.message()}});
    }
  }
  // After the drop the source runs on its own thread; the BPF links and
  // the netlink subscription live on in its file descriptors.
  std::unique_ptr<procmond::EventWriter> event_writer;
  if (realtime) {
    procmond::EventWriterOptions wopts;
    wopts.hash_executables = cfg.collection.hash_executables;
    wopts.max_hash_bytes = static_cast<uint64_t>(cfg.collection.max_hash_bytes);
    event_writer = std::make_unique<procmond::EventWriter>(
        [&event_store](const std::vector<models::ProcessEvent>& events) {
          return event_store->WriteEvents(events);
        },
        &procmond::CurrentRealtimeStats(), wopts);
    if (Status st = realtime->Start(
            [&event_writer](procmond::RealtimeEvent&& ev) { event_writer->Push(std::move(ev)); });
        !st.ok()) {
      LogError("cannot start the real-time event source", {{"error", st.message()}});
      std::fprintf(stderr, "procmond: %s\n", st.message().c_str());
      return kExitRuntime;
    }
    LogInfo("real-time event source started", {{"source", realtime->name()}, {"uid", getuid()}});
    trail->Record("realtime_source_started", {{"source", realtime->name()}});
  }
  auto stop_realtime = [&realtime, &event_writer](int64_t timeout_ms) {
    if (!realtime) return;
    realtime->Stop();
    Status st = event_writer->Stop(timeout_ms);
    auto s = procmond::CurrentRealtimeStats().Get();
    LogInfo("real-time events stopped", {{"source", s.source},
                                         {"received_exec", s.received_exec},
                                         {"received_exit", s.received_exit},
                                         {"received_fork", s.received_fork},
                                         {"stored_exec", s.stored_exec},
                                         {"stored_exit", s.stored_exit},
                                         {"lost", s.lost_total()},
                                         {"incomplete", s.incomplete}});
    if (!st.ok()) LogError("real-time events lost at shutdown", {{"error", st.message()}});
  };
  auto finish = [&writer, &trail, &stop_realtime](int64_t timeout_ms) {
    stop_realtime(timeout_ms);
    Status st = writer.Stop(timeout_ms);
    trail->Record("component_stop", {{"component", "procmond"}, {"clean", st.ok()}});
    if (!st.ok()) {
      LogError("scans lost at shutdown", {{"error", st.message()}});
      std::fprintf(stderr, "procmond: %s\n", st.message().c_str());
      return kExitRuntime;
    }
    return 0;
  };

  while (true) {
    auto scan = collector.Collect();
    if (auto failure = source.TakeSamplerFailure()) {
      scan_stats.scan_source_ebpf = false;
      telemetry::LogWarn("the BPF task iterator failed; scans read /proc from now on", {{"error", *failure}});
      trail->Record("scan_source_changed", {{"source", "proc"}, {"reason", *failure}});
    }
    if (scan.ok()) {
      writer.Submit(std::move(scan).value());  // blocks while the writer is behind
    } else {
      scan_stats.scans_failed++;
      LogError("scan failed", {{"error", scan.status().message()}});
      if (flags.once) {
        std::fprintf(stderr, "procmond: scan failed: %s\n", scan.status().message().c_str());
        finish(1000);
        return kExitRuntime;
      }
    }
    if (flags.once) return finish(30'000);

    timespec wait{static_cast<time_t>(cfg.collection.interval_secs), 0};
    const int64_t deadline = MonotonicMs() + cfg.collection.interval_secs * 1000;
    while (true) {
      int sig = sigtimedwait(&sigs, nullptr, &wait);
      if (sig == SIGTERM || sig == SIGINT) {
        LogInfo("procmond stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        return finish(10'000);
      }
      if (sig == procmond::kScanNowSignal) {
        LogInfo("scan requested over the control socket");
        break;
      }
      if (sig == SIGHUP) {
        auto reloaded = LoadConfig(flags);
        if (reloaded.ok()) {
          cfg.collection = reloaded->config.collection;
          cfg.telemetry = reloaded->config.telemetry;
          InitLog(cfg);
          source.SetHashing(cfg.collection.hash_executables,
                            static_cast<uint64_t>(cfg.collection.max_hash_bytes));
          LogInfo("configuration reloaded", {{"config_hash", reloaded->hash}});
          trail->Record("config_loaded",
                        {{"config_hash", reloaded->hash}, {"sources", reloaded->sources}, {"reload", true}});
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
  // One malloc arena for the whole daemon: its few threads (collector,
  // scan writer, real-time reader and writer) each got an arena of their
  // own, whose free memory no other thread could reuse — measured ~14 MiB of
  // RSS at 10,000 processes. They allocate little and seldom contend.
  ::mallopt(M_ARENA_MAX, 1);
  // Large blocks (the scan's record array, the kernel sample, libbpf's
  // copy of the kernel BTF while a BPF program loads) always get their own
  // mapping, returned whole when freed, instead of glibc's adaptive
  // threshold moving them into the heap where they fragment it and stay
  // resident; and a free heap top over 1 MiB goes back at once.
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
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
