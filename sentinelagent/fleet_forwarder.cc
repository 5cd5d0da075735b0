#include "sentinelagent/fleet_forwarder.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>

#include "sentinel/base/strings.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::agent {
namespace {

using nlohmann::json;
using telemetry::LogInfo;
using telemetry::LogWarn;

constexpr int64_t kFirstPauseMs = 200;
constexpr int64_t kMaxPauseMs = 5000;
constexpr int64_t kFailureLogEveryMs = 60'000;
// Strings longer than this are the first thing cut from an oversized message.
constexpr std::size_t kCutStringBytes = 1024;
// The summary of a scan is repeated in each chunk: kept small.
constexpr std::size_t kMaxSummaryBytes = 16 << 10;

// Columns whose text is JSON: embedded as JSON in the messages.
constexpr std::array<std::string_view, 5> kJsonColumns = {"command_line", "parent_command_line", "env",
                                                          "platform_data", "error_summary"};

// The process columns of a forwarded scan: process_snapshots without the
// view's synthetic id, the scan (in the chunk) and command_text (command_line).
constexpr std::string_view kScanProcessesSql =
    "SELECT pid, ppid, name, exe_path, command_line, start_time, cpu_percent, memory_bytes, status, "
    "user_id, user_name, effective_uid, exe_hash, hash_algorithm, platform_data "
    "FROM process_snapshots WHERE scan_id = ?1 ORDER BY pid, start_time";

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool Transient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

// `s` cut to at most `max` bytes at a UTF-8 character boundary, with a marker.
std::string CutString(const std::string& s, std::size_t max) {
  std::size_t n = std::min(max, s.size());
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "…[truncated " + std::to_string(s.size() - n) + " bytes]";
}

void CutLongStrings(json& j) {
  for (auto& [key, v] : j.items()) {
    if (v.is_string() && v.get_ref<const std::string&>().size() > kCutStringBytes) {
      v = CutString(v.get_ref<const std::string&>(), kCutStringBytes);
    } else if (v.is_structured()) {
      CutLongStrings(v);
    }
  }
}

// The member of `j` (not `keep`) whose JSON is the largest, or "" when none is left.
std::string LargestMember(const json& j, const std::vector<std::string>& keep) {
  std::string best;
  std::size_t best_size = 0;
  for (const auto& [key, v] : j.items()) {
    if (v.is_null() || std::find(keep.begin(), keep.end(), key) != keep.end()) continue;
    const std::size_t size = Dump(v).size();
    if (size > best_size) {
      best = key;
      best_size = size;
    }
  }
  return best;
}

std::string TableOf(ForwardKind kind) {
  return kind == ForwardKind::kEvents ? "process_events" : "scan_metadata";
}

std::string IdColumnOf(ForwardKind kind) {
  return kind == ForwardKind::kEvents ? "id" : "scan_id";
}

}  // namespace

std::string_view ForwardKindName(ForwardKind kind) {
  return kind == ForwardKind::kEvents ? "events" : "scans";
}

bool Forwards(const config::Config& cfg, ForwardKind kind) {
  const auto& f = cfg.fleet.forward;
  return !cfg.fleet.servers.empty() && std::find(f.begin(), f.end(), ForwardKindName(kind)) != f.end();
}

// ---- cursors

Result<std::optional<int64_t>> ReadForwardCursor(storage::Database& db, ForwardKind kind) {
  ASSIGN_OR_RETURN(auto st, db.PrepareCached("SELECT last_id FROM fleet_forward_cursors WHERE stream = ?1"));
  RETURN_IF_ERROR(st.BindText(1, ForwardKindName(kind)));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<int64_t>();
  return std::optional<int64_t>(st.ColumnInt(0));
}

