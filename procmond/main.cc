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
#include "sentinel/audit/signer.h"
#include "sentinel/audit/trail.h"
#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/base/version.h"
#include "sentinel/config/bootstrap.h"
#include "sentinel/config/config.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace {

using namespace sentinel;
using telemetry::LogError;
using telemetry::LogInfo;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr timespec kNoWait{0, 0};

struct Flags {
  std::string config_file;
  std::string database;
  std::string interval;
  bool once = false;
  std::string log_level;
};

Result<config::LoadedConfig> LoadConfig(const Flags& f) {
  return config::LoadProgramConfig({f.config_file,
                                    {{"database.path", f.database},
                                     {"collection.interval_secs", f.interval},
                                     {"telemetry.log_level", f.log_level}}});
}

void InitLog(const config::Config& c) {
  config::InitProgramLogging("procmond", c);
}

// After a SIGHUP: says which changed keys wait for a restart, and records what now runs
// (config_hash: the effective configuration; loaded_hash: the files as read).
void ReportReload(audit::AuditTrail& trail, const config::Config& effective,
                  const config::LoadedConfig& loaded, const std::vector<std::string>& kept) {
  const std::string hash = config::Hash(effective);
  if (!kept.empty()) {
    telemetry::LogWarn(Join(kept, ", ") + " changed, takes effect at restart; running value kept",
                       {{"keys", kept}});
  }
  LogInfo(kept.empty() ? "configuration reloaded" : "configuration reloaded except restart-only keys",
          {{"config_hash", hash}, {"loaded_hash", loaded.hash}, {"restart_pending", kept}});
  trail.Record("config_loaded", {{"config_hash", hash},
                                 {"loaded_hash", loaded.hash},
                                 {"sources", loaded.sources},
                                 {"reload", true},
                                 {"restart_pending", kept}});
}

