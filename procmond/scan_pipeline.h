// What procmond's services share on every platform (CollectorService on
// Linux, WindowsService on Windows): the scan pipeline, a Collector over the
// platform's ProcessSource feeding the BatchWriter that stores each scan and
// counts it in ScanStats; how the configuration is loaded under the command
// line's flags; and how a reload is reported.
//
// Not thread-safe: driven from the service's main thread (the writer has its
// own thread inside).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "procmond/batch_writer.h"
#include "procmond/collector.h"
#include "procmond/scan_stats.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"

namespace sentinel {
namespace audit {
class AuditTrail;
}  // namespace audit
namespace storage {
class EventStore;
}  // namespace storage
}  // namespace sentinel

namespace sentinel::procmond {

class ProcessSource;

class ScanPipeline {
 public:
  // `source`, `store` and `stats` outlive the pipeline.
  ScanPipeline(ProcessSource& source, storage::EventStore& store, ScanStats& stats);

  enum class Step {
    kSubmitted,      // the scan is the writer's
    kStopRequested,  // `stop_requested` said so while the writer was behind
    kScanFailed,     // counted and logged; the error in *error
  };
  // Collects one scan and hands it to the writer, waiting while the writer is
  // behind until `stop_requested` returns true (the scan is then counted lost).
  // `after_collect` (optional) runs between the two.
  Step ScanOnce(const std::function<bool()>& stop_requested, std::string* error,
                const std::function<void()>& after_collect = nullptr);

  // Drains the writer within `timeout_ms` and records component_stop in
  // `trail`. Ok when every scan was written; otherwise why not (also logged,
  // and counted in ScanStats::scans_lost).
  Status Stop(int64_t timeout_ms, audit::AuditTrail& trail);

 private:
  ScanStats& stats_;
  Collector collector_;
  std::unique_ptr<BatchWriter> writer_;
};

// The flags of procmond's command line that set configuration keys (empty:
// not given).
struct ConfigFlags {
  std::string config_file;  // --config
  std::string database;     // --database: database.path
  std::string interval;     // --interval: collection.interval_secs
  std::string log_level;    // --log-level: telemetry.log_level
};

// The configuration's layers (config::LoadProgramConfig) with `flags` on top.
Result<config::LoadedConfig> LoadConfigWithFlags(const ConfigFlags& flags);

// After a reload: says which changed keys wait for a restart (`kept`), and
// records what now runs in `trail` (config_hash: the effective configuration;
// loaded_hash: the files as read).
void ReportReload(audit::AuditTrail& trail, const config::Config& effective,
                  const config::LoadedConfig& loaded, const std::vector<std::string>& kept);

}  // namespace sentinel::procmond