Status SetForwardCursor(storage::Database& db, ForwardKind kind, int64_t last_id, int64_t now_ms) {
  ASSIGN_OR_RETURN(auto st,
                   db.PrepareCached("INSERT INTO fleet_forward_cursors(stream, last_id, updated_at_ms) "
                                    "VALUES(?1, ?2, ?3) ON CONFLICT(stream) DO UPDATE SET "
                                    "last_id = excluded.last_id, updated_at_ms = excluded.updated_at_ms"));
  RETURN_IF_ERROR(st.BindText(1, ForwardKindName(kind)));
  RETURN_IF_ERROR(st.BindInt(2, last_id));
  RETURN_IF_ERROR(st.BindInt(3, now_ms));
  return st.Run();
}

Result<int64_t> ForwardTableEnd(storage::Database& db, ForwardKind kind) {
  const std::string table = TableOf(kind);
  ASSIGN_OR_RETURN(
      auto end,
      db.QueryInt("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '" + table +
                  "'), 0), coalesce((SELECT max(" + IdColumnOf(kind) + ") FROM " + table + "), 0))"));
  return end.value_or(0);
}

Result<int64_t> EnsureForwardCursor(storage::Database& db, ForwardKind kind, int64_t now_ms) {
  ASSIGN_OR_RETURN(std::optional<int64_t> cursor, ReadForwardCursor(db, kind));
  if (cursor) return *cursor;
  ASSIGN_OR_RETURN(int64_t end, ForwardTableEnd(db, kind));
  RETURN_IF_ERROR(SetForwardCursor(db, kind, end, now_ms));
  LogInfo("fleet: forwarding " + std::string(ForwardKindName(kind)) +
              " starts after the current end; earlier history stays on this host",
          {{"stream", std::string(ForwardKindName(kind))}, {"after_id", end}});
  return end;
}

Status SyncForwardCursors(storage::Database& db, const config::Config& cfg, int64_t now_ms) {
  for (ForwardKind kind : {ForwardKind::kEvents, ForwardKind::kScans}) {
    if (Forwards(cfg, kind)) {
      RETURN_IF_ERROR(EnsureForwardCursor(db, kind, now_ms).status());
      continue;
    }
    ASSIGN_OR_RETURN(auto del, db.PrepareCached("DELETE FROM fleet_forward_cursors WHERE stream = ?1"));
    RETURN_IF_ERROR(del.BindText(1, ForwardKindName(kind)));
    RETURN_IF_ERROR(del.Run());
    if (db.Changes() > 0) {
      LogInfo("fleet: " + std::string(ForwardKindName(kind)) +
              " are no longer forwarded; their cursor is dropped (enabling them again starts at the end)");
    }
  }
  return Status::Ok();
}

// ---- message formats

std::string EventMsgId(std::string_view host_id, int64_t event_id) {
  return std::string(host_id) + ":e" + std::to_string(event_id);
}

std::string ScanMsgId(std::string_view host_id, int64_t scan_id, int chunk) {
  return std::string(host_id) + ":s" + std::to_string(scan_id) + "." + std::to_string(chunk);
}

json RowJson(const storage::Statement& st) {
  json row = json::object();
  for (int i = 0; i < st.ColumnCount(); ++i) {
    const std::string name = st.ColumnName(i);
    switch (st.ColumnType(i)) {
      case SQLITE_NULL: row[name] = nullptr; break;
      case SQLITE_INTEGER: row[name] = st.ColumnInt(i); break;
      case SQLITE_FLOAT: row[name] = st.ColumnDouble(i); break;
      default: {
        std::string text = st.ColumnText(i);
        if (std::find(kJsonColumns.begin(), kJsonColumns.end(), name) != kJsonColumns.end()) {
          json parsed = json::parse(SanitizeUtf8(text), nullptr, /*allow_exceptions=*/false);
          if (!parsed.is_discarded()) {
            row[name] = std::move(parsed);
            break;
          }
        }
        row[name] = std::move(text);  // invalid UTF-8 is replaced when dumped
      }
    }
  }
  return row;
}

