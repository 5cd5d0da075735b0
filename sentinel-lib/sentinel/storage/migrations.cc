#include "sentinel/storage/migrations.h"

#include <string>

#include "sentinel/base/time.h"
#include "sentinel/crypto/sha256.h"

namespace sentinel::storage {
namespace {

// ---------------------------------------------------------------------------
// Event store. Process history is stored incrementally: one row per process
// instance (pid + start time + what it executes) and one state row only when
// its changing values differ from the previous scan. process_snapshots and
// processes are views that present the seed's one-row-per-process-per-scan
// shape over that (docs/storage.md).
constexpr std::string_view kEvents1 = R"sql(
CREATE TABLE system_metadata(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL
);

CREATE TABLE scan_metadata(
  scan_id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at_ms INTEGER NOT NULL,
  completed_at_ms INTEGER,
  duration_ms INTEGER,
  status TEXT NOT NULL CHECK(status IN ('running','completed','failed')),
  process_count INTEGER NOT NULL DEFAULT 0,
  new_processes INTEGER NOT NULL DEFAULT 0,
  exited_processes INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  error_summary TEXT NOT NULL DEFAULT '{}',
  hash_cache_hits INTEGER NOT NULL DEFAULT 0,
  hash_cache_misses INTEGER NOT NULL DEFAULT 0,
  hostname TEXT,
  collector_version TEXT
);
CREATE INDEX idx_scan_metadata_started ON scan_metadata(started_at_ms);
CREATE INDEX idx_scan_metadata_status ON scan_metadata(status, scan_id);

-- last_scan_id is 9223372036854775807 while the instance is alive.
CREATE TABLE process_instances(
  instance_id INTEGER PRIMARY KEY,
  pid INTEGER NOT NULL,
  start_time INTEGER NOT NULL,
  name TEXT NOT NULL,
  exe_path TEXT,
  command_line TEXT,
  exe_hash TEXT,
  hash_algorithm TEXT,
  platform_data TEXT NOT NULL DEFAULT '{}',
  first_scan_id INTEGER NOT NULL,
  last_scan_id INTEGER NOT NULL
);
CREATE INDEX idx_instances_last_scan ON process_instances(last_scan_id, first_scan_id);
CREATE INDEX idx_instances_pid ON process_instances(pid, start_time);
CREATE INDEX idx_instances_name ON process_instances(name);
CREATE INDEX idx_instances_exe ON process_instances(exe_path);
CREATE INDEX idx_instances_hash ON process_instances(exe_hash);

CREATE TABLE process_states(
  instance_id INTEGER NOT NULL,
  scan_id INTEGER NOT NULL,
  ppid INTEGER,
  cpu_percent REAL,
  memory_bytes INTEGER,
  status TEXT,
  user_id INTEGER,
  user_name TEXT,
  effective_uid INTEGER,
  PRIMARY KEY(instance_id, scan_id)
) WITHOUT ROWID;
CREATE INDEX idx_states_scan ON process_states(scan_id);

CREATE VIEW process_snapshots AS
SELECT s.scan_id * 4294967296 + i.instance_id AS id,
       s.scan_id AS scan_id,
       s.started_at_ms AS timestamp_ms,
       i.pid AS pid,
       st.ppid AS ppid,
       i.name AS name,
       i.exe_path AS exe_path,
       i.command_line AS command_line,
       i.start_time AS start_time,
       st.cpu_percent AS cpu_percent,
       st.memory_bytes AS memory_bytes,
       st.status AS status,
       i.exe_hash AS exe_hash,
       i.hash_algorithm AS hash_algorithm,
       st.user_name AS user_name,
       st.user_id AS user_id,
       i.platform_data AS platform_data,
       st.effective_uid AS effective_uid
FROM scan_metadata s
JOIN process_instances i ON i.first_scan_id <= s.scan_id AND i.last_scan_id >= s.scan_id
JOIN process_states st ON st.instance_id = i.instance_id
 AND st.scan_id = (SELECT MAX(x.scan_id) FROM process_states x
                   WHERE x.instance_id = i.instance_id AND x.scan_id <= s.scan_id)
WHERE s.status = 'completed';

CREATE VIEW processes AS
SELECT * FROM process_snapshots
WHERE scan_id = (SELECT MAX(scan_id) FROM scan_metadata WHERE status = 'completed');

CREATE TABLE process_events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_time_ms INTEGER NOT NULL,
  event_type TEXT NOT NULL CHECK(event_type IN ('exec','exit','fork')),
  pid INTEGER NOT NULL,
  ppid INTEGER,
  name TEXT,
  exe_path TEXT,
  command_line TEXT,
  user_id INTEGER,
  user_name TEXT,
  exit_code INTEGER,
  exe_hash TEXT
);
CREATE INDEX idx_process_events_time ON process_events(event_time_ms);
CREATE INDEX idx_process_events_pid ON process_events(pid, event_time_ms);
CREATE INDEX idx_process_events_exe ON process_events(exe_path);

CREATE TABLE detection_rules(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT,
  severity TEXT NOT NULL CHECK(severity IN ('low','medium','high','critical')),
  category TEXT,
  tags TEXT NOT NULL DEFAULT '[]',
  mitre TEXT NOT NULL DEFAULT '[]',
  enabled INTEGER NOT NULL DEFAULT 1,
  dedup_keys TEXT NOT NULL DEFAULT '[]',
  query TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 1,
  checksum TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT 'user' CHECK(source IN ('builtin','user')),
  source_path TEXT,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  last_run_ms INTEGER,
  last_duration_ms INTEGER,
  last_error TEXT
);
CREATE INDEX idx_detection_rules_enabled ON detection_rules(enabled);

CREATE TABLE alerts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_time INTEGER NOT NULL,
  rule_id TEXT NOT NULL,
  title TEXT NOT NULL,
  description TEXT,
  severity TEXT NOT NULL CHECK(severity IN ('low','medium','high','critical')),
  scan_id INTEGER,
  affected_processes TEXT NOT NULL DEFAULT '[]',
  process_count INTEGER NOT NULL DEFAULT 0,
  rule_version INTEGER,
  execution_time_ms INTEGER,
  raw_data TEXT,
  dedup_key TEXT,
  status TEXT NOT NULL DEFAULT 'open' CHECK(status IN ('open','acknowledged','closed'))
);
CREATE INDEX idx_alerts_time ON alerts(alert_time);
CREATE INDEX idx_alerts_rule ON alerts(rule_id, alert_time);
CREATE INDEX idx_alerts_severity ON alerts(severity, alert_time);
CREATE INDEX idx_alerts_dedup ON alerts(dedup_key, alert_time);
CREATE INDEX idx_alerts_status ON alerts(status);

