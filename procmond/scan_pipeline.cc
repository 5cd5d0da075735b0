#include "procmond/scan_pipeline.h"

#include <utility>

#include "sentinel/audit/trail.h"
#include "sentinel/base/strings.h"
#include "sentinel/config/bootstrap.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::procmond {

using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

ScanPipeline::ScanPipeline(ProcessSource& source, storage::EventStore& store, ScanStats& stats)
    : stats_(stats), collector_(source, store) {
  BatchWriterOptions wopts;
  wopts.health = &stats_.scan_writes;
  writer_ = std::make_unique<BatchWriter>(
      [&store](const models::ScanRecord& scan) { return store.WriteScan(scan); },
      [this](const models::ScanRecord& scan, int64_t scan_id, int64_t write_ms) {
        stats_.RecordWritten(scan, scan_id, write_ms);
        // The first scan says collection works; the others are counted in
        // the summary line (procmond's own, or the agent's).
        const auto level =
            stats_.scans_completed.load() == 1 ? telemetry::LogLevel::kInfo : telemetry::LogLevel::kDebug;
        telemetry::Log(level, "scan written",
                       {{"scan_id", scan_id},
                        {"processes", scan.processes.size()},
                        {"errors", scan.errors},
                        {"hash_cache_hits", scan.hash_cache_hits},
                        {"hash_cache_misses", scan.hash_cache_misses},
                        {"scan_ms", scan.completed_at_ms - scan.started_at_ms},
                        {"write_ms", write_ms}});
      },
      wopts, [this](models::ScanRecord&& written) { collector_.Recycle(std::move(written)); });
}

ScanPipeline::Step ScanPipeline::ScanOnce(const std::function<bool()>& stop_requested, std::string* error,
                                          const std::function<void()>& after_collect) {
  auto scan = collector_.Collect();
  if (after_collect) after_collect();
  if (!scan.ok()) {
    stats_.scans_failed++;
    LogError("scan failed", {{"error", scan.status().message()}});
    if (error) *error = scan.status().message();
    return Step::kScanFailed;
  }
  // Blocks while the writer is behind; a stop request ends the wait.
  return writer_->Submit(std::move(scan).value(), stop_requested) ? Step::kSubmitted : Step::kStopRequested;
}

Status ScanPipeline::Stop(int64_t timeout_ms, audit::AuditTrail& trail) {
  Status st = writer_->Stop(timeout_ms);
  // Every scan never written (given up at this stop, or dropped when a stop
  // came while the writer was stuck): counted and said once.
  const int64_t lost = writer_->stats().scans_lost;
  stats_.scans_lost = lost;
  trail.Record("component_stop", {{"component", "procmond"}, {"clean", st.ok() && lost == 0}});
  if (st.ok() && lost == 0) return Status::Ok();
  // st names the same count (BatchWriter::Stop counts every lost scan).
  const std::string why = st.ok() ? std::to_string(lost) + " scan(s) not written" : st.message();
  LogError("scans lost at shutdown", {{"scans_lost", lost}, {"error", why}});
  return DataLossError(why);
}

Result<config::LoadedConfig> LoadConfigWithFlags(const ConfigFlags& flags) {
  return config::LoadProgramConfig({flags.config_file,
                                    {{"database.path", flags.database},
                                     {"collection.interval_secs", flags.interval},
                                     {"telemetry.log_level", flags.log_level}}});
}

void ReportReload(audit::AuditTrail& trail, const config::Config& effective,
                  const config::LoadedConfig& loaded, const std::vector<std::string>& kept) {
  const std::string hash = config::Hash(effective);
  if (!kept.empty()) {
    LogWarn(Join(kept, ", ") + " changed, takes effect at restart; running value kept", {{"keys", kept}});
  }
  LogInfo(kept.empty() ? "configuration reloaded" : "configuration reloaded except restart-only keys",
          {{"config_hash", hash}, {"loaded_hash", loaded.hash}, {"restart_pending", kept}});
  trail.Record("config_loaded", {{"config_hash", hash},
                                 {"loaded_hash", loaded.hash},
                                 {"sources", loaded.sources},
                                 {"reload", true},
                                 {"restart_pending", kept}});
}

}  // namespace sentinel::procmond