std::string FitJson(json j, std::size_t max_bytes) {
  std::string out = Dump(j);
  if (out.size() <= max_bytes) return out;
  j["truncated"] = true;
  CutLongStrings(j);
  out = Dump(j);
  const std::vector<std::string> keep = {"id", "host_id", "scan_id", "event_type", "pid", "truncated"};
  while (out.size() > max_bytes) {
    const std::string largest = LargestMember(j, keep);
    if (largest.empty()) break;
    j[largest] = nullptr;
    out = Dump(j);
  }
  return out;
}

std::string EventMessage(std::string_view host_id, json row, std::size_t max_bytes) {
  row["host_id"] = std::string(host_id);
  return FitJson(std::move(row), max_bytes);
}

std::vector<std::string> ScanMessages(std::string_view host_id, int64_t scan_id, const json& summary,
                                      const std::vector<std::string>& process_rows, std::size_t max_bytes) {
  const std::string scan = FitJson(summary, std::min(kMaxSummaryBytes, max_bytes / 4));
  // Each chunk: the head, the rows joined by commas, "]}". "chunk"/"chunks" take at most 40 bytes.
  const std::string head_start = "{\"host_id\":" + Dump(std::string(host_id)) +
                                 ",\"scan_id\":" + std::to_string(scan_id) + ",\"scan\":" + scan;
  const std::size_t budget = max_bytes - std::min(max_bytes, head_start.size() + 64);
  std::vector<std::vector<const std::string*>> chunks(1);
  std::size_t used = 0;
  for (const std::string& row : process_rows) {
    if (!chunks.back().empty() && used + row.size() + 1 > budget) {
      chunks.emplace_back();
      used = 0;
    }
    chunks.back().push_back(&row);
    used += row.size() + 1;
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    std::string m = head_start + ",\"chunk\":" + std::to_string(i) +
                    ",\"chunks\":" + std::to_string(chunks.size()) + ",\"processes\":[";
    for (std::size_t r = 0; r < chunks[i].size(); ++r) {
      if (r > 0) m += ',';
      m += *chunks[i][r];
    }
    m += "]}";
    out.push_back(std::move(m));
  }
  return out;
}

// ---- the forwarder

FleetForwarder::FleetForwarder(ForwarderOptions options, fleet::NatsClient* client)
    : opts_(std::move(options)), client_(client) {}

std::unique_ptr<FleetForwarder> FleetForwarder::Start(ForwarderOptions options, fleet::NatsClient* client) {
  std::unique_ptr<FleetForwarder> f(new FleetForwarder(std::move(options), client));
  f->thread_ = std::thread([p = f.get()] { p->Loop(); });
  LogInfo("fleet: forwarding", {{"events", f->opts_.events},
                                {"scans", f->opts_.scans},
                                {"events_subject", fleet::EventSubject(f->opts_.host_id)},
                                {"scans_subject", fleet::ScanSubject(f->opts_.host_id)}});
  return f;
}

FleetForwarder::~FleetForwarder() {
  Stop();
}

void FleetForwarder::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool FleetForwarder::Stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool FleetForwarder::Pause(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (ms > 0) {
    opts_.clock->WaitUntil(lock, cv_, opts_.clock->MonotonicMs() + ms, [this] { return stopping_; });
  }
  return !stopping_;
}

void FleetForwarder::Loop() {
  int64_t backoff_ms = 0;
  int64_t pause_ms = 0;
  while (Pause(pause_ms)) {
    Result<bool> more = Round();
    if (!more.ok()) {
      NoteFailure(more.status());
      backoff_ms = std::clamp<int64_t>(backoff_ms * 2, kFirstPauseMs, kMaxPauseMs);
      pause_ms = backoff_ms;
      continue;
    }
    NoteRecovery();
    backoff_ms = 0;
    pause_ms = *more ? 0 : opts_.poll_ms;
  }
  // What was acknowledged but not yet stored (a failure to store it) is kept if the store lets us.
  if (db_) {
    if (opts_.events) StoreCursor(events_).IgnoreError();
    if (opts_.scans) StoreCursor(scans_).IgnoreError();
  }
}