CREATE TABLE alert_deliveries(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id INTEGER NOT NULL REFERENCES alerts(id),
  sink_name TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  attempted_at_ms INTEGER NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('success','failure','skipped')),
  error TEXT,
  duration_ms INTEGER
);
CREATE INDEX idx_alert_deliveries_alert ON alert_deliveries(alert_id);
CREATE INDEX idx_alert_deliveries_sink ON alert_deliveries(sink_name, attempted_at_ms);

CREATE TABLE dead_letter_queue(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id INTEGER NOT NULL REFERENCES alerts(id),
  sink_name TEXT NOT NULL,
  failed_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  last_error TEXT,
  payload TEXT NOT NULL
);
CREATE INDEX idx_dlq_alert ON dead_letter_queue(alert_id);
)sql";

// ---------------------------------------------------------------------------
// Audit ledger: append-only, hash-chained (docs/audit.md). Hashes are
// lowercase hex of 32-byte BLAKE3 digests.
constexpr std::string_view kAudit1 = R"sql(
CREATE TABLE system_metadata(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL
);

CREATE TABLE audit_ledger(
  sequence INTEGER PRIMARY KEY,
  timestamp INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  event_data TEXT NOT NULL,
  payload_hash TEXT NOT NULL,
  prev_hash TEXT,
  entry_hash TEXT NOT NULL,
  signature TEXT
);
CREATE INDEX idx_audit_ledger_time ON audit_ledger(timestamp);
CREATE INDEX idx_audit_ledger_action ON audit_ledger(action);
)sql";

