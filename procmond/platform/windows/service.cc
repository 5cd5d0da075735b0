#include "procmond/platform/windows/service.h"

#include <cstdio>
#include <string_view>
#include <utility>

#include "procmond/platform/windows/control_pipe.h"
#include "procmond/platform/windows/windows_process_source.h"
#include "procmond/scan_pipeline.h"
#include "sentinel/audit/trail.h"
#include "sentinel/base/files.h"
#include "sentinel/base/time.h"
#include "sentinel/base/version.h"
#include "sentinel/ipc/pipe_server.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::procmond {
namespace {

using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

constexpr int64_t kCollectorCacheKib = 512;  // as on Linux (collector_service.cc)

// Says `message` on stderr as procmond and yields `code`.
int Fail(int code, std::string_view message) {
  std::fprintf(stderr, "procmond: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

bool IsSet(HANDLE event) {
  return ::WaitForSingleObject(event, 0) == WAIT_OBJECT_0;
}

WindowsProcessSourceOptions SourceOptions(const config::Config& cfg) {
  WindowsProcessSourceOptions o;
  o.hash_executables = cfg.collection.hash_executables;
  o.max_hash_bytes = static_cast<uint64_t>(cfg.collection.max_hash_bytes);
  return o;
}

}  // namespace

WindowsService::WindowsService(WindowsFlags flags) : flags_(std::move(flags)) {
  scan_now_ = ::CreateEventW(nullptr, FALSE, FALSE, nullptr);
  reload_ = ::CreateEventW(nullptr, FALSE, FALSE, nullptr);
}

WindowsService::~WindowsService() {
  if (control_) control_->Stop();
  if (scan_now_ != nullptr) ::CloseHandle(scan_now_);
  if (reload_ != nullptr) ::CloseHandle(reload_);
}

int WindowsService::Run(HANDLE stop, void (*started)()) {
  stop_ = stop;
  scan_stats_.started_at_ms = MonotonicMs();
  if (Exit e = LoadAndLog()) return *e;
  if (Exit e = OpenStores()) return *e;
  if (Exit e = ListenControl()) return *e;
  trail_->Record("component_start", {{"component", "procmond"},
                                     {"version", sentinel::kVersion},
                                     {"pid", static_cast<int64_t>(::GetCurrentProcessId())},
                                     {"platform", "windows"},
                                     {"once", flags_.once}});
  trail_->Record("config_loaded", {{"config_hash", loaded_.hash}, {"sources", loaded_.sources}});
  StartScanning();
  if (started != nullptr) started();
  while (true) {
    if (Exit e = Cycle()) return *e;
  }
}

Result<config::LoadedConfig> WindowsService::LoadConfig() const {
  return LoadConfigWithFlags({flags_.config_file, flags_.database, flags_.interval, flags_.log_level});
}

WindowsService::Exit WindowsService::LoadAndLog() {
  auto loaded = LoadConfig();
  if (!loaded.ok()) return Fail(kExitUsage, loaded.status().message());
  loaded_ = std::move(loaded).value();
  cfg_ = loaded_.config;
  config::InitProgramLogging("procmond", cfg_);
  LogInfo("procmond starting", {{"version", sentinel::kVersion},
                                {"pid", static_cast<int64_t>(::GetCurrentProcessId())},
                                {"platform", "windows"},
                                {"config_hash", loaded_.hash},
                                {"config_sources", loaded_.sources},
                                {"database", cfg_.database.path}});
  return std::nullopt;
}

WindowsService::Exit WindowsService::OpenStores() {
  if (flags_.once) {
    // Nothing is written to a store or ledger that is not ours (SPEC §11).
    if (Status s = storage::CheckStoreFiles(cfg_.database.path, cfg_.database.audit_path); !s.ok()) {
      LogError("refusing to run", {{"error", s.message()}});
      return Fail(kExitRuntime, s.message());
    }
  }
  auto opened = storage::EventStore::Open(
      {cfg_.database.path, storage::OpenMode::kReadWrite, cfg_.database.busy_timeout_ms, kCollectorCacheKib});
  if (!opened.ok()) {
    LogError("cannot open event store", {{"error", opened.status().message()}});
    return Fail(kExitRuntime, opened.status().message());
  }
  store_ = std::move(*opened);
  audit::LedgerOptions lopts;
  lopts.path = cfg_.database.audit_path;
  lopts.busy_timeout_ms = cfg_.database.busy_timeout_ms;
  auto trail = audit::AuditTrail::Open("procmond", lopts);
  if (!trail.ok()) {
    // As on Linux (decisions #16): a planted link or a bad ledger stops --once; a
    // long-running collector carries on without its ledger, and says so.
    if (IsRefusedPath(trail.status()) || flags_.once) return Fail(kExitRuntime, trail.status().message());
    LogWarn("audit ledger not opened; running without it", {{"error", trail.status().message()}});
  }
  trail_ = trail.ok() ? std::move(*trail) : audit::AuditTrail::Disabled("procmond", trail.status().message());
  return std::nullopt;
}

WindowsService::Exit WindowsService::ListenControl() {
  if (flags_.once) return std::nullopt;
  const std::string name = flags_.pipe_name.empty() ? ipc::kProcmondPipe : flags_.pipe_name;
  auto pipe = ControlPipe::Listen(name, &scan_stats_, {scan_now_, reload_});
  if (!pipe.ok()) {
    LogError("cannot listen on the control pipe", {{"error", pipe.status().message()}});
    return Fail(kExitRuntime, pipe.status().message());
  }
  control_ = std::move(*pipe);
  return std::nullopt;
}

void WindowsService::StartScanning() {
  source_ = std::make_unique<WindowsProcessSource>(SourceOptions(cfg_));
  pipeline_ = std::make_unique<ScanPipeline>(*source_, *store_, scan_stats_);
  if (!control_) return;
  if (Status st = control_->Start(); st.ok()) {
    LogInfo("control pipe listening", {{"path", control_->path()}});
  } else {
    LogWarn("control pipe not started", {{"error", st.message()}});
  }
}

WindowsService::Exit WindowsService::Cycle() {
  std::string error;
  const auto step = pipeline_->ScanOnce([this] { return IsSet(stop_); }, &error);
  if (step == ScanPipeline::Step::kStopRequested) {
    LogInfo("procmond stopping", {{"while", "waiting for the scan writer"}});
    return Stop(10'000);
  }
  if (step == ScanPipeline::Step::kScanFailed && flags_.once) {
    Fail(kExitRuntime, "scan failed: " + error);
    Stop(1000);
    return kExitRuntime;
  }
  if (flags_.once) return Stop(30'000);
  return WaitForNextScan();
}

WindowsService::Exit WindowsService::WaitForNextScan() {
  const int64_t deadline = MonotonicMs() + cfg_.collection.interval_secs * 1000;
  HANDLE events[3] = {stop_, scan_now_, reload_};
  while (true) {
    const int64_t left = deadline - MonotonicMs();
    if (left <= 0) return std::nullopt;
    const DWORD which = ::WaitForMultipleObjects(3, events, FALSE, static_cast<DWORD>(left));
    if (which == WAIT_OBJECT_0) {
      LogInfo("procmond stopping", {{"reason", "stop requested"}});
      return Stop(10'000);
    }
    if (which == WAIT_OBJECT_0 + 1) {
      LogInfo("scan requested over the control pipe");
      return std::nullopt;
    }
    if (which == WAIT_OBJECT_0 + 2) Reload();
    if (which == WAIT_TIMEOUT) return std::nullopt;
    if (which == WAIT_FAILED) {
      LogError("waiting for the next scan failed", {{"error", static_cast<int64_t>(::GetLastError())}});
      return Stop(10'000);
    }
  }
}

void WindowsService::Reload() {
  auto reloaded = LoadConfig();
  if (!reloaded.ok()) {
    LogError("configuration reload refused; keeping the running configuration",
             {{"error", reloaded.status().message()}});
    return;
  }
  const std::vector<std::string> kept = config::RestartOnlyChanges(cfg_, reloaded->config);
  cfg_ = config::ReloadableConfig(cfg_, reloaded->config);
  config::InitProgramLogging("procmond", cfg_);
  source_->SetHashing(cfg_.collection.hash_executables,
                      static_cast<uint64_t>(cfg_.collection.max_hash_bytes));
  ReportReload(*trail_, cfg_, *reloaded, kept);
}

int WindowsService::Stop(int64_t timeout_ms) {
  if (control_) control_->Stop();
  if (Status st = pipeline_->Stop(timeout_ms, *trail_); !st.ok()) {
    return Fail(kExitRuntime, "scans lost at shutdown: " + st.message());
  }
  return 0;
}

}  // namespace sentinel::procmond
