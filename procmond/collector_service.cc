#include "procmond/collector_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "procmond/platform/linux/linux_process_source.h"
#include "procmond/platform/linux/writable_dirs.h"
#include "procmond/realtime/event_writer.h"
#include "procmond/realtime/realtime_source.h"
#include "procmond/scan_pipeline.h"
#include "sentinel/audit/signer.h"
#include "sentinel/audit/trail.h"
#include "sentinel/base/files.h"
#include "sentinel/base/signals.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/base/version.h"
#include "sentinel/config/bootstrap.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::procmond {

namespace {

using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

constexpr timespec kNoWait{0, 0};
// Both of procmond's connections append; a small page cache each keeps
// ~3 MiB of RSS off the collector (SQLite's default is 2,000 KiB each).
constexpr int64_t kCollectorCacheKib = 512;

// Says `message` on stderr as procmond and yields `code`.
int Fail(int code, std::string_view message) {
  std::fprintf(stderr, "procmond: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

void InitLog(const config::Config& c) {
  config::InitProgramLogging("procmond", c);
}

// The exit code for an audit ledger that could not be opened; nullopt when
// procmond runs on without it (decisions #16): a link planted in its place
// stops it, as does a bad signing key; a ledger that is there but damaged or
// not ours stops only --once, before anything is written.
CollectorService::Exit LedgerFailure(const Status& status, bool once) {
  if (IsRefusedPath(status)) {
    LogError("cannot open the audit ledger", {{"error", status.message()}});
    return Fail(kExitRuntime, status.message());
  }
  if (status.code() == StatusCode::kInvalidArgument) return Fail(kExitUsage, status.message());
  if (once && (status.code() == StatusCode::kFailedPrecondition || status.code() == StatusCode::kDataLoss)) {
    return Fail(kExitRuntime, status.message());
  }
  return std::nullopt;
}

void LogRealtimeStopped(const Status& st) {
  auto s = CurrentRealtimeStats().Get();
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
}

}  // namespace

CollectorService::CollectorService(CollectorFlags flags) : flags_(std::move(flags)) {}

CollectorService::~CollectorService() = default;

int CollectorService::Run() {
  if (Exit e = Start()) return *e;
  while (true) {
    if (Exit e = Cycle()) return *e;
  }
}

CollectorService::Exit CollectorService::Start() {
  if (Exit e = LoadAndLog()) return e;
  start_uid_ = getuid();
  BlockSignals();
  // What needs root is opened while procmond still is, in this order
  // (docs/collector.md); the target user is part of the configuration and
  // checked before any store is created or opened.
  if (Exit e = CheckTargetUser()) return e;
  if (Exit e = ListenControl()) return e;
  if (Exit e = LoadSigner()) return e;
  if (Exit e = OpenRealtime()) return e;
  if (Exit e = OpenSampler()) return e;
  LogInfo("scan source", {{"source", sampler_ ? "ebpf" : "proc"}});
  if (Exit e = CheckStoresForOnce()) return e;
  if (Exit e = OpenStoresAsRoot()) return e;
  if (Exit e = DropAndOpenStores()) return e;
  RecordStart();
  // Never outlive the agent that started us (the drop cleared PDEATHSIG).
  if (!WatchSupervisor()) {
    LogInfo("procmond stopping", {{"reason", "its supervising sentinelagent is gone"}});
    trail_->Record("component_stop",
                   {{"component", "procmond"}, {"clean", true}, {"reason", "supervisor gone"}});
    return 0;
  }
  StartScanning();
  return StartRealtime();
}

Result<config::LoadedConfig> CollectorService::LoadConfig() const {
  return LoadConfigWithFlags({flags_.config_file, flags_.database, flags_.interval, flags_.log_level});
}

CollectorService::Exit CollectorService::LoadAndLog() {
  auto loaded = LoadConfig();
  if (!loaded.ok()) return Fail(kExitUsage, loaded.status().message());
  loaded_ = std::move(loaded).value();
  cfg_ = loaded_.config;
  InitLog(cfg_);
  LogInfo("procmond starting", {{"version", sentinel::kVersion},
                                {"pid", getpid()},
                                {"uid", getuid()},
                                {"config_hash", loaded_.hash},
                                {"config_sources", loaded_.sources},
                                {"database", cfg_.database.path}});
  return std::nullopt;
}

// The signals procmond handles are blocked; they are taken synchronously
// between scans.
void CollectorService::BlockSignals() {
  // kScanNowSignal: scan-now over the control socket.
  sigs_ = sentinel::BlockSignals({SIGTERM, SIGINT, SIGHUP, kScanNowSignal});
}

CollectorService::Exit CollectorService::CheckTargetUser() const {
  if (geteuid() != 0) return std::nullopt;
  auto user = LookupUser(cfg_.privileges.user);
  if (!user.ok()) return Fail(kExitUsage, user.status().message());
  // Another name for root (the schema refuses "root" itself).
  if (user->first == 0) {
    return Fail(kExitUsage, "privileges.user: expected an unprivileged user, got " +
                                QuoteForMessage(cfg_.privileges.user) + " (uid 0 is root)");
  }
  return std::nullopt;
}

// The control socket (procmond/control.h), bound while still root and before
// any store is touched: a live procmond.sock means another collector is
// running, and a link planted in its place or in place of its directory is
// refused (exit 1). Any other failure only turns the socket off.
CollectorService::Exit CollectorService::ListenControl() {
  scan_stats_.started_at_ms = MonotonicMs();
  if (flags_.once) return std::nullopt;
  auto listening = ProcmondControl::Listen(cfg_, &scan_stats_);
  if (listening.ok()) {
    control_ = std::move(listening).value();
  } else if (listening.status().code() == StatusCode::kAlreadyExists || IsRefusedPath(listening.status())) {
    return Fail(kExitRuntime, listening.status().message());
  } else {
    LogWarn("control socket unavailable: health, stats, scan-now and reload over IPC are off",
            {{"error", listening.status().message()}});
  }
  return std::nullopt;
}

// The audit signing key is read now, as root (it is root's, mode 0600), and
// kept for the ledger opened later. A bad key is a configuration error
// (exit 2); a symbolic link in its place is refused (exit 1).
CollectorService::Exit CollectorService::LoadSigner() {
  if (cfg_.database.audit_signing_key.empty()) return std::nullopt;
  auto key = audit::Signer::LoadPrivateKeyFile(cfg_.database.audit_signing_key);
  if (!key.ok()) {
    return Fail(IsRefusedPath(key.status()) ? kExitRuntime : kExitUsage,
                "database.audit_signing_key: " + key.status().message());
  }
  signer_ = std::move(*key);
  return std::nullopt;
}

// Real-time events (docs/realtime.md): loading the BPF program or subscribing
// to the proc connector needs root, so the source is opened now, before any
// store is touched and before the privilege drop. A source asked for by name
// that cannot be opened stops procmond (exit 1).
CollectorService::Exit CollectorService::OpenRealtime() {
  if (flags_.once) return std::nullopt;
  RealtimeOptions ropts;
  ropts.mode = cfg_.collection.realtime_events ? cfg_.collection.realtime_source : "off";
  if (!cfg_.collection.realtime_events && cfg_.collection.realtime_source != "off") {
    LogInfo("real-time events off", {{"reason", "collection.realtime_events: false"}});
  }
  auto opened = OpenRealtimeSource(ropts, &CurrentRealtimeStats());
  if (!opened.ok()) {
    LogError("cannot open the real-time event source", {{"error", opened.status().message()}});
    return Fail(kExitRuntime, opened.status().message());
  }
  realtime_ = std::move(*opened);
  return std::nullopt;
}

// How scans sample processes (docs/architecture.md): the BPF task iterator is
// loaded as root, so now; asked for by name and not available, procmond stops
// (exit 1); auto falls back to /proc, saying why.
CollectorService::Exit CollectorService::OpenSampler() {
  if (cfg_.collection.scan_source == "proc") return std::nullopt;
  auto opened = OpenBpfTaskSampler();
  if (opened.ok()) {
    sampler_ = std::move(*opened);
  } else if (cfg_.collection.scan_source == "ebpf") {
    const std::string msg = "collection.scan_source: ebpf cannot be used: " + opened.status().message();
    LogError("cannot open the scan source", {{"error", msg}});
    return Fail(kExitRuntime, msg);
  } else {
    LogWarn("scans read /proc: the BPF task iterator is not available",
            {{"reason", opened.status().message()}});
  }
  return std::nullopt;
}

// --once writes nothing when a store it would write cannot be used: a file
// that is not ours, newer, truncated or unreadable (the ledger included,
// which the daemon would run without) stops the run, naming it.
CollectorService::Exit CollectorService::CheckStoresForOnce() const {
  if (!flags_.once) return std::nullopt;
  Status s = storage::CheckStoreFiles(cfg_.database.path, cfg_.database.audit_path);
  if (s.ok()) return std::nullopt;
  LogError("refusing to run", {{"error", s.message()}});
  return Fail(kExitRuntime, s.message());
}

// Whether the store at `store_path` is opened as root (issue 14,
// docs/decisions.md): only in a directory that nobody but root can change.
// Its directory usually belongs to privileges.user, who could swap any name
// there for a link to a file of root's: such a store is opened only after
// the drop, with that user's rights. Missing directories are created by root
// and given to the user.
Result<bool> CollectorService::OpensAsRoot(const std::string& store_path) {
  if (geteuid() != 0) return false;
  std::string dir = std::filesystem::path(store_path).parent_path().string();
  if (dir.empty()) dir = ".";
  ASSIGN_OR_RETURN(std::vector<std::string> created, CreateDirectories(dir, 0750));
  if (!created.empty()) {
    chown_paths_.insert(chown_paths_.end(), created.begin(), created.end());
    return false;
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoError(errno, "stat " + dir);
  return st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

// The stores in root-only directories, opened (and created) as root, then
// handed over through descriptors that follow no link (base/files.h).
CollectorService::Exit CollectorService::OpenStoresAsRoot() {
  if (control_) chown_paths_ = control_->ChownPaths();
  auto store_dir_failed = [](const std::string& what, const Status& st) {
    LogError("cannot prepare the " + what + " directory", {{"error", st.message()}});
    return Fail(kExitRuntime, st.message());
  };
  auto events_as_root = OpensAsRoot(cfg_.database.path);
  if (!events_as_root.ok()) return store_dir_failed("event store", events_as_root.status());
  auto audit_as_root = OpensAsRoot(cfg_.database.audit_path);
  if (!audit_as_root.ok()) return store_dir_failed("audit ledger", audit_as_root.status());
  events_as_root_ = *events_as_root;
  audit_as_root_ = *audit_as_root;
  if (events_as_root_) {
    if (!OpenEventStores("")) return kExitRuntime;
    HandOver(cfg_.database.path);
  }
  if (audit_as_root_) {
    if (Exit e = OpenTrail()) return e;
    if (trail_->enabled()) HandOver(cfg_.database.audit_path);
  }
  return std::nullopt;
}

// Everything that needs root is open: drops to privileges.user, then opens
// the stores left for that user.
CollectorService::Exit CollectorService::DropAndOpenStores() {
  PrivilegeOptions popts;
  popts.user = cfg_.privileges.user;
  popts.keep_capabilities = cfg_.privileges.keep_capabilities;
  popts.chown_paths = chown_paths_;
  auto priv = DropPrivileges(popts);
  if (!priv.ok()) {
    LogError("cannot drop privileges", {{"error", priv.status().message()}});
    return Fail(priv.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime,
                "cannot drop privileges: " + priv.status().message());
  }
  priv_ = std::move(priv).value();
  if (!events_as_root_ && !OpenEventStores(priv_.dropped ? priv_.user : "")) return kExitRuntime;
  if (!audit_as_root_) return OpenTrail();
  return std::nullopt;
}

// The scan writer's connection, and with a real-time source a second one to
// the same WAL database (the busy timeout serializes the two writers).
// `user`: the account it is opened as, when not root (named in the error).
bool CollectorService::OpenEventStores(const std::string& user) {
  for (auto* slot : {&store_, &event_store_}) {
    if (slot == &event_store_ && !realtime_) break;
    auto opened = storage::EventStore::Open({cfg_.database.path, storage::OpenMode::kReadWrite,
                                             cfg_.database.busy_timeout_ms, kCollectorCacheKib});
    if (!opened.ok()) {
      std::string msg = opened.status().message();
      if (!user.empty() && !IsRefusedPath(opened.status()))
        msg += " (opened as privileges.user " + user + ", who must be able to write there)";
      LogError("cannot open event store", {{"error", msg}});
      Fail(kExitRuntime, msg);
      return false;
    }
    *slot = std::move(*opened);
  }
  return true;
}

// The audit ledger: one that cannot be opened does not stop collection; it is
// reported loudly (see LedgerFailure for what does stop it).
CollectorService::Exit CollectorService::OpenTrail() {
  audit::LedgerOptions lopts;
  lopts.path = cfg_.database.audit_path;
  lopts.busy_timeout_ms = cfg_.database.busy_timeout_ms;
  lopts.signer = signer_;
  auto opened = audit::AuditTrail::Open("procmond", lopts);
  if (!opened.ok()) {
    if (Exit e = LedgerFailure(opened.status(), flags_.once)) return e;
  }
  trail_ =
      opened.ok() ? std::move(*opened) : audit::AuditTrail::Disabled("procmond", opened.status().message());
  return std::nullopt;
}

void CollectorService::HandOver(const std::string& store_path) {
  for (const char* suffix : {"", "-wal", "-shm"}) chown_paths_.push_back(store_path + suffix);
}

void CollectorService::RecordStart() {
  trail_->Record("component_start", {{"component", "procmond"},
                                     {"version", sentinel::kVersion},
                                     {"pid", getpid()},
                                     {"uid", start_uid_},
                                     {"once", flags_.once}});
  trail_->Record("config_loaded", {{"config_hash", loaded_.hash}, {"sources", loaded_.sources}});
  if (!priv_.dropped) {
    LogWarn("running without root: some data will be missing",
            {{"uid", priv_.uid}, {"not_visible", priv_.missing}});
    trail_->Record("privileges_not_dropped",
                   {{"uid", priv_.uid}, {"reason", "not started as root"}, {"not_visible", priv_.missing}});
    return;
  }
  auto caps = ReadCapabilityState(getpid());
  const nlohmann::json fields = {{"user", priv_.user},
                                 {"uid", priv_.uid},
                                 {"gid", priv_.gid},
                                 {"kept_capabilities", priv_.kept},
                                 {"no_new_privs", caps.ok() && caps->no_new_privs}};
  LogInfo("privileges dropped", fields);
  trail_->Record("privileges_dropped", fields);
}

// Found once, before the scan writer owns the store: rules read them from
// the first scan on. A failure is logged and leaves the table as it was.
void CollectorService::RecordWritableDirs() {
  const int64_t start = MonotonicMs();
  WritableDirScan found = FindWritableDirs();
  std::vector<std::string> paths;
  for (const auto& d : found.dirs) paths.push_back(d.path);
  if (Status s = store_->ReplaceWritableDirs(found.dirs, NowMs()); !s.ok()) {
    LogWarn("cannot record the world-writable directories", {{"error", s.message()}});
    return;
  }
  LogInfo("world-writable directories", {{"directories", paths},
                                         {"visited", found.visited},
                                         {"truncated", found.truncated},
                                         {"ms", MonotonicMs() - start}});
}

// The source, the collector over it and the scan writer thread (which owns
// the store from here on); then the control socket starts serving.
void CollectorService::StartScanning() {
  RecordWritableDirs();
  LinuxProcessSourceOptions source_opts;
  source_opts.hash_executables = cfg_.collection.hash_executables;
  source_opts.max_hash_bytes = static_cast<uint64_t>(cfg_.collection.max_hash_bytes);
  source_ = std::make_unique<LinuxProcessSource>(source_opts);
  if (sampler_) source_->SetTaskSampler(std::move(sampler_));
  scan_stats_.scan_source_ebpf = source_->sampling_from_kernel();
  pipeline_ = std::make_unique<ScanPipeline>(*source_, *store_, scan_stats_);
  if (!flags_.once && !Supervised()) {
    summary_.emplace(cfg_.telemetry.summary_interval_secs * 1000, MonotonicMs());
    summary_->Baseline(SummaryTotals());
  }
  if (!control_) return;
  if (Status st = control_->Start(); st.ok()) {
    LogInfo("control socket listening", {{"path", control_->path()}});
  } else {
    LogWarn("control socket not started", {{"error", st.message()}});
  }
}

// After the drop the real-time source runs on its own thread; the BPF links
// and the netlink subscription live on in its file descriptors.
CollectorService::Exit CollectorService::StartRealtime() {
  if (!realtime_) return std::nullopt;
  EventWriterOptions wopts;
  wopts.hash_executables = cfg_.collection.hash_executables;
  wopts.max_hash_bytes = static_cast<uint64_t>(cfg_.collection.max_hash_bytes);
  wopts.health = &scan_stats_.event_writes;
  // After a committed batch the agent's real-time detector is woken (procmond.sock subscribers).
  event_writer_ = std::make_unique<EventWriter>(
      [this](const std::vector<models::ProcessEvent>& events) -> Result<int64_t> {
        auto written = event_store_->WriteEvents(events);
        if (written.ok() && *written > 0 && control_) {
          control_->PublishEventsWritten(event_store_->db().LastInsertRowId(), *written);
        }
        return written;
      },
      &CurrentRealtimeStats(), wopts);
  if (Status st = realtime_->Start([this](RealtimeEvent&& ev) { event_writer_->Push(std::move(ev)); });
      !st.ok()) {
    LogError("cannot start the real-time event source", {{"error", st.message()}});
    return Fail(kExitRuntime, st.message());
  }
  LogInfo("real-time event source started", {{"source", realtime_->name()}, {"uid", getuid()}});
  trail_->Record("realtime_source_started", {{"source", realtime_->name()}});
  return std::nullopt;
}

CollectorService::Exit CollectorService::Cycle() {
  std::string error;
  const auto step = pipeline_->ScanOnce(
      [] { return StopSignalPending(); }, &error,
      [this] {
        if (auto failure = source_->TakeSamplerFailure()) {
          scan_stats_.scan_source_ebpf = false;
          LogWarn("the BPF task iterator failed; scans read /proc from now on", {{"error", *failure}});
          trail_->Record("scan_source_changed", {{"source", "proc"}, {"reason", *failure}});
        }
      });
  if (step == ScanPipeline::Step::kStopRequested) {
    const int sig = sigtimedwait(&sigs_, nullptr, &kNoWait);
    LogInfo("procmond stopping",
            {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}, {"while", "waiting for the scan writer"}});
    return Stop(10'000);
  }
  if (step == ScanPipeline::Step::kScanFailed && flags_.once) {
    Fail(kExitRuntime, "scan failed: " + error);
    Stop(1000);
    return kExitRuntime;
  }
  if (flags_.once) return Stop(30'000);
  LogSummaryIfDue();
  return WaitForNextScan();
}

// Counted when the writers report them: scans written or failed, real-time
// events stored or lost.
telemetry::PeriodicSummary::Totals CollectorService::SummaryTotals() const {
  const auto rt = CurrentRealtimeStats().Get();
  return {{"scans", scan_stats_.scans_completed.load()},
          {"events", rt.stored_exec + rt.stored_exit + rt.stored_fork},
          {"events_lost", rt.lost_total()},
          {"errors", scan_stats_.scans_failed.load()}};
}

void CollectorService::LogSummaryIfDue() {
  const int64_t now = MonotonicMs();
  if (!summary_ || !summary_->Due(now)) return;
  nlohmann::json fields = summary_->Take(SummaryTotals(), now);
  fields["processes"] = scan_stats_.last_processes.load();
  LogInfo("summary", fields);
}

// Waits out the interval, serving SIGHUP meanwhile; a scan-now request ends
// the wait early, a stop signal stops procmond.
CollectorService::Exit CollectorService::WaitForNextScan() {
  timespec wait{static_cast<time_t>(cfg_.collection.interval_secs), 0};
  const int64_t deadline = MonotonicMs() + cfg_.collection.interval_secs * 1000;
  while (true) {
    const int sig = sigtimedwait(&sigs_, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      LogInfo("procmond stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      return Stop(10'000);
    }
    if (sig == kScanNowSignal) {
      LogInfo("scan requested over the control socket");
      return std::nullopt;
    }
    if (sig == SIGHUP) Reload();
    if (sig < 0 && errno == EAGAIN) return std::nullopt;  // interval elapsed
    const int64_t left = deadline - MonotonicMs();
    if (left <= 0) return std::nullopt;
    wait = {static_cast<time_t>(left / 1000), static_cast<long>((left % 1000) * 1'000'000)};
  }
}

void CollectorService::Reload() {
  auto reloaded = LoadConfig();
  if (!reloaded.ok()) {
    LogError("configuration reload refused; keeping the running configuration",
             {{"error", reloaded.status().message()}});
    return;
  }
  // Restart-only keys (sources opened as root, stores, sockets, the dropped
  // privileges) keep their running values; the rest applies now.
  const std::vector<std::string> kept = config::RestartOnlyChanges(cfg_, reloaded->config);
  cfg_ = config::ReloadableConfig(cfg_, reloaded->config);
  InitLog(cfg_);
  if (summary_) summary_->SetInterval(cfg_.telemetry.summary_interval_secs * 1000);
  const auto max_hash_bytes = static_cast<uint64_t>(cfg_.collection.max_hash_bytes);
  source_->SetHashing(cfg_.collection.hash_executables, max_hash_bytes);
  if (event_writer_) event_writer_->SetHashing(cfg_.collection.hash_executables, max_hash_bytes);
  ReportReload(*trail_, cfg_, *reloaded, kept);
}

void CollectorService::StopRealtime(int64_t timeout_ms) {
  if (!realtime_) return;
  realtime_->Stop();
  LogRealtimeStopped(event_writer_->Stop(timeout_ms));
}

int CollectorService::Stop(int64_t timeout_ms) {
  StopRealtime(timeout_ms);
  if (Status st = pipeline_->Stop(timeout_ms, *trail_); !st.ok()) {
    return Fail(kExitRuntime, "scans lost at shutdown: " + st.message());
  }
  return 0;
}

}  // namespace sentinel::procmond