// An operator's `rules enable|disable` outlives rule-file reloads: NULL
// follows the file's `enabled`, 0/1 overrides it.
//
// command_text: each instance's arguments joined by spaces, so rules can
// match command lines with LIKE/GLOB without parsing JSON on every run.
constexpr std::string_view kEvents2 = R"sql(
ALTER TABLE detection_rules ADD COLUMN enabled_override INTEGER CHECK(enabled_override IN (0, 1));
ALTER TABLE process_instances ADD COLUMN command_text TEXT;
UPDATE process_instances SET command_text = (SELECT group_concat(value, ' ') FROM json_each(command_line))
WHERE json_valid(command_line);
DROP VIEW processes;
DROP VIEW process_snapshots;
CREATE VIEW process_snapshots AS
SELECT s.scan_id * 4294967296 + i.instance_id AS id,
       s.scan_id AS scan_id,
       s.started_at_ms AS timestamp_ms,
       i.pid AS pid,
       st.ppid AS ppid,
       i.name AS name,
       i.exe_path AS exe_path,
       i.command_line AS command_line,
       i.start_time AS start_time,
       st.cpu_percent AS cpu_percent,
       st.memory_bytes AS memory_bytes,
       st.status AS status,
       i.exe_hash AS exe_hash,
       i.hash_algorithm AS hash_algorithm,
       st.user_name AS user_name,
       st.user_id AS user_id,
       i.platform_data AS platform_data,
       st.effective_uid AS effective_uid,
       i.command_text AS command_text
FROM scan_metadata s
JOIN process_instances i ON i.first_scan_id <= s.scan_id AND i.last_scan_id >= s.scan_id
JOIN process_states st ON st.instance_id = i.instance_id
 AND st.scan_id = (SELECT MAX(x.scan_id) FROM process_states x
                   WHERE x.instance_id = i.instance_id AND x.scan_id <= s.scan_id)
WHERE s.status = 'completed';

CREATE VIEW processes AS
SELECT * FROM process_snapshots
WHERE scan_id = (SELECT MAX(scan_id) FROM scan_metadata WHERE status = 'completed');
)sql";

// Durable alert delivery (docs/alert-delivery.md). alert_deliveries is
// rebuilt to widen its status CHECK: an attempt is recorded as 'in_flight'
// before anything is sent and finished as success/failure/skipped, so an
// attempt cut short by a crash is visible ('unknown' after recovery) instead
// of silent. delivery_queue holds what is still to be delivered per
// (alert, sink); the cursor in system_metadata says up to which alert id the
// queue rows exist, so alerts committed just before a crash are enqueued at
// the next start. Existing alerts count as handled (no re-delivery of
// history on upgrade).
constexpr std::string_view kEvents3 = R"sql(
CREATE TABLE alert_deliveries_v3(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id INTEGER NOT NULL REFERENCES alerts(id),
  sink_name TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  attempted_at_ms INTEGER NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('success','failure','skipped','in_flight','unknown')),
  error TEXT,
  duration_ms INTEGER,
  http_status INTEGER
);
INSERT INTO alert_deliveries_v3(id, alert_id, sink_name, attempt, attempted_at_ms, status, error, duration_ms)
  SELECT id, alert_id, sink_name, attempt, attempted_at_ms, status, error, duration_ms FROM alert_deliveries;
DROP TABLE alert_deliveries;
ALTER TABLE alert_deliveries_v3 RENAME TO alert_deliveries;
CREATE INDEX idx_alert_deliveries_alert ON alert_deliveries(alert_id, sink_name);
CREATE INDEX idx_alert_deliveries_sink ON alert_deliveries(sink_name, attempted_at_ms);
CREATE INDEX idx_alert_deliveries_status ON alert_deliveries(status);

CREATE TABLE delivery_queue(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id INTEGER NOT NULL REFERENCES alerts(id),
  sink_name TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL,
  enqueued_at_ms INTEGER NOT NULL,
  last_error TEXT,
  dlq_id INTEGER,
  UNIQUE(alert_id, sink_name)
);
CREATE INDEX idx_delivery_queue_sink ON delivery_queue(sink_name, next_attempt_ms);

