// Plain data types shared by the collector, storage and detection:
// one observed process and one scan. No behaviour beyond encoding helpers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sentinel::models {

// One process as seen by one scan. Optional fields are NULL in storage when
// they could not be read (the reason goes to platform_data and the scan's
// error counters).
struct ProcessRecord {
  int64_t pid = 0;
  std::optional<int64_t> ppid;
  std::string name;                                      // comm, as the kernel reports it
  std::optional<std::string> exe_path;                   // with " (deleted)" when the kernel says so
  std::optional<std::vector<std::string>> command_line;  // argv; nullopt if unreadable
  int64_t start_time_ms = 0;                             // epoch ms
  std::optional<double> cpu_percent;                     // over the last interval
  std::optional<int64_t> memory_bytes;                   // RSS
  std::optional<std::string> status;                     // running, sleeping, ...
  std::optional<int64_t> user_id;                        // real uid
  std::optional<int64_t> effective_uid;                  // euid: differs from user_id in setuid programs
  std::optional<std::string> user_name;
  std::optional<std::string> exe_hash;  // lowercase hex SHA-256
  std::string platform_data = "{}";     // JSON object
  // Non-zero: platform_data.fds (0-2) of a shell or interpreter, kept
  // current by the collector, and this digest of them; when it moves, the
  // store records the new platform_data (docs/storage.md). 0: platform_data
  // as first seen is what is kept.
  uint64_t stdio_key = 0;
  bool operator==(const ProcessRecord&) const = default;
};

// What a scan produced, written as one unit.
struct ScanRecord {
  int64_t started_at_ms = 0;
  int64_t completed_at_ms = 0;
  int64_t errors = 0;                // processes or fields that could not be read
  std::string error_summary = "{}";  // JSON object: reason -> count
  int64_t hash_cache_hits = 0;
  int64_t hash_cache_misses = 0;
  std::string hostname;
  std::string collector_version;
  std::vector<ProcessRecord> processes;
};

// One real-time process event (SPEC §4 process_events), as procmond's
// real-time sources (eBPF, netlink proc connector) deliver it. Optional
// fields are NULL in storage when the source could not capture them.
struct ProcessEvent {
  int64_t event_time_ms = 0;  // epoch ms
  std::string event_type;     // exec | exit | fork
  int64_t pid = 0;
  std::optional<int64_t> ppid;
  std::optional<std::string> name;
  std::optional<std::string> exe_path;
  std::optional<std::vector<std::string>> command_line;  // argv
  std::optional<int64_t> user_id;
  std::optional<std::string> user_name;
  std::optional<int64_t> exit_code;
  std::optional<std::string> exe_hash;  // lowercase hex SHA-256

  // Exec context (exec events; docs/tables.md, process_events).
  std::optional<int64_t> start_time_ms;  // process start, epoch ms: the scan's start_time
  std::optional<std::string> cwd;
  std::optional<int64_t> login_uid;  // nullopt when unset
  std::optional<std::string> tty;    // "pts/3"; nullopt when none
  std::optional<int64_t> effective_uid;
  std::optional<int64_t> effective_gid;
  std::optional<bool> cred_change;  // the exec changed credentials (setuid/setgid/file caps)
  // Allow-listed environment variables (name, value), in the block's order;
  // nullopt when the environment was not read.
  std::optional<std::vector<std::pair<std::string, std::string>>> env;
  std::optional<bool> env_truncated;   // block over the capture bound, or a value cut
  std::optional<bool> args_truncated;  // argv longer than the capture bound: argv is its start and end
  std::optional<int64_t> args_length;  // bytes of the whole argument block; nullopt when unknown
  // 1: the file at exe_path in procmond's (the host's) mount namespace is not
  // the executed image; 0: it is; nullopt: not checked (relative, memfd, ...).
  std::optional<bool> exe_host_mismatch;
  std::optional<int64_t> exe_memfd_seals;  // F_SEAL_* of a memfd image; nullopt when not a memfd
  std::optional<std::string> parent_exe_path;
  std::optional<std::string> parent_name;
  std::optional<std::vector<std::string>> parent_command_line;
  std::optional<int64_t> parent_start_time_ms;
  // The stored forms of the arguments, when the writer has them already
  // encoded: then they are written instead of command_line /
  // parent_command_line (procmond writes a parent's arguments with each of
  // its children's exec events, and encodes them once).
  std::shared_ptr<const struct EncodedArgv> command_encoded;
  std::shared_ptr<const struct EncodedArgv> parent_command_encoded;
};

// An argument vector in the two forms the store writes: command_line's JSON
// array and command_text's joined text.
struct EncodedArgv {
  std::string json;  // EncodeCommandLine
  std::string text;  // JoinCommandLine
};
std::shared_ptr<const EncodedArgv> EncodeArgv(const std::vector<std::string>& argv);

// argv as the JSON array text stored in command_line.
std::string EncodeCommandLine(const std::vector<std::string>& argv);
// argv joined by single spaces (the command_text columns).
std::string JoinCommandLine(const std::vector<std::string>& argv);
// Environment variables as the JSON object text stored in process_events.env.
std::string EncodeEnvironment(const std::vector<std::pair<std::string, std::string>>& env);

}  // namespace sentinel::models
