#include "sentinel/alertstore/delivery_store.h"

#include "sentinel/base/strings.h"

namespace sentinel::alerting {
namespace {

constexpr std::string_view kCursorKey = "delivery_enqueued_through_alert_id";

// Error texts come from peers (HTTP bodies, curl, sockets): bounded in size.
std::string Bounded(const std::string& s) {
  constexpr size_t kMax = 1000;
  return s.size() <= kMax ? s : s.substr(0, kMax) + "...";
}

}  // namespace

std::string_view AttemptStatusName(AttemptStatus s) {
  switch (s) {
    case AttemptStatus::kSuccess: return "success";
    case AttemptStatus::kFailure: return "failure";
    case AttemptStatus::kSkipped: return "skipped";
    case AttemptStatus::kUnknown: return "unknown";
    case AttemptStatus::kNotAttempted: return "not_attempted";
  }
  return "failure";
}

Result<std::unique_ptr<DeliveryStore>> DeliveryStore::Open(const std::string& path, int64_t busy_timeout_ms) {
  ASSIGN_OR_RETURN(auto db, storage::Database::Open(path, storage::OpenMode::kReadWrite, busy_timeout_ms));
  RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON"));
  ASSIGN_OR_RETURN(
      auto has_queue,
      db->QueryInt("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='delivery_queue'"));
  if (has_queue.value_or(0) == 0) {
    return FailedPreconditionError(path + ": event store has no delivery_queue (schema older than 3)");
  }
  return std::make_unique<DeliveryStore>(std::move(db));
}

Result<std::map<std::string, int64_t>> DeliveryStore::EnqueueNewAlerts(const std::vector<SinkRoute>& routes,
                                                                       int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::map<std::string, int64_t> out;
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(auto cursor_text, db_->QueryText("SELECT value FROM system_metadata WHERE key = '" +
                                                    std::string(kCursorKey) + "'"));
  const int64_t cursor = cursor_text ? ParseInt64(*cursor_text).value_or(0) : 0;
  ASSIGN_OR_RETURN(auto max_id, db_->QueryInt("SELECT max(id) FROM alerts"));
  const int64_t through = max_id.value_or(0);
  if (through <= cursor) return out;
  ASSIGN_OR_RETURN(
      auto insert,
      db_->PrepareCached("INSERT INTO delivery_queue(alert_id, sink_name, attempts, next_attempt_ms, "
                         "enqueued_at_ms) SELECT id, ?1, 0, ?2, ?2 FROM alerts WHERE id > ?3 AND id <= ?4 "
                         "AND (CASE severity WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 "
                         "ELSE 3 END) >= ?5 ON CONFLICT(alert_id, sink_name) DO NOTHING"));
  for (const SinkRoute& route : routes) {
    RETURN_IF_ERROR(insert.BindText(1, route.name));
    RETURN_IF_ERROR(insert.BindInt(2, now_ms));
    RETURN_IF_ERROR(insert.BindInt(3, cursor));
    RETURN_IF_ERROR(insert.BindInt(4, through));
    RETURN_IF_ERROR(insert.BindInt(5, route.min_severity ? static_cast<int>(*route.min_severity) : 0));
    RETURN_IF_ERROR(insert.Run());
    out[route.name] = db_->Changes();
  }
  ASSIGN_OR_RETURN(auto set, db_->PrepareCached(
                                 "INSERT INTO system_metadata(key, value, updated_at_ms) VALUES(?1, ?2, ?3) "
                                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                                 "updated_at_ms = excluded.updated_at_ms"));
  RETURN_IF_ERROR(set.BindText(1, kCursorKey));
  RETURN_IF_ERROR(set.BindText(2, std::to_string(through)));
  RETURN_IF_ERROR(set.BindInt(3, now_ms));
  RETURN_IF_ERROR(set.Run());
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Result<RecoveryReport> DeliveryStore::Recover(const std::set<std::string>& configured, int64_t now_ms) {
  std::lock_guard lock(mu_);
  RecoveryReport report;
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(*db_));
  RETURN_IF_ERROR(
      db_->Exec("UPDATE alert_deliveries SET status = 'unknown', error = 'the agent stopped during "
                "this attempt; the sink may or may not have received the alert' "
                "WHERE status = 'in_flight'"));
  report.unknown = db_->Changes();
  // Pending rows of sinks that are gone from the configuration: dead letters, never silently dropped.
  ASSIGN_OR_RETURN(auto sinks, db_->Prepare("SELECT DISTINCT sink_name FROM delivery_queue"));
  std::vector<std::string> orphans;
  while (true) {
    ASSIGN_OR_RETURN(bool row, sinks.Step());
    if (!row) break;
    std::string name = sinks.ColumnText(0);
    if (!configured.count(name)) orphans.push_back(std::move(name));
  }
  for (const std::string& name : orphans) {
    ASSIGN_OR_RETURN(
        auto move,
        db_->Prepare(
            "INSERT INTO dead_letter_queue(alert_id, sink_name, failed_at, attempts, last_error, payload) "
            "SELECT q.alert_id, q.sink_name, ?2, q.attempts, 'sink no longer configured', "
            "json_object('alert_id', q.alert_id) FROM delivery_queue q WHERE q.sink_name = ?1 "
            "ON CONFLICT(alert_id, sink_name) DO UPDATE SET failed_at = excluded.failed_at, "
            "last_error = excluded.last_error, retry_requested_at_ms = NULL"));
    RETURN_IF_ERROR(move.BindText(1, name));
    RETURN_IF_ERROR(move.BindInt(2, now_ms));
    RETURN_IF_ERROR(move.Run());
    ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM delivery_queue WHERE sink_name = ?1"));
    RETURN_IF_ERROR(del.BindText(1, name));
    RETURN_IF_ERROR(del.Run());
    report.orphaned += db_->Changes();
  }
  ASSIGN_OR_RETURN(auto counts,
                   db_->Prepare("SELECT sink_name, count(*) FROM delivery_queue GROUP BY sink_name"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, counts.Step());
    if (!row) break;
    report.pending[counts.ColumnText(0)] = counts.ColumnInt(1);
  }
  RETURN_IF_ERROR(tx.Commit());
  return report;
}

Result<std::vector<QueueEntry>> DeliveryStore::Pending(const std::string& sink, int64_t limit) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto st,
                   db_->PrepareCached("SELECT id, alert_id, attempts, next_attempt_ms FROM delivery_queue "
                                      "WHERE sink_name = ?1 ORDER BY next_attempt_ms, id LIMIT ?2"));
  RETURN_IF_ERROR(st.BindText(1, sink));
  RETURN_IF_ERROR(st.BindInt(2, limit));
  std::vector<QueueEntry> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    QueueEntry e;
    e.id = st.ColumnInt(0);
    e.alert_id = st.ColumnInt(1);
    e.sink = sink;
    e.attempts = static_cast<int>(st.ColumnInt(2));
    e.next_attempt_ms = st.ColumnInt(3);
    out.push_back(std::move(e));
  }
  return out;
}