ALTER TABLE dead_letter_queue ADD COLUMN retry_requested_at_ms INTEGER;
CREATE UNIQUE INDEX idx_dlq_alert_sink ON dead_letter_queue(alert_id, sink_name);

INSERT OR REPLACE INTO system_metadata(key, value, updated_at_ms)
  SELECT 'delivery_enqueued_through_alert_id', CAST(coalesce(max(id), 0) AS TEXT),
         CAST(strftime('%s', 'now') AS INTEGER) * 1000 FROM alerts;
)sql";

// Real-time detection (SPEC §12): what an exec event says about the process
// beyond argv (captured in the kernel at exec), its parent resolved when it
// was written, the process start time that scans give the same process, the
// trigger of each rule and the exec cursor of each `on: exec` rule.
constexpr std::string_view kEvents4 = R"sql(
ALTER TABLE process_events ADD COLUMN start_time INTEGER;
ALTER TABLE process_events ADD COLUMN cwd TEXT;
ALTER TABLE process_events ADD COLUMN login_uid INTEGER;
ALTER TABLE process_events ADD COLUMN tty TEXT;
ALTER TABLE process_events ADD COLUMN effective_uid INTEGER;
ALTER TABLE process_events ADD COLUMN effective_gid INTEGER;
ALTER TABLE process_events ADD COLUMN cred_change INTEGER;
ALTER TABLE process_events ADD COLUMN env TEXT;
ALTER TABLE process_events ADD COLUMN env_truncated INTEGER;
ALTER TABLE process_events ADD COLUMN args_truncated INTEGER;
ALTER TABLE process_events ADD COLUMN command_text TEXT;
ALTER TABLE process_events ADD COLUMN parent_exe_path TEXT;
ALTER TABLE process_events ADD COLUMN parent_name TEXT;
ALTER TABLE process_events ADD COLUMN parent_command_line TEXT;
ALTER TABLE process_events ADD COLUMN parent_command_text TEXT;
ALTER TABLE process_events ADD COLUMN parent_start_time INTEGER;
UPDATE process_events SET command_text = (SELECT group_concat(value, ' ') FROM json_each(command_line))
  WHERE command_line IS NOT NULL AND json_valid(command_line);

ALTER TABLE detection_rules ADD COLUMN evaluated_on TEXT NOT NULL DEFAULT 'scan'
  CHECK(evaluated_on IN ('scan','exec'));

CREATE TABLE detection_cursors(
  rule_id TEXT PRIMARY KEY,
  last_event_id INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
)sql";

// The exe_path index of process_events: a random text key written for every
// exec and exit row (two per process), ~20 % of a row's insert cost, used
// by no query of SentinelD (rules read events by id or time; parents come
// through pid). docs/decisions.md: "process_events keeps two secondary
// indexes".
constexpr std::string_view kEvents5 = R"sql(
DROP INDEX IF EXISTS idx_process_events_exe;
)sql";

// The execs of download tools, by time: a partial index (only those rows
// carry an entry, so an exec storm of anything else pays nothing for it)
// that lets proc-download-then-exec-chain read a minute of download history
// per batch without visiting every exec of that minute (decision 56).
constexpr std::string_view kEvents6 = R"sql(
CREATE INDEX idx_process_events_download_tools ON process_events(event_time_ms)
  WHERE event_type = 'exec' AND name IN ('curl', 'wget', 'fetch', 'aria2c', 'tftp', 'ftp', 'lwp-download');
)sql";

// Blind spots of exec events (issue 17, docs/tables.md): how long the argument
// block really was (with args_truncated the stored argv holds its start and
// its end), whether the file at exe_path in procmond's (the host's) mount
// namespace is the executed image, and a memfd image's seals.
constexpr std::string_view kEvents7 = R"sql(
ALTER TABLE process_events ADD COLUMN args_length INTEGER;
ALTER TABLE process_events ADD COLUMN exe_host_mismatch INTEGER;
ALTER TABLE process_events ADD COLUMN exe_memfd_seals INTEGER;
)sql";

