#include "sentinelagent/fleet_query.h"

#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/hex.h"
#include "sentinel/base/time.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/storage/store.h"

namespace sentinel::agent {
namespace {

using nlohmann::json;

// Longest error message put in a reply chunk.
constexpr std::size_t kMaxErrorMessage = 4096;

fleet::QueryError Error(std::string code, const std::string& message) {
  return {std::move(code), message.substr(0, kMaxErrorMessage)};
}

json CellJson(const detection::WireCell& c) {
  switch (c.type) {
    case detection::WireCell::Type::kInteger: return c.integer;
    case detection::WireCell::Type::kReal: return c.real;
    case detection::WireCell::Type::kText: return c.bytes;  // invalid UTF-8 is replaced when dumped
    case detection::WireCell::Type::kBlob: return ToHex(c.bytes);
    default: return nullptr;
  }
}

// The worker's request: the SQL, the standard parameters, the rule time limit.
Result<detection::QueryRequest> MakeRequest(const config::Config& cfg, const fleet::QueryRequest& q) {
  detection::QueryRequest request;
  request.sql = q.sql;
  request.limits.timeout_ms = cfg.detection.rule_timeout_secs * 1000;
  ASSIGN_OR_RETURN(auto db, storage::OpenStore(storage::DatabaseKind::kEvents,
                                               {cfg.database.path, storage::OpenMode::kReadOnly,
                                                cfg.database.busy_timeout_ms}));
  ASSIGN_OR_RETURN(request.default_params, detection::StandardQueryParams(*db, NowMs()));
  return request;
}

// Streams the rows through `w`, sending full chunks; the final chunk is the caller's.
Status StreamRows(detection::QueryWorker& worker, const fleet::QueryRequest& q, fleet::ChunkWriter& w,
                  const std::function<Status(const std::string&)>& send, RemoteQueryOutcome* out) {
  std::vector<detection::WireCell> row;
  while (true) {
    ASSIGN_OR_RETURN(bool more, worker.NextRow(&row));
    if (!more) return Status::Ok();
    if (out->rows >= q.max_rows) {
      out->truncated = true;
      return Status::Ok();
    }
    json cells = json::array();
    for (const auto& c : row) cells.push_back(CellJson(c));
    ++out->rows;
    if (auto chunk = w.Add(std::move(cells))) {
      if (Status s = send(*chunk); !s.ok()) return InternalError("sending a reply chunk: " + s.message());
    }
  }
}

RemoteQueryOutcome Fail(const fleet::QueryRequest& q, const std::string& host_id, fleet::QueryError error,
                        const std::function<Status(const std::string&)>& send, RemoteQueryOutcome out) {
  send(fleet::ChunkWriter::Error(q.query_id, host_id, error)).IgnoreError();
  out.error = std::move(error);
  return out;
}

// The query on a running worker: columns, rows in chunks, the final chunk.
RemoteQueryOutcome RunOnWorker(detection::QueryWorker& worker, const detection::QueryRequest& request,
                               const fleet::QueryRequest& q, const std::string& host_id,
                               const std::function<Status(const std::string&)>& send) {
  RemoteQueryOutcome out;
  auto columns = worker.BeginQuery(request);
  if (!columns.ok()) {
    const bool refused = columns.status().code() == StatusCode::kInvalidArgument;
    return Fail(q, host_id, Error(refused ? "not_select" : "sql_error", columns.status().message()), send,
                out);
  }
  fleet::ChunkWriter w(q.query_id, host_id, *columns);
  if (Status s = StreamRows(worker, q, w, send, &out); !s.ok()) {
    const bool internal = s.code() == StatusCode::kInternal;
    return Fail(q, host_id, Error(internal ? "internal" : "sql_error", s.message()), send, out);
  }
  if (Status s = send(w.Finish(out.truncated)); !s.ok())
    out.error = Error("internal", "sending the final reply chunk: " + s.message());
  return out;
}

}  // namespace

RemoteQueryOutcome RunRemoteQuery(const config::Config& cfg, const fleet::QueryRequest& q,
                                  const std::string& host_id,
                                  const std::function<Status(const std::string& chunk)>& send,
                                  const std::function<void(detection::QueryWorker*)>& track,
                                  WarmQueryWorker* warm) {
  auto request = MakeRequest(cfg, q);
  if (!request.ok()) return Fail(q, host_id, Error("internal", request.status().message()), send, {});
  const bool reuse = warm->worker && warm->worker->usable() && warm->database_path == cfg.database.path &&
                     warm->busy_timeout_ms == cfg.database.busy_timeout_ms &&
                     warm->uses < WarmQueryWorker::kWarmMaxUses &&
                     MonotonicMs() - warm->last_used_ms < WarmQueryWorker::kWarmIdleMs;
  if (!reuse) {
    warm->worker.reset();
    detection::WorkerSetup setup;
    setup.database_path = cfg.database.path;
    setup.busy_timeout_ms = cfg.database.busy_timeout_ms;
    auto worker = detection::QueryWorker::Start(setup);
    if (!worker.ok()) return Fail(q, host_id, Error("internal", worker.status().message()), send, {});
    warm->worker = std::move(*worker);
    warm->database_path = cfg.database.path;
    warm->busy_timeout_ms = cfg.database.busy_timeout_ms;
    warm->uses = 0;
  }
  track(warm->worker.get());
  RemoteQueryOutcome out = RunOnWorker(*warm->worker, *request, q, host_id, send);
  track(nullptr);
  ++warm->uses;
  warm->last_used_ms = MonotonicMs();
  // Kept only when it answered everything it was asked: after a truncated
  // result the rest of the rows are still on their way.
  if (out.error || out.truncated || !warm->worker->usable()) warm->worker.reset();
  return out;
}

}  // namespace sentinel::agent