Result<int64_t> DeliveryStore::PendingCount(const std::string& sink) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto st, db_->PrepareCached("SELECT count(*) FROM delivery_queue WHERE sink_name = ?1"));
  RETURN_IF_ERROR(st.BindText(1, sink));
  ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.ColumnInt(0) : 0;
}

Status DeliveryStore::BeginAttempts(std::vector<QueueEntry>& entries, int64_t now_ms) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(auto insert,
                   db_->PrepareCached("INSERT INTO alert_deliveries(alert_id, sink_name, attempt, "
                                      "attempted_at_ms, status) VALUES(?1, ?2, ?3, ?4, 'in_flight')"));
  ASSIGN_OR_RETURN(auto bump, db_->PrepareCached("UPDATE delivery_queue SET attempts = ?2 WHERE id = ?1"));
  std::vector<int64_t> delivery_ids;
  delivery_ids.reserve(entries.size());
  for (QueueEntry& e : entries) {
    RETURN_IF_ERROR(insert.BindInt(1, e.alert_id));
    RETURN_IF_ERROR(insert.BindText(2, e.sink));
    RETURN_IF_ERROR(insert.BindInt(3, e.attempts + 1));
    RETURN_IF_ERROR(insert.BindInt(4, now_ms));
    RETURN_IF_ERROR(insert.Run());
    delivery_ids.push_back(db_->LastInsertRowId());
    RETURN_IF_ERROR(bump.BindInt(1, e.id));
    RETURN_IF_ERROR(bump.BindInt(2, e.attempts + 1));
    RETURN_IF_ERROR(bump.Run());
  }
  RETURN_IF_ERROR(tx.Commit());
  // Only once committed do the entries reflect it.
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].delivery_id = delivery_ids[i];
    ++entries[i].attempts;
  }
  return Status::Ok();
}

