#include "sentinelfleet/ingest.h"

#include <nlohmann/json.hpp>

#include "sentinel/base/time.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::console {

Result<std::unique_ptr<Ingest>> Ingest::Start(fleet::NatsClient& client, ConsoleStore& store) {
  std::unique_ptr<Ingest> ingest(new Ingest(client, store));
  Ingest* self = ingest.get();
  ASSIGN_OR_RETURN(ingest->consumer_, client.PullSubscribe(std::string(fleet::kAlertsStream),
                                                           std::string(fleet::kAlertsSubjects),
                                                           std::string(fleet::kConsoleDurable)));
  ASSIGN_OR_RETURN(
      ingest->watch_,
      client.KvWatch(std::string(fleet::kHostsBucket), ">",
                     [self](const std::string& key, std::optional<std::string> value, uint64_t rev) {
                       if (!value) return;  // a deleted key: the host row stays as last seen
                       std::lock_guard lock(self->mu_);
                       self->pending_.push_back({key, std::move(*value), rev});
                     }));
  return ingest;
}

Status Ingest::StoreAlerts(std::vector<fleet::JsMsg>& msgs, RoundStats& stats) {
  std::vector<ReceivedAlert> batch;
  std::vector<fleet::JsMsg*> to_ack;
  for (fleet::JsMsg& m : msgs) {
    auto a = ParseAlertMessage(m.subject, m.headers, m.data, m.stream_seq);
    if (a.ok()) {
      batch.push_back(std::move(*a));
    } else {
      ++stats.rejected;
      telemetry::LogWarn("alert message refused, acknowledged and dropped",
                         {{"stream_seq", m.stream_seq}, {"error", a.status().message()}});
    }
    to_ack.push_back(&m);
  }
  ASSIGN_OR_RETURN(int64_t added, store_.AddAlerts(batch, NowMs()));
  stats.stored += added;
  stats.duplicates += static_cast<int64_t>(batch.size()) - added;
  // Only now, with the batch committed.
  for (fleet::JsMsg* m : to_ack) {
    if (Status s = m->ack(); !s.ok()) {
      ++stats.ack_errors;
      telemetry::LogWarn("ack failed (the alert comes back and is absorbed)",
                         {{"stream_seq", m->stream_seq}, {"error", s.message()}});
    }
  }
  return Status::Ok();
}

Status Ingest::StoreHeartbeats(RoundStats& stats) {
  std::vector<Heartbeat> todo;
  {
    std::lock_guard lock(mu_);
    todo.swap(pending_);
  }
  for (const Heartbeat& h : todo) {
    Status s = store_.PutHeartbeat(h.host_id, h.value, h.revision, NowMs());
    if (s.code() == StatusCode::kInvalidArgument) {
      telemetry::LogWarn("heartbeat refused", {{"error", s.message()}});
      continue;
    }
    if (!s.ok()) {
      // Put back what is left, to write at the next round.
      std::lock_guard lock(mu_);
      pending_.insert(pending_.begin(), todo.begin() + (&h - todo.data()), todo.end());
      return s;
    }
    ++stats.heartbeats;
  }
  return Status::Ok();
}

Result<RoundStats> Ingest::Round(int max, int64_t timeout_ms) {
  RoundStats stats;
  std::vector<fleet::JsMsg> msgs;
  if (unstored_.empty()) {
    ASSIGN_OR_RETURN(msgs, consumer_->Fetch(max, timeout_ms));
    stats.fetched = static_cast<int64_t>(msgs.size());
  } else {
    msgs.swap(unstored_);
  }
  if (!msgs.empty()) {
    if (Status s = StoreAlerts(msgs, stats); !s.ok()) {
      unstored_ = std::move(msgs);
      return s;
    }
  }
  RETURN_IF_ERROR(StoreHeartbeats(stats));
  return stats;
}

void IngestState::Consuming() {
  std::lock_guard lock(mu_);
  consuming_ = true;
  detail_ = "consuming SENTINELD_ALERTS and sentineld_hosts";
}

void IngestState::Waiting(std::string error) {
  std::lock_guard lock(mu_);
  consuming_ = false;
  detail_ = "waiting for the fleet: " + std::move(error);
}

std::pair<bool, std::string> IngestState::Get() const {
  std::lock_guard lock(mu_);
  return {consuming_, detail_};
}

}  // namespace sentinel::console
