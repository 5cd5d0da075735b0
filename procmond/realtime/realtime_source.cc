#include "procmond/realtime/realtime_source.h"

#include "sentinel/telemetry/log.h"

namespace sentinel::procmond {

const char* RealtimeEventTypeName(RealtimeEventType t) {
  switch (t) {
    case RealtimeEventType::kExec: return "exec";
    case RealtimeEventType::kFork: return "fork";
    case RealtimeEventType::kExit: return "exit";
  }
  return "exec";
}

void RealtimeStats::SetSource(std::string name, std::string detail) {
  std::lock_guard lock(mu_);
  source_ = std::move(name);
  detail_ = std::move(detail);
}

void RealtimeStats::AddReceived(RealtimeEventType t) {
  received_[static_cast<int>(t)].fetch_add(1, std::memory_order_relaxed);
}

void RealtimeStats::AddStored(RealtimeEventType t, int64_t n) {
  stored_[static_cast<int>(t)].fetch_add(n, std::memory_order_relaxed);
}

RealtimeStats::Snapshot RealtimeStats::Get() const {
  Snapshot s;
  {
    std::lock_guard lock(mu_);
    s.source = source_;
    s.source_detail = detail_;
  }
  auto ld = [](const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.received_exec = ld(received_[1]);
  s.received_fork = ld(received_[2]);
  s.received_exit = ld(received_[3]);
  s.stored_exec = ld(stored_[1]);
  s.stored_fork = ld(stored_[2]);
  s.stored_exit = ld(stored_[3]);
  s.lost_kernel = ld(lost_kernel_);
  s.lost_queue = ld(lost_queue);
  s.lost_write = ld(lost_write);
  s.incomplete = ld(incomplete);
  s.argv_truncated = ld(argv_truncated);
  s.fork_not_stored = ld(fork_not_stored);
  s.hashed_by_proc_exe = ld(hashed_by_proc_exe);
  s.hashed_by_path = ld(hashed_by_path);
  s.hash_skipped = ld(hash_skipped);
  s.batches_written = ld(batches_written);
  s.queued = ld(queued);
  return s;
}

RealtimeStats& CurrentRealtimeStats() {
  static RealtimeStats* stats = new RealtimeStats();  // never destroyed: read by other threads at exit
  return *stats;
}

Result<std::unique_ptr<RealtimeSource>> OpenRealtimeSource(const RealtimeOptions& options,
                                                           RealtimeStats* stats) {
  const std::string& mode = options.mode;
  if (mode == "off") {
    stats->SetSource("off", "collection.realtime_source is off");
    telemetry::LogInfo("real-time events off", {{"reason", "collection.realtime_source: off"}});
    return std::unique_ptr<RealtimeSource>();
  }
  if (mode == "ebpf" || mode == "netlink") {
    auto src = mode == "ebpf" ? OpenEbpfSource(options, stats) : OpenNetlinkSource(options, stats);
    if (!src.ok()) {
      return Status(src.status().code(),
                    "collection.realtime_source: " + mode + " cannot be used: " + src.status().message());
    }
    stats->SetSource(mode, "collection.realtime_source: " + mode);
    telemetry::LogInfo("real-time event source chosen", {{"source", mode}, {"reason", "asked for by name"}});
    return src;
  }
  if (mode != "auto")
    return InvalidArgumentError("collection.realtime_source: unknown source \"" + mode + "\"");

  auto ebpf = OpenEbpfSource(options, stats);
  if (ebpf.ok()) {
    stats->SetSource("ebpf", "auto: ebpf loaded");
    telemetry::LogInfo("real-time event source chosen",
                       {{"source", "ebpf"}, {"reason", "auto: ebpf loaded"}});
    return ebpf;
  }
  const std::string ebpf_error = ebpf.status().message();
  auto netlink = OpenNetlinkSource(options, stats);
  if (netlink.ok()) {
    stats->SetSource("netlink", "auto: ebpf failed: " + ebpf_error);
    telemetry::LogWarn(
        "real-time event source chosen: netlink (argv read from /proc, may be missed for "
        "very short-lived processes)",
        {{"source", "netlink"}, {"ebpf_error", ebpf_error}});
    return netlink;
  }
  stats->SetSource("off",
                   "auto: ebpf failed: " + ebpf_error + "; netlink failed: " + netlink.status().message());
  telemetry::LogWarn("no real-time event source could be opened; short-lived processes will be missed",
                     {{"ebpf_error", ebpf_error}, {"netlink_error", netlink.status().message()}});
  return std::unique_ptr<RealtimeSource>();
}

}  // namespace sentinel::procmond