// Issue 17 (blind spots), case 3: the fds 0-2 of shells and interpreters
// are kept current by procmond; a state row carries platform_data once it
// changed after the instance row (NULL: the instance's is in force).
// Case 8: the world-writable directories procmond found at its start
// (collector.md, "World-writable directories"); no path lies under another,
// so the index on path || '/' finds the one an executable lies under with
// one seek (the greatest prefix not above the executable's path).
constexpr std::string_view kEvents8 = R"sql(
ALTER TABLE process_states ADD COLUMN platform_data TEXT;
DROP VIEW processes;
DROP VIEW process_snapshots;
CREATE VIEW process_snapshots AS
SELECT s.scan_id * 4294967296 + i.instance_id AS id,
       s.scan_id AS scan_id,
       s.started_at_ms AS timestamp_ms,
       i.pid AS pid,
       st.ppid AS ppid,
       i.name AS name,
       i.exe_path AS exe_path,
       i.command_line AS command_line,
       i.start_time AS start_time,
       st.cpu_percent AS cpu_percent,
       st.memory_bytes AS memory_bytes,
       st.status AS status,
       i.exe_hash AS exe_hash,
       i.hash_algorithm AS hash_algorithm,
       st.user_name AS user_name,
       st.user_id AS user_id,
       coalesce(st.platform_data, i.platform_data) AS platform_data,
       st.effective_uid AS effective_uid,
       i.command_text AS command_text
FROM scan_metadata s
JOIN process_instances i ON i.first_scan_id <= s.scan_id AND i.last_scan_id >= s.scan_id
JOIN process_states st ON st.instance_id = i.instance_id
 AND st.scan_id = (SELECT MAX(x.scan_id) FROM process_states x
                   WHERE x.instance_id = i.instance_id AND x.scan_id <= s.scan_id)
WHERE s.status = 'completed';

CREATE VIEW processes AS
SELECT * FROM process_snapshots
WHERE scan_id = (SELECT MAX(scan_id) FROM scan_metadata WHERE status = 'completed');

CREATE TABLE writable_dirs(
  path TEXT PRIMARY KEY,
  mode INTEGER NOT NULL,
  owner_uid INTEGER NOT NULL,
  found_at_ms INTEGER NOT NULL
);
CREATE INDEX idx_writable_dirs_prefix ON writable_dirs(path || '/');
)sql";

// fleet.forward events/scans (docs/fleet.md "Forwarding"): per stream, the
// highest process_events.id / scan_metadata.scan_id JetStream acknowledged.
// A row exists while that forwarding is configured; the agent creates it at
// the current end of the table (history before forwarding was enabled stays
// on the host) and advances it only after the publish acknowledgement.
constexpr std::string_view kEvents9 = R"sql(
CREATE TABLE fleet_forward_cursors(
  stream TEXT PRIMARY KEY CHECK(stream IN ('events','scans')),
  last_id INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
)sql";

// Process trees (sentinelcli alerts show --tree, process PID; the agent's
// web UI): a process's children by its identity. Exec (and, when stored,
// fork) events name their parent by ppid and parent_start_time; the partial
// index leaves exit rows out, so an exec storm pays one small entry per exec
// (appended at the end of the parent's range). Scans name it by ppid in the
// state rows, which are written only when a process's state changed.
// docs/decisions.md #74.
constexpr std::string_view kEvents10 = R"sql(
CREATE INDEX idx_process_events_parent ON process_events(ppid, parent_start_time, event_time_ms)
  WHERE event_type IN ('exec', 'fork');
CREATE INDEX idx_states_ppid ON process_states(ppid);
)sql";

