// A fleet live query run on this host (fleet_service.h): the SQL of a
// verified request in a query worker, as `sentinelcli query` runs it — the
// SQL guard's sandbox, a read-only connection, the standard rule parameters,
// killed at detection.rule_timeout_secs — and its rows sent in bounded
// chunks (fleet::ChunkWriter).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/fleet/envelope.h"

namespace sentinel::agent {

struct RemoteQueryOutcome {
  int64_t rows = 0;
  bool truncated = false;
  // not_select: the sandbox refused the SQL before it ran (not one read-only
  // SELECT of the visible tables, or it does not compile); sql_error: it
  // failed while running (time limit, memory ceiling); internal: the worker
  // could not start. The error chunk has been sent.
  std::optional<fleet::QueryError> error;
};

// A query worker kept from one live query to the next: starting the worker
// process (exec, dynamic linking, opening the store) was most of what a
// query cost a host, and a fan-out to many hosts pays it on every one. It is
// reused only after a query that ended cleanly (no error, not truncated: the
// worker answered everything), for the same store, at most kWarmMaxUses
// times and within kWarmIdleMs of its last query; else it is replaced.
struct WarmQueryWorker {
  static constexpr int kWarmMaxUses = 1000;
  static constexpr int64_t kWarmIdleMs = 60'000;
  std::string database_path;
  int64_t busy_timeout_ms = 0;
  int64_t last_used_ms = 0;
  int uses = 0;
  std::unique_ptr<detection::QueryWorker> worker;
};

// Runs `q` and sends every chunk (the last one final) through `send`. A
// failed send stops the query (outcome: internal, naming the send error).
// `track` is told the worker once it runs and nullptr before it goes (so
// another thread may Cancel() it in between: a shutdown).
RemoteQueryOutcome RunRemoteQuery(const config::Config& cfg, const fleet::QueryRequest& q,
                                  const std::string& host_id,
                                  const std::function<Status(const std::string& chunk)>& send,
                                  const std::function<void(detection::QueryWorker*)>& track,
                                  WarmQueryWorker* warm);

}  // namespace sentinel::agent