// One round: a batch of events, then one scan. True when more may be waiting.
Result<bool> FleetForwarder::Round() {
  RETURN_IF_ERROR(OpenStore());
  bool more = false;
  if (opts_.events) {
    ASSIGN_OR_RETURN(bool m, ForwardEvents());
    more = more || m;
  }
  if (opts_.scans) {
    ASSIGN_OR_RETURN(bool m, ForwardScans());
    more = more || m;
  }
  return more;
}

Status FleetForwarder::OpenStore() {
  if (db_) return Status::Ok();
  ASSIGN_OR_RETURN(
      db_, storage::OpenStore(storage::DatabaseKind::kEvents,
                              {opts_.database_path, storage::OpenMode::kReadWrite, opts_.busy_timeout_ms}));
  return Status::Ok();
}

Status FleetForwarder::LoadCursor(Cursor& c) {
  if (c.acked) return Status::Ok();
  ASSIGN_OR_RETURN(int64_t id, EnsureForwardCursor(*db_, c.kind, opts_.clock->NowMs()));
  c.acked = id;
  c.stored = id;
  return Status::Ok();
}

Status FleetForwarder::StoreCursor(Cursor& c) {
  if (!c.acked || *c.acked == c.stored) return Status::Ok();
  RETURN_IF_ERROR(SetForwardCursor(*db_, c.kind, *c.acked, opts_.clock->NowMs()));
  c.stored = *c.acked;
  return Status::Ok();
}

Status FleetForwarder::Publish(const std::string& subject, const std::string& data,
                               const std::string& msg_id) {
  auto ack = client_->JsPublish(subject, data, msg_id, opts_.publish_timeout_ms);
  return ack.ok() ? Status::Ok() : ack.status();
}

// A batch of events in id order: read, then published one by one (no read
// transaction stays open while waiting for acknowledgements).
Result<bool> FleetForwarder::ForwardEvents() {
  RETURN_IF_ERROR(LoadCursor(events_));
  std::vector<std::pair<int64_t, json>> rows;
  {
    ASSIGN_OR_RETURN(auto st,
                     db_->PrepareCached("SELECT * FROM process_events WHERE id > ?1 ORDER BY id LIMIT ?2"));
    RETURN_IF_ERROR(st.BindInt(1, *events_.acked));
    RETURN_IF_ERROR(st.BindInt(2, opts_.batch_rows));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      rows.emplace_back(st.ColumnInt(0), RowJson(st));
    }
  }
  const std::string subject = fleet::EventSubject(opts_.host_id);
  for (auto& [id, row] : rows) {
    if (Stopping()) break;
    // Ids are never reused or skipped (AUTOINCREMENT): a gap is rows retention deleted.
    if (id > *events_.acked + 1)
      NoteLost(ForwardKind::kEvents, *events_.acked + 1, id - 1, id - *events_.acked - 1);
    Status s = Publish(subject, EventMessage(opts_.host_id, std::move(row), opts_.max_message_bytes),
                       EventMsgId(opts_.host_id, id));
    if (!s.ok()) {
      StoreCursor(events_).IgnoreError();
      return s;
    }
    events_.acked = id;
  }
  RETURN_IF_ERROR(StoreCursor(events_));
  return static_cast<int64_t>(rows.size()) >= opts_.batch_rows;
}