constexpr Migration kEventMigrations[] = {
    {1, "initial event store: incremental process history, events, rules, alerts, deliveries, DLQ", kEvents1},
    {2, "detection_rules.enabled_override; process_instances.command_text", kEvents2},
    {3,
     "durable alert delivery: delivery_queue, attempt states, http_status, one DLQ entry per alert and sink",
     kEvents3},
    {4,
     "real-time detection: exec event context (start_time, cwd, login_uid, tty, credentials, env, parent), "
     "detection_rules.evaluated_on, detection_cursors",
     kEvents4},
    {5, "process_events without the exe_path index (per-row write cost under exec storms)", kEvents5},
    {6, "partial index of download-tool execs by time (proc-download-then-exec-chain)", kEvents6},
    {7, "exec event args_length, exe_host_mismatch, exe_memfd_seals (blind spots, issue 17)", kEvents7},
    {8,
     "process_states.platform_data (fds 0-2 of shells kept current); writable_dirs (world-writable "
     "directories found at start)",
     kEvents8},
    {9, "fleet_forward_cursors (fleet.forward: events, scans)", kEvents9},
    {10, "children by parent: exec/fork events by (ppid, parent_start_time), scan states by ppid", kEvents10},
};
constexpr Migration kAuditMigrations[] = {
    {1, "initial audit ledger", kAudit1},
};

// ---------------------------------------------------------------------------
// Fleet console store (sentinelfleet, docs/fleet.md "The console"): every
// host's alerts as they arrived from JetStream, and the hosts' last
// heartbeats. Host-supplied text is stored as received; printing escapes it.
//
// alerts: one row per (host_id, alert_id) -- a message delivered again (a
// redelivery, or a retry after the stream's duplicate window) is absorbed by
// the UNIQUE key. host_seq numbers each host's alerts 1, 2, ... in arrival
// order; stream_seq is the JetStream sequence it came with.
constexpr std::string_view kFleet1 = R"sql(
CREATE TABLE alerts(
  id INTEGER PRIMARY KEY,
  host_id TEXT NOT NULL,
  alert_id TEXT NOT NULL,
  host_seq INTEGER NOT NULL,
  stream_seq INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  alert_time INTEGER,
  rule_id TEXT,
  severity TEXT,
  title TEXT,
  body TEXT NOT NULL,
  UNIQUE(host_id, alert_id),
  UNIQUE(host_id, host_seq)
);
CREATE INDEX idx_alerts_time ON alerts(alert_time);

CREATE TABLE hosts(
  host_id TEXT PRIMARY KEY,
  hostname TEXT,
  version TEXT,
  health TEXT,
  last_scan TEXT,
  rules_count INTEGER,
  rules_checksum TEXT,
  bundle TEXT,
  sent_at INTEGER,
  revision INTEGER NOT NULL DEFAULT 0,
  seen_at_ms INTEGER NOT NULL,
  heartbeat TEXT NOT NULL
);
)sql";
constexpr std::string_view kFleet2 = R"sql(
CREATE INDEX idx_alerts_received ON alerts(received_at_ms);
)sql";
constexpr Migration kFleetMigrations[] = {
    {1, "initial fleet console store: alerts per host, hosts from heartbeats", kFleet1},
    {2, "alert retention: alerts by arrival time", kFleet2},
};

constexpr std::string_view kMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations(
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at_ms INTEGER NOT NULL,
  checksum TEXT NOT NULL
);
)sql";

}  // namespace

std::span<const Migration> MigrationsFor(DatabaseKind kind) {
  switch (kind) {
    case DatabaseKind::kEvents: return kEventMigrations;
    case DatabaseKind::kAudit: return kAuditMigrations;
    case DatabaseKind::kFleet: return kFleetMigrations;
  }
  return kAuditMigrations;
}

int LatestSchemaVersion(DatabaseKind kind) {
  return MigrationsFor(kind).back().version;
}

// 'SnEv', 'SnAu' and 'SnFl'.
uint32_t ApplicationId(DatabaseKind kind) {
  switch (kind) {
    case DatabaseKind::kEvents: return 0x536e4576u;
    case DatabaseKind::kAudit: return 0x536e4175u;
    case DatabaseKind::kFleet: return 0x536e466cu;
  }
  return 0;
}

std::string_view KindName(DatabaseKind kind) {
  switch (kind) {
    case DatabaseKind::kEvents: return "event store";
    case DatabaseKind::kAudit: return "audit ledger";
    case DatabaseKind::kFleet: return "fleet console store";
  }
  return "database";
}