Status DeliveryStore::FinishAttempts(const std::vector<QueueEntry>& entries,
                                     const std::vector<AttemptOutcome>& outcomes, int64_t now_ms) {
  if (entries.size() != outcomes.size())
    return InternalError("FinishAttempts: entries and outcomes differ in size");
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(auto record, db_->PrepareCached(
                                    "UPDATE alert_deliveries SET status = ?2, error = ?3, duration_ms = ?4, "
                                    "http_status = ?5 WHERE id = ?1"));
  ASSIGN_OR_RETURN(auto undo_row, db_->PrepareCached("DELETE FROM alert_deliveries WHERE id = ?1"));
  ASSIGN_OR_RETURN(auto undo_count,
                   db_->PrepareCached("UPDATE delivery_queue SET attempts = ?2 WHERE id = ?1"));
  ASSIGN_OR_RETURN(auto done, db_->PrepareCached("DELETE FROM delivery_queue WHERE id = ?1"));
  ASSIGN_OR_RETURN(auto delivered_dlq,
                   db_->PrepareCached("DELETE FROM dead_letter_queue WHERE alert_id = ?1 AND "
                                      "sink_name = ?2"));
  ASSIGN_OR_RETURN(auto again,
                   db_->PrepareCached("UPDATE delivery_queue SET next_attempt_ms = ?2, last_error = ?3 "
                                      "WHERE id = ?1"));
  ASSIGN_OR_RETURN(
      auto dead,
      db_->PrepareCached(
          "INSERT INTO dead_letter_queue(alert_id, sink_name, failed_at, attempts, last_error, payload) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(alert_id, sink_name) DO UPDATE SET "
          "failed_at = excluded.failed_at, attempts = dead_letter_queue.attempts + excluded.attempts, "
          "last_error = excluded.last_error, payload = excluded.payload, retry_requested_at_ms = NULL"));
  for (size_t i = 0; i < entries.size(); ++i) {
    const QueueEntry& e = entries[i];
    const AttemptOutcome& o = outcomes[i];
    if (o.status == AttemptStatus::kNotAttempted) {
      RETURN_IF_ERROR(undo_row.BindInt(1, e.delivery_id));
      RETURN_IF_ERROR(undo_row.Run());
      RETURN_IF_ERROR(undo_count.BindInt(1, e.id));
      RETURN_IF_ERROR(undo_count.BindInt(2, e.attempts - 1));
      RETURN_IF_ERROR(undo_count.Run());
      continue;
    }
    RETURN_IF_ERROR(record.BindInt(1, e.delivery_id));
    RETURN_IF_ERROR(record.BindText(2, AttemptStatusName(o.status)));
    if (o.status == AttemptStatus::kSuccess) {
      RETURN_IF_ERROR(record.BindNull(3));
    } else {
      RETURN_IF_ERROR(record.BindText(3, Bounded(o.error)));
    }
    RETURN_IF_ERROR(record.BindInt(4, o.duration_ms));
    RETURN_IF_ERROR(
        record.BindOptionalInt(5, o.http_status ? std::optional<int64_t>(*o.http_status) : std::nullopt));
    RETURN_IF_ERROR(record.Run());
    if (o.status == AttemptStatus::kSuccess) {
      RETURN_IF_ERROR(done.BindInt(1, e.id));
      RETURN_IF_ERROR(done.Run());
      RETURN_IF_ERROR(delivered_dlq.BindInt(1, e.alert_id));
      RETURN_IF_ERROR(delivered_dlq.BindText(2, e.sink));
      RETURN_IF_ERROR(delivered_dlq.Run());
    } else if (o.next_attempt_ms) {
      RETURN_IF_ERROR(again.BindInt(1, e.id));
      RETURN_IF_ERROR(again.BindInt(2, *o.next_attempt_ms));
      RETURN_IF_ERROR(again.BindText(3, Bounded(o.error)));
      RETURN_IF_ERROR(again.Run());
    } else {
      RETURN_IF_ERROR(dead.BindInt(1, e.alert_id));
      RETURN_IF_ERROR(dead.BindText(2, e.sink));
      RETURN_IF_ERROR(dead.BindInt(3, now_ms));
      RETURN_IF_ERROR(dead.BindInt(4, e.attempts));
      RETURN_IF_ERROR(dead.BindText(5, Bounded(o.error)));
      RETURN_IF_ERROR(dead.BindText(6, o.payload.empty() ? std::string("{}") : o.payload));
      RETURN_IF_ERROR(dead.Run());
      RETURN_IF_ERROR(done.BindInt(1, e.id));
      RETURN_IF_ERROR(done.Run());
    }
  }
  return tx.Commit();
}