int Run(const Flags& flags) {
  auto loaded = LoadConfig(flags);
  if (!loaded.ok()) {
    std::fprintf(stderr, "procmond: %s\n", loaded.status().message().c_str());
    return kExitUsage;
  }
  config::Config cfg = loaded->config;
  InitLog(cfg);
  LogInfo("procmond starting", {{"version", sentinel::kVersion},
                                {"pid", getpid()},
                                {"uid", getuid()},
                                {"config_hash", loaded->hash},
                                {"config_sources", loaded->sources},
                                {"database", cfg.database.path}});

  const uid_t start_uid = getuid();

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
  // collector is running, and a link planted in its place or in place of its
  // directory is refused (exit 1). Any other failure only turns the socket off.
  procmond::ScanStats scan_stats;
  scan_stats.started_at_ms = MonotonicMs();
  std::unique_ptr<procmond::ProcmondControl> control;
  if (!flags.once) {
    auto listening = procmond::ProcmondControl::Listen(cfg, &scan_stats);
    if (listening.ok()) {
      control = std::move(listening).value();
    } else if (listening.status().code() == StatusCode::kAlreadyExists || IsRefusedPath(listening.status())) {
      std::fprintf(stderr, "procmond: %s\n", listening.status().message().c_str());
      return kExitRuntime;
    } else {
      telemetry::LogWarn("control socket unavailable: health, stats, scan-now and reload over IPC are off",
                         {{"error", listening.status().message()}});
    }
  }

  // The audit signing key is read now, as root (it is root's, mode 0600),
  // and kept for the ledger opened later. A bad key is a configuration
  // error (exit 2); a symbolic link in its place is refused (exit 1).
  std::shared_ptr<const audit::Signer> signer;
  if (!cfg.database.audit_signing_key.empty()) {
    auto key = audit::Signer::LoadPrivateKeyFile(cfg.database.audit_signing_key);
    if (!key.ok()) {
      std::fprintf(stderr, "procmond: database.audit_signing_key: %s\n", key.status().message().c_str());
      return IsRefusedPath(key.status()) ? kExitRuntime : kExitUsage;
    }
    signer = std::move(*key);
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

  // --once writes nothing when a store it would write cannot be used: a file
  // that is not ours, newer, truncated or unreadable (the ledger included,
  // which the daemon would run without) stops the run, naming it.
  if (flags.once) {
    for (const auto& [kind, path] : {std::pair{storage::DatabaseKind::kEvents, cfg.database.path},
                                     std::pair{storage::DatabaseKind::kAudit, cfg.database.audit_path}}) {
      if (Status s = storage::CheckStoreFile(kind, path); !s.ok()) {
        LogError("refusing to run", {{"error", s.message()}});
        std::fprintf(stderr, "procmond: %s\n", s.message().c_str());
        return kExitRuntime;
      }
    }
  }

  // The stores (issue 14, docs/decisions.md). Their directories usually
  // belong to privileges.user, who could swap any name there for a link to
  // a file of root's: a store in such a directory is opened only after the
  // drop, with that user's rights, and whatever SQLite creates beside it is
  // created by that user. Only a store in a directory that nobody but root
  // can change is opened (and created) as root, then handed over through
  // descriptors that follow no link (base/files.h). Missing directories are
  // created by root and given to the user.
  const bool dropping = geteuid() == 0;
  std::vector<std::string> chown_paths;
  if (control) chown_paths = control->ChownPaths();
  auto open_as_root = [&](const std::string& store_path) -> Result<bool> {
    if (!dropping) return false;
    std::string dir = std::filesystem::path(store_path).parent_path().string();
    if (dir.empty()) dir = ".";
    ASSIGN_OR_RETURN(std::vector<std::string> created, CreateDirectories(dir, 0750));
    if (!created.empty()) {
      chown_paths.insert(chown_paths.end(), created.begin(), created.end());
      return false;
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) return ErrnoError(errno, "stat " + dir);
    return st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
  };
  auto store_dir_failed = [](const std::string& what, const Status& st) {
    LogError("cannot prepare the " + what + " directory", {{"error", st.message()}});
    std::fprintf(stderr, "procmond: %s\n", st.message().c_str());
    return kExitRuntime;
  };
  auto events_as_root = open_as_root(cfg.database.path);
  if (!events_as_root.ok()) return store_dir_failed("event store", events_as_root.status());
  auto audit_as_root = open_as_root(cfg.database.audit_path);
  if (!audit_as_root.ok()) return store_dir_failed("audit ledger", audit_as_root.status());

  // Both of procmond's connections append; a small page cache each keeps
  // ~3 MiB of RSS off the collector (SQLite's default is 2,000 KiB each).
  // Real-time events are written on their own connection to the same WAL
  // database (the scan writer owns the first); the busy timeout serializes
  // the two writers.
  constexpr int64_t kCollectorCacheKib = 512;
  std::unique_ptr<storage::EventStore> store, event_store;
  auto open_events = [&](const std::string& user) -> bool {
    for (auto* slot : {&store, &event_store}) {
      if (slot == &event_store && !realtime) break;
      auto opened = storage::EventStore::Open({cfg.database.path, storage::OpenMode::kReadWrite,
                                               cfg.database.busy_timeout_ms, kCollectorCacheKib});
      if (!opened.ok()) {
        std::string msg = opened.status().message();
        if (!user.empty() && !IsRefusedPath(opened.status()))
          msg += " (opened as privileges.user " + user + ", who must be able to write there)";
        LogError("cannot open event store", {{"error", msg}});
        std::fprintf(stderr, "procmond: %s\n", msg.c_str());
        return false;
      }
      *slot = std::move(*opened);
    }
    return true;
  };
  // The audit ledger: a ledger that cannot be opened does not stop
  // collection; it is reported loudly. A link planted in its place does.
  std::unique_ptr<audit::AuditTrail> trail;
  auto open_trail = [&]() -> int {
    audit::LedgerOptions lopts;
    lopts.path = cfg.database.audit_path;
    lopts.busy_timeout_ms = cfg.database.busy_timeout_ms;
    lopts.signer = signer;
    auto opened = audit::AuditTrail::Open("procmond", lopts);
    if (!opened.ok() && IsRefusedPath(opened.status())) {
      LogError("cannot open the audit ledger", {{"error", opened.status().message()}});
      std::fprintf(stderr, "procmond: %s\n", opened.status().message().c_str());
      return kExitRuntime;
    }
    if (!opened.ok() && opened.status().code() == StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "procmond: %s\n", opened.status().message().c_str());
      return kExitUsage;
    }
    // A ledger that is there but damaged or not ours: the daemon runs
    // without it (decisions #16), --once stops before writing anything.
    if (!opened.ok() && flags.once &&
        (opened.status().code() == StatusCode::kFailedPrecondition ||
         opened.status().code() == StatusCode::kDataLoss)) {
      std::fprintf(stderr, "procmond: %s\n", opened.status().message().c_str());
      return kExitRuntime;
    }
    trail =
        opened.ok() ? std::move(*opened) : audit::AuditTrail::Disabled("procmond", opened.status().message());
    return 0;
  };
  auto hand_over = [&chown_paths](const std::string& store_path) {
    for (const char* suffix : {"", "-wal", "-shm"}) chown_paths.push_back(store_path + suffix);
  };
  if (*events_as_root) {
    if (!open_events("")) return kExitRuntime;
    hand_over(cfg.database.path);
  }
  if (*audit_as_root) {
    if (int rc = open_trail(); rc != 0) return rc;
    if (trail->enabled()) hand_over(cfg.database.audit_path);
  }

  // Everything that needs root is open; drop to privileges.user.
  procmond::PrivilegeOptions popts;
  popts.user = cfg.privileges.user;
  popts.keep_capabilities = cfg.privileges.keep_capabilities;
  popts.chown_paths = chown_paths;
  auto priv = procmond::DropPrivileges(popts);
  if (!priv.ok()) {
    LogError("cannot drop privileges", {{"error", priv.status().message()}});
    std::fprintf(stderr, "procmond: cannot drop privileges: %s\n", priv.status().message().c_str());
    return priv.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime;
  }
  const std::string opened_as = priv->dropped ? priv->user : "";
  if (!*events_as_root && !open_events(opened_as)) return kExitRuntime;
  if (!*audit_as_root) {
    if (int rc = open_trail(); rc != 0) return rc;
  }

  trail->Record("component_start", {{"component", "procmond"},
                                    {"version", sentinel::kVersion},
                                    {"pid", getpid()},
                                    {"uid", start_uid},
                                    {"once", flags.once}});
  trail->Record("config_loaded", {{"config_hash", loaded->hash}, {"sources", loaded->sources}});
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
  procmond::Collector collector(source, *store);
  // The writer thread owns the store from here on.
  procmond::BatchWriter writer(
      [&store](const models::ScanRecord& scan) { return store->WriteScan(scan); },
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
      [&scan_stats] {
        procmond::BatchWriterOptions o;
        o.health = &scan_stats.scan_writes;
        return o;
      }(),
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
    wopts.health = &scan_stats.event_writes;
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
    if (!st.ok()) {
      LogError("real-time events lost at shutdown", {{"error", st.message()}, {"lost_write", s.lost_write}});
    }
  };
  auto finish = [&writer, &trail, &stop_realtime, &scan_stats](int64_t timeout_ms) {
    stop_realtime(timeout_ms);
    Status st = writer.Stop(timeout_ms);
    // Every scan never written (given up at this stop, or dropped when a
    // signal came while the writer was stuck): counted and said once.
    const int64_t lost = writer.stats().scans_lost;
    scan_stats.scans_lost = lost;
    trail->Record("component_stop", {{"component", "procmond"}, {"clean", st.ok() && lost == 0}});
    if (!st.ok() || lost > 0) {
      const std::string why = st.ok() ? std::to_string(lost) + " scan(s) not written" : st.message();
      // st names the same count (BatchWriter::Stop counts every lost scan).
      LogError("scans lost at shutdown", {{"scans_lost", lost}, {"error", why}});
      std::fprintf(stderr, "procmond: scans lost at shutdown: %s\n", why.c_str());
      return kExitRuntime;
    }
    return 0;
  };
  // A stop signal waiting while Submit() blocks behind a failing writer.
  auto stop_pending = [] {
    sigset_t pending;
    sigemptyset(&pending);
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
  };

  while (true) {
    auto scan = collector.Collect();
    if (auto failure = source.TakeSamplerFailure()) {
      scan_stats.scan_source_ebpf = false;
      telemetry::LogWarn("the BPF task iterator failed; scans read /proc from now on", {{"error", *failure}});
      trail->Record("scan_source_changed", {{"source", "proc"}, {"reason", *failure}});
    }
    if (scan.ok()) {
      // Blocks while the writer is behind; a stop signal ends the wait.
      if (!writer.Submit(std::move(scan).value(), stop_pending)) {
        const int sig = sigtimedwait(&sigs, nullptr, &kNoWait);
        LogInfo("procmond stopping",
                {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}, {"while", "waiting for the scan writer"}});
        return finish(10'000);
      }
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
          // Restart-only keys (sources opened as root, stores, sockets, the dropped
          // privileges) keep their running values; the rest applies now.
          const std::vector<std::string> kept = config::RestartOnlyChanges(cfg, reloaded->config);
          cfg = config::ReloadableConfig(cfg, reloaded->config);
          InitLog(cfg);
          source.SetHashing(cfg.collection.hash_executables,
                            static_cast<uint64_t>(cfg.collection.max_hash_bytes));
          if (event_writer) {
            event_writer->SetHashing(cfg.collection.hash_executables,
                                     static_cast<uint64_t>(cfg.collection.max_hash_bytes));
          }
          ReportReload(*trail, cfg, *reloaded, kept);
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
  app.set_version_flag("--version", std::string("procmond ") + sentinel::kVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return Run(flags);
}