namespace {

// The application id, the number of schema entries and the user version,
// read by one statement: from one snapshot of the database. Read one by one,
// another process creating the store between two reads (the agent and
// procmond starting together on a new store) would show the id of the empty
// file beside the tables of the migrated one: "written by another program".
struct SchemaIdentity {
  int64_t application_id = 0;
  int64_t tables = 0;
  int64_t user_version = 0;
};

Result<SchemaIdentity> ReadSchemaIdentity(Database& db) {
  ASSIGN_OR_RETURN(Statement st, db.Prepare("SELECT (SELECT application_id FROM pragma_application_id),"
                                            " (SELECT count(*) FROM sqlite_schema),"
                                            " (SELECT user_version FROM pragma_user_version)"));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return InternalError("reading the schema identity returned no row");
  return SchemaIdentity{st.ColumnInt(0), st.ColumnInt(1), st.ColumnInt(2)};
}

}  // namespace

Result<int> InspectSchema(Database& db, DatabaseKind kind) {
  // Reading the header is the first real I/O: a non-SQLite file fails here.
  auto identity = ReadSchemaIdentity(db);
  if (!identity.ok()) {
    return Status(identity.status().code(), db.path() + ": not a SentinelD " + std::string(KindName(kind)) +
                                                " (" + identity.status().message() + ")");
  }
  const int64_t app_id = identity->application_id;
  if (app_id == 0 && identity->tables == 0) return 0;  // a new, empty file
  if (app_id != static_cast<int64_t>(ApplicationId(kind))) {
    std::string other;
    for (DatabaseKind k : kAllDatabaseKinds)
      if (app_id == static_cast<int64_t>(ApplicationId(k))) other = std::string(KindName(k));
    return FailedPreconditionError(
        db.path() + ": not a SentinelD " + std::string(KindName(kind)) +
        (other.empty() ? " (a database written by another program)" : " (it is a SentinelD " + other + ")") +
        "; refusing to use it");
  }
  const int v = static_cast<int>(identity->user_version);
  const int latest = LatestSchemaVersion(kind);
  if (v > latest) {
    return FailedPreconditionError(db.path() + ": schema version " + std::to_string(v) +
                                   " is newer than this binary supports (" + std::to_string(latest) +
                                   "); upgrade SentinelD before using this database");
  }
  return v;
}

Status Migrate(Database& db, DatabaseKind kind) {
  ASSIGN_OR_RETURN(int current, InspectSchema(db, kind));
  if (current == LatestSchemaVersion(kind)) return Status::Ok();
  if (db.mode() == OpenMode::kReadOnly) {
    return FailedPreconditionError(
        db.path() + ": schema version " + std::to_string(current) + " is older than this binary's (" +
        std::to_string(LatestSchemaVersion(kind)) + "); start " +
        (kind == DatabaseKind::kFleet ? "`sentinelfleet serve`" : "procmond or sentinelagent") +
        " once to migrate it");
  }
  for (const Migration& m : MigrationsFor(kind)) {
    if (m.version <= current) continue;
    ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
    // Re-check inside the write lock: another process may have migrated meanwhile.
    auto now_version = db.QueryInt("PRAGMA user_version");
    if (!now_version.ok()) return now_version.status();
    if (now_version->value_or(0) >= m.version) continue;
    RETURN_IF_ERROR(db.Exec(kMigrationsTable));
    Status s = db.Exec(m.sql);
    if (!s.ok()) return s.WithContext("migration " + std::to_string(m.version));
    ASSIGN_OR_RETURN(Statement rec,
                     db.Prepare("INSERT INTO schema_migrations(version,name,applied_at_ms,checksum)"
                                " VALUES(?,?,?,?)"));
    RETURN_IF_ERROR(rec.BindInt(1, m.version));
    RETURN_IF_ERROR(rec.BindText(2, m.name));
    RETURN_IF_ERROR(rec.BindInt(3, NowMs()));
    RETURN_IF_ERROR(rec.BindText(4, crypto::Sha256Hex(m.sql)));
    RETURN_IF_ERROR(rec.Run());
    RETURN_IF_ERROR(db.Exec("PRAGMA application_id=" + std::to_string(ApplicationId(kind))));
    RETURN_IF_ERROR(db.Exec("PRAGMA user_version=" + std::to_string(m.version)));
    RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

}  // namespace sentinel::storage