// The next completed scan after the cursor, if any.
Result<bool> FleetForwarder::ForwardScans() {
  RETURN_IF_ERROR(LoadCursor(scans_));
  int64_t scan_id = 0;
  int64_t older_rows = 0;
  json summary;
  {
    ASSIGN_OR_RETURN(
        auto st,
        db_->PrepareCached("SELECT scan_id, started_at_ms, completed_at_ms, duration_ms, process_count, "
                           "new_processes, exited_processes, errors, error_summary, hash_cache_hits, "
                           "hash_cache_misses, hostname, collector_version, "
                           "(SELECT count(*) FROM scan_metadata o WHERE o.scan_id > ?1 AND "
                           "o.scan_id < s.scan_id) AS older_rows "
                           "FROM scan_metadata s WHERE scan_id > ?1 AND status = 'completed' "
                           "ORDER BY scan_id LIMIT 1"));
    RETURN_IF_ERROR(st.BindInt(1, *scans_.acked));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return false;
    scan_id = st.ColumnInt(0);
    summary = RowJson(st);
    older_rows = summary["older_rows"].get<int64_t>();
    summary.erase("older_rows");
  }
  // Scans between the cursor and this one that are not in the table any more
  // (failed or unfinished ones still are) were deleted by retention.
  const int64_t missing = scan_id - *scans_.acked - 1 - older_rows;
  if (missing > 0) NoteLost(ForwardKind::kScans, *scans_.acked + 1, scan_id - 1, missing);
  return ForwardScan(scan_id, summary);
}

Result<std::vector<std::string>> FleetForwarder::ScanProcessRows(int64_t scan_id) {
  std::vector<std::string> rows;
  ASSIGN_OR_RETURN(auto st, db_->PrepareCached(kScanProcessesSql));
  RETURN_IF_ERROR(st.BindInt(1, scan_id));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    rows.push_back(FitJson(RowJson(st), opts_.max_message_bytes / 2));
  }
  return rows;
}

Result<bool> FleetForwarder::ForwardScan(int64_t scan_id, const json& summary) {
  ASSIGN_OR_RETURN(std::vector<std::string> rows, ScanProcessRows(scan_id));
  const std::vector<std::string> chunks =
      ScanMessages(opts_.host_id, scan_id, summary, rows, opts_.max_message_bytes);
  if (progress_.scan_id != scan_id) progress_ = {scan_id, 0};
  const std::string subject = fleet::ScanSubject(opts_.host_id);
  for (int i = progress_.chunks_acked; i < static_cast<int>(chunks.size()); ++i) {
    if (Stopping()) return false;
    RETURN_IF_ERROR(Publish(subject, chunks[i], ScanMsgId(opts_.host_id, scan_id, i)));
    progress_.chunks_acked = i + 1;
  }
  scans_.acked = scan_id;
  RETURN_IF_ERROR(StoreCursor(scans_));
  return true;
}

void FleetForwarder::NoteLost(ForwardKind kind, int64_t first, int64_t last, int64_t count) {
  LogWarn("fleet: " + std::string(ForwardKindName(kind)) +
              " deleted by retention before they were forwarded; they are lost to the fleet",
          {{"stream", std::string(ForwardKindName(kind))},
           {"first_id", first},
           {"last_id", last},
           {"count", count}});
}

void FleetForwarder::NoteFailure(const Status& s) {
  const int64_t now = opts_.clock->MonotonicMs();
  if (failing_since_ms_ < 0) failing_since_ms_ = now;
  if (last_failure_log_ms_ >= 0 && now - last_failure_log_ms_ < kFailureLogEveryMs) return;
  last_failure_log_ms_ = now;
  LogWarn(Transient(s)
              ? "fleet: NATS unavailable; events and scans wait in the event store and are forwarded "
                "in order when JetStream takes them again"
              : "fleet: forwarding failed; retrying",
          {{"events_cursor", events_.acked ? json(*events_.acked) : json(nullptr)},
           {"scans_cursor", scans_.acked ? json(*scans_.acked) : json(nullptr)},
           {"failing_ms", now - failing_since_ms_},
           {"error", s.message()}});
}

void FleetForwarder::NoteRecovery() {
  if (failing_since_ms_ < 0) return;
  LogInfo("fleet: forwarding resumed", {{"failing_ms", opts_.clock->MonotonicMs() - failing_since_ms_}});
  failing_since_ms_ = -1;
  last_failure_log_ms_ = -1;
}

}  // namespace sentinel::agent