Result<Alert> DeliveryStore::LoadAlert(int64_t alert_id) {
  std::lock_guard lock(mu_);
  return GetAlert(*db_, alert_id);
}

Result<int64_t> DeliveryStore::DeadLetterCount() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto n, db_->QueryInt("SELECT count(*) FROM dead_letter_queue"));
  return n.value_or(0);
}

Result<std::vector<DeadLetter>> ListDeadLetters(storage::Database& db, const std::string& sink) {
  ASSIGN_OR_RETURN(
      auto st,
      db.Prepare(
          "SELECT d.id, d.alert_id, d.sink_name, d.failed_at, d.attempts, d.last_error, "
          "d.retry_requested_at_ms, "
          "EXISTS(SELECT 1 FROM delivery_queue q WHERE q.alert_id = d.alert_id AND q.sink_name = "
          "d.sink_name), "
          "a.rule_id, a.severity, a.title FROM dead_letter_queue d LEFT JOIN alerts a ON a.id = d.alert_id "
          "WHERE ?1 = '' OR d.sink_name = ?1 ORDER BY d.failed_at, d.id"));
  RETURN_IF_ERROR(st.BindText(1, sink));
  std::vector<DeadLetter> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    DeadLetter d;
    d.id = st.ColumnInt(0);
    d.alert_id = st.ColumnInt(1);
    d.sink = st.ColumnText(2);
    d.failed_at = st.ColumnInt(3);
    d.attempts = st.ColumnInt(4);
    d.last_error = st.ColumnOptionalText(5).value_or("");
    d.retry_requested_at_ms = st.ColumnOptionalInt(6);
    d.queued = st.ColumnInt(7) != 0;
    d.rule_id = st.ColumnOptionalText(8).value_or("");
    d.severity = st.ColumnOptionalText(9).value_or("");
    d.title = st.ColumnOptionalText(10).value_or("");
    out.push_back(std::move(d));
  }
  return out;
}

Result<RetryReport> RetryDeadLetters(storage::Database& db, const std::vector<int64_t>& ids,
                                     const std::string& sink, int64_t now_ms) {
  RetryReport report;
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(db));
  std::vector<int64_t> selected;
  if (ids.empty()) {
    ASSIGN_OR_RETURN(auto all,
                     db.Prepare("SELECT id FROM dead_letter_queue WHERE ?1 = '' OR sink_name = ?1"));
    RETURN_IF_ERROR(all.BindText(1, sink));
    while (true) {
      ASSIGN_OR_RETURN(bool row, all.Step());
      if (!row) break;
      selected.push_back(all.ColumnInt(0));
    }
  } else {
    ASSIGN_OR_RETURN(auto one, db.Prepare("SELECT 1 FROM dead_letter_queue WHERE id = ?1 AND (?2 = '' OR "
                                          "sink_name = ?2)"));
    for (int64_t id : ids) {
      RETURN_IF_ERROR(one.BindInt(1, id));
      RETURN_IF_ERROR(one.BindText(2, sink));
      ASSIGN_OR_RETURN(bool row, one.Step());
      one.Reset();
      if (!row) {
        return NotFoundError("no dead letter with id " + std::to_string(id) +
                             (sink.empty() ? std::string() : " for sink " + QuoteForMessage(sink)));
      }
      selected.push_back(id);
    }
  }
  ASSIGN_OR_RETURN(
      auto queue, db.Prepare("INSERT INTO delivery_queue(alert_id, sink_name, attempts, next_attempt_ms, "
                             "enqueued_at_ms, dlq_id) "
                             "SELECT alert_id, sink_name, 0, ?2, ?2, id FROM dead_letter_queue WHERE id = ?1 "
                             "ON CONFLICT(alert_id, sink_name) DO NOTHING"));
  ASSIGN_OR_RETURN(auto mark,
                   db.Prepare("UPDATE dead_letter_queue SET retry_requested_at_ms = ?2 WHERE id = ?1"));
  for (int64_t id : selected) {
    RETURN_IF_ERROR(queue.BindInt(1, id));
    RETURN_IF_ERROR(queue.BindInt(2, now_ms));
    RETURN_IF_ERROR(queue.Run());
    if (db.Changes() > 0) {
      ++report.queued;
    } else {
      ++report.already_queued;
    }
    RETURN_IF_ERROR(mark.BindInt(1, id));
    RETURN_IF_ERROR(mark.BindInt(2, now_ms));
    RETURN_IF_ERROR(mark.Run());
  }
  RETURN_IF_ERROR(tx.Commit());
  return report;
}

}  // namespace sentinel::alerting
