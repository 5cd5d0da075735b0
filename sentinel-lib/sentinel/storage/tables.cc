#include "sentinel/storage/tables.h"

namespace sentinel::storage {
namespace {

constexpr ColumnSpec kSnapshotColumns[] = {
    {"id", "INTEGER", "Unique row id (scan_id * 2^32 + process instance id)"},
    {"scan_id", "INTEGER", "Scan that observed the process (scan_metadata.scan_id)"},
    {"timestamp_ms", "INTEGER", "Scan start, ms since the Unix epoch"},
    {"pid", "INTEGER", "Process id"},
    {"ppid", "INTEGER", "Parent process id"},
    {"name", "TEXT", "Command name (comm) as the kernel reports it"},
    {"exe_path", "TEXT", "Path of the running executable; ends in ' (deleted)' when unlinked"},
    {"command_line", "TEXT", "JSON array of the argument strings"},
    {"start_time", "INTEGER", "Process start, ms since the Unix epoch"},
    {"cpu_percent", "REAL", "CPU use over the last interval, percent of one core"},
    {"memory_bytes", "INTEGER", "Resident set size in bytes"},
    {"status", "TEXT", "Kernel state in words: running, sleeping, disk-sleep, stopped, zombie, idle, ..."},
    {"exe_hash", "TEXT", "Lowercase hex SHA-256 of the running executable"},
    {"hash_algorithm", "TEXT", "'sha256' when exe_hash is set"},
    {"user_name", "TEXT", "Name of the real user"},
    {"user_id", "INTEGER", "Real user id"},
    {"platform_data", "TEXT",
     "JSON object as first seen (fds 0-2 of shells and interpreters kept current): cwd, tty, cgroup, "
     "namespaces, credentials, fds, executable's links and owner, loader variables, errors"},
    {"effective_uid", "INTEGER",
     "Effective user id at this scan (0 for a setuid-root program run by a user)"},
    {"command_text", "TEXT",
     "The arguments joined by single spaces (for LIKE/GLOB matching; command_line is exact)"},
};

constexpr ColumnSpec kScanColumns[] = {
    {"scan_id", "INTEGER", "Scan number, increasing"},
    {"started_at_ms", "INTEGER", "Scan start, ms since the Unix epoch"},
    {"completed_at_ms", "INTEGER", "Scan end, ms since the Unix epoch"},
    {"duration_ms", "INTEGER", "Scan duration in ms"},
    {"status", "TEXT", "completed or failed"},
    {"process_count", "INTEGER", "Processes seen"},
    {"new_processes", "INTEGER", "Process instances not seen by the previous scan"},
    {"exited_processes", "INTEGER", "Process instances of the previous scan no longer present"},
    {"errors", "INTEGER", "Processes or fields that could not be read"},
    {"error_summary", "TEXT", "JSON object: reason -> count"},
    {"hash_cache_hits", "INTEGER", "Executables whose hash came from the cache"},
    {"hash_cache_misses", "INTEGER", "Executables hashed during the scan"},
    {"hostname", "TEXT", "Host name at scan time"},
    {"collector_version", "TEXT", "procmond version"},
};

constexpr ColumnSpec kEventColumns[] = {
    {"id", "INTEGER", "Event id, increasing"},
    {"event_time_ms", "INTEGER", "When the kernel reported the event, ms since the Unix epoch"},
    {"event_type", "TEXT", "exec, exit or fork"},
    {"pid", "INTEGER", "Process id"},
    {"ppid", "INTEGER", "Parent process id"},
    {"name", "TEXT", "Command name"},
    {"exe_path", "TEXT", "Executable path"},
    {"command_line", "TEXT", "JSON array of the argument strings"},
    {"user_id", "INTEGER", "Real user id"},
    {"user_name", "TEXT", "Name of the real user"},
    {"exit_code", "INTEGER", "Exit status (exit events)"},
    {"exe_hash", "TEXT", "Lowercase hex SHA-256 of the executable, when known"},
    {"start_time", "INTEGER",
     "Process start, ms since the Unix epoch: the same value scans give the process (exec events)"},
    {"cwd", "TEXT", "Working directory at exec"},
    {"login_uid", "INTEGER", "Login (audit) user id; NULL when never set"},
    {"tty", "TEXT", "Controlling terminal (e.g. pts/3); NULL when none"},
    {"effective_uid", "INTEGER", "Effective user id after the exec"},
    {"effective_gid", "INTEGER", "Effective group id after the exec"},
    {"cred_change", "INTEGER",
     "1 when the exec changed credentials (setuid/setgid bit or file capabilities), 0 when not"},
    {"env", "TEXT",
     "JSON object of the loader and shell variables of the new program's environment (allow-listed "
     "names only; values cut at 256 bytes)"},
    {"env_truncated", "INTEGER", "1 when the environment was longer than captured or a value was cut"},
    {"args_truncated", "INTEGER",
     "1 when argv was longer than captured: command_line then holds the block's start and its end"},
    {"command_text", "TEXT", "The arguments joined by single spaces (for LIKE/GLOB matching)"},
    {"parent_exe_path", "TEXT", "Parent's executable path, resolved when the event was written"},
    {"parent_name", "TEXT", "Parent's command name"},
    {"parent_command_line", "TEXT", "Parent's arguments, JSON array"},
    {"parent_command_text", "TEXT", "Parent's arguments joined by single spaces"},
    {"parent_start_time", "INTEGER", "Parent's start, ms since the Unix epoch"},
    {"args_length", "INTEGER",
     "Bytes of the whole argument block the kernel had; with args_truncated = 1 command_line holds its "
     "start and its end (NULL when unknown)"},
    {"exe_host_mismatch", "INTEGER",
     "1 when the file procmond (host mount namespace) finds at exe_path is not the executed image, 0 when it "
     "is, NULL when not checked (relative path, memfd, another root)"},
    {"exe_memfd_seals", "INTEGER", "F_SEAL_* bits of a memfd image; NULL when the image is not a memfd"},
};

constexpr ColumnSpec kWritableDirColumns[] = {
    {"path", "TEXT", "Directory (no symbolic link in it; none of the paths lies under another)"},
    {"mode", "INTEGER", "Its permission bits (st_mode & 07777; 01777 for /tmp)"},
    {"owner_uid", "INTEGER", "Its owner's user id"},
    {"found_at_ms", "INTEGER", "When procmond found it (at its start), ms since the Unix epoch"},
};

constexpr TableSpec kTables[] = {
    {"processes", "The processes of the latest completed scan (same columns as process_snapshots).",
     kSnapshotColumns},
    {"process_snapshots", "Every process seen by every completed scan (a view over incremental storage).",
     kSnapshotColumns},
    {"scan_metadata", "One row per scan.", kScanColumns},
    {"process_events", "Real-time exec/exit/fork events.", kEventColumns},
    {"writable_dirs",
     "World-writable directories (others may write: mode o+w) procmond found at its start, and the "
     "well-known ones (/tmp, /var/tmp, /dev/shm, /run/lock, ...) that exist.",
     kWritableDirColumns},
};

constexpr ExportSpec kExports[] = {
    {"processes", "timestamp_ms", "pid"},          {"process_snapshots", "timestamp_ms", "scan_id, pid"},
    {"scan_metadata", "started_at_ms", "scan_id"}, {"process_events", "event_time_ms", "id"},
    {"writable_dirs", "found_at_ms", "path"},      {"alerts", "alert_time", "id"},
    {"alert_deliveries", "attempted_at_ms", "id"}, {"dead_letter_queue", "failed_at", "id"},
    {"detection_rules", "updated_at_ms", "id"},
};

}  // namespace

std::span<const TableSpec> RuleVisibleTables() {
  return kTables;
}

const TableSpec* FindRuleVisibleTable(std::string_view name) {
  for (const auto& t : kTables)
    if (t.name == name) return &t;
  return nullptr;
}

std::span<const ExportSpec> ExportableTables() {
  return kExports;
}

const ExportSpec* FindExportable(std::string_view name) {
  for (const auto& e : kExports)
    if (e.table == name) return &e;
  return nullptr;
}

std::string RenderTablesMarkdown() {
  std::string out = "# Rule-visible tables\n\nGenerated from `sentinel-lib/sentinel/storage/tables.cc`.\n";
  for (const auto& t : kTables) {
    out += "\n## `" + std::string(t.name) + "`\n\n" + std::string(t.description) + "\n\n";
    out += "| column | type | description |\n| --- | --- | --- |\n";
    for (const auto& c : t.columns) {
      out += "| `" + std::string(c.name) + "` | " + std::string(c.type) + " | " + std::string(c.description) +
             " |\n";
    }
  }
  return out;
}

}  // namespace sentinel::storage
