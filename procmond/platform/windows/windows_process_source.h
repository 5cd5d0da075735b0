// ProcessSource over the Windows process table (SPEC §15).
//
// Listing: NtQuerySystemInformation(SystemProcessInformation), one call for
// every process with its parent, image name, times, working set, session,
// thread and handle counts. If that call fails, Toolhelp32
// (CreateToolhelp32Snapshot) lists pid, parent, image name and thread count,
// and the rest is read through each process's handle; the failure is
// counted in ScanErrors ("process list: ..."). Enumerate() fails only when
// both listings fail.
//
// Every scan takes from the listing: pid, ppid, name, start_time_ms,
// cpu_percent, memory_bytes (working set) and platform_data's session_id,
// threads and handles. Once per instance (pid, creation time), and again
// every `refresh_every_scans` scans spread by pid, a handle is opened with
// PROCESS_QUERY_LIMITED_INFORMATION (the right even a low-privileged caller
// may get for most processes) and read:
//   exe_path      QueryFullProcessImageNameW (Win32 form, "C:\...")
//   command_line  NtQueryInformationProcess(ProcessCommandLineInformation),
//                 split into argv by CommandLineToArgvW's rules
//                 (SplitCommandLine); the line itself is kept as
//                 platform_data.command_line_raw. Where that information
//                 class does not exist (Windows before 8.1, Wine) the line is
//                 read from the process's PEB (ProcessParameters->CommandLine)
//                 with ReadProcessMemory, which needs PROCESS_QUERY_INFORMATION
//                 | PROCESS_VM_READ. Either way it is what the process holds
//                 now: a process may rewrite its own command line.
//   user          the process token (TOKEN_QUERY): the TokenUser SID
//   exe_hash      SHA-256 of the file at exe_path (WindowsExeHasher)
// Windows has no uid: user_id is the user SID's last sub-authority (its RID:
// 1001 for a local account, 18 for LocalSystem), the closest thing and what
// a rule written for Linux can compare; it is not unique across domains or
// machines, and platform_data.sid is the authoritative identity. user_name is
// "DOMAIN\user" (LookupAccountSidW, looked up once per SID; nullopt when the
// SID maps to no account). effective_uid stays nullopt.
// cpu_percent is percent of one core (docs/tables.md), as on Linux: kernel +
// user time since the previous scan over the wall time between the scans;
// 0 on the scan that first sees an instance.
// status is always "running" (the listing has no process state).
// Idle (pid 0) and System (pid 4) are listed with what the listing gives;
// they have no image file or command line, so none is read (platform_data
// "kernel_process": true); System's token is read.
//
// platform_data keys (a JSON object; absent when not applicable or not
// readable, the reason then in "errors"):
//   "sid": "S-1-5-21-...-1001"        the token's user SID
//   "session_id": N                   every scan
//   "threads": N, "handles": N        every scan
//   "integrity_level": "untrusted" | "low" | "medium" | "high" | "system"
//                                     from TokenIntegrityLevel's RID ("system" also for
//                                     protected-process levels above it)
//   "elevated": bool                  TokenElevation
//   "elevation_type": "default" | "full" | "limited"   TokenElevationType
//   "command_line_raw": "..."         the command line as the process holds it
//   "kernel_process": true            pid 0 and 4 only
//   "hash_skipped": "too_large" | "permission_denied" | "not_regular_file" | "io_error" |
//                   "changed_while_hashing" | "disabled"   (exe_hash is NULL then; a hash
//                   skipped because the file is gone leaves no reason, as on Linux)
//   "errors": {"open"|"exe"|"cmdline"|"token"|"user"|"user_name"|"integrity_level"|"elevation"|
//              "elevation_type"|"exe_hash"|
//              "times"|"memory"|"session"|"handles": "reason"}
// Text is UTF-8; invalid UTF-16 (an attacker can name a file or set a command
// line with unpaired surrogates) becomes U+FFFD and never drops a process.
//
// Errors: a field that cannot be read is left nullopt, named in
// platform_data.errors and counted in ScanErrors with its reason
// ("exe: Access is denied (error 5)"). The once-per-instance reads count on
// the scan that first sees the instance (and on its refresh scans); their
// reasons stay in platform_data.errors while they are reused. A process that
// exits between the listing and the reads is not an error (no process to
// open, or reads that failed on a process found exited afterwards): it is
// recorded with what was read.
//
// One instance per collector thread; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "procmond/platform/process_source.h"
#include "procmond/platform/windows/exe_hasher.h"

namespace sentinel::procmond {

struct WindowsProcessSourceOptions {
  bool hash_executables = true;            // collection.hash_executables
  uint64_t max_hash_bytes = 256ULL << 20;  // collection.max_hash_bytes
  size_t hash_cache_capacity = WindowsExeHasher::kDefaultCapacity;
  // The once-per-instance reads are redone every this many scans, spread
  // across scans by pid (a process can rewrite its own command line).
  // 0: never.
  uint32_t refresh_every_scans = 20;
  // List with Toolhelp32 even when NtQuerySystemInformation works (tests).
  bool force_toolhelp = false;
};

// Splits a Windows command line into argv by CommandLineToArgvW's rules
// (the rules of the Microsoft C runtime before 2008): argv[0] ends at the
// next quote if it starts with one, else at the first space or tab, with no
// escapes; in the other arguments 2n backslashes before a quote are n
// backslashes and the quote opens or closes a quoted part, 2n+1 are n and a
// literal quote, other backslashes are literal, and a quote right after a
// closing quote is a literal quote. An empty line is an empty argv (where
// CommandLineToArgvW would return the calling program's path). Invalid
// UTF-16 becomes U+FFFD.
std::vector<std::string> SplitCommandLine(std::wstring_view line);

// One process as the listing gives it (WindowsProcessSource's own use). The
// Toolhelp32 listing leaves the optional fields for the process's handle to
// fill.
struct WindowsListedProcess {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  std::wstring image_name;
  std::optional<int64_t> create_time;  // FILETIME, 100 ns since 1601
  std::optional<uint64_t> cpu_time;    // kernel + user, 100 ns
  std::optional<uint64_t> working_set;
  std::optional<uint32_t> session_id;
  std::optional<uint32_t> threads;
  std::optional<uint32_t> handles;
};

class WindowsProcessSource final : public ProcessSource {
 public:
  WindowsProcessSource();
  explicit WindowsProcessSource(WindowsProcessSourceOptions options);
  ~WindowsProcessSource() override;
  WindowsProcessSource(const WindowsProcessSource&) = delete;
  WindowsProcessSource& operator=(const WindowsProcessSource&) = delete;

  Status Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) override;
  HashCounters LastHashCounters() const override { return last_hash_counters_; }
  // collection.hash_executables and max_hash_bytes after a reload; applies
  // to the instances read from the next scan on.
  void SetHashing(bool enabled, uint64_t max_hash_bytes);

  // The hasher's own counters since construction.
  const WindowsExeHasher::Counters& hasher_counters() const { return hasher_.counters(); }
  // The listing the last Enumerate() used: "NtQuerySystemInformation" or
  // "Toolhelp32" (empty before the first).
  const std::string& last_listing() const { return last_listing_; }
  size_t tracked_instances() const { return instances_.size(); }

 private:
  // What is kept for one process instance between scans.
  struct Instance {
    int64_t create_time = 0;
    std::optional<uint64_t> cpu_time;  // at the last scan
    int64_t cpu_mono_100ns = 0;        // when cpu_time was taken
    uint64_t seen_scan = 0;
    bool read_once = false;
    // The once-per-instance reads.
    std::optional<std::string> exe_path;
    std::optional<std::vector<std::string>> command_line;
    std::optional<int64_t> user_id;
    std::optional<std::string> user_name;
    std::optional<std::string> exe_hash;
    nlohmann::json once = nlohmann::json::object();  // their platform_data keys
  };
  class OnceReader;

  // Lists every process into listed_ and names the listing in last_listing_.
  Status List(ScanErrors* errors);
  Status ListSystemInformation();
  Status ListToolhelp();
  // The listing's missing fields, read through the process's handle
  // (Toolhelp32 only); per-scan errors into *errs.
  void Supplement(WindowsListedProcess* l, nlohmann::json* errs, ScanErrors* errors) const;
  // The instance of `l`, a fresh one when the pid's creation time changed.
  Instance& Track(const WindowsListedProcess& l, bool* fresh);
  bool ShouldReadOnce(uint32_t pid, const Instance& inst) const;
  void ReadOnce(const WindowsListedProcess& l, Instance* inst, ScanErrors* errors);
  // Percent of one core since the previous scan (0 at first sight, nullopt
  // when the CPU time is unknown); remembers this scan's time in *inst.
  static std::optional<double> CpuPercent(const WindowsListedProcess& l, bool fresh, int64_t now_mono,
                                          Instance* inst);
  static models::ProcessRecord MakeRecord(const WindowsListedProcess& l, const Instance& inst,
                                          std::optional<double> cpu_percent,
                                          const nlohmann::json& scan_errors);
  // Forgets the instances this scan did not see.
  void Forget();

  // A SID's account: "DOMAIN\user", or why there is none (empty when the
  // SID maps to no account, which is not an error).
  struct Account {
    std::optional<std::string> name;
    std::string error;
  };
  // Looked up once per SID (sid_text is its string form).
  const Account& AccountOf(void* sid, const std::string& sid_text);

  WindowsProcessSourceOptions options_;
  WindowsExeHasher hasher_;
  HashCounters last_hash_counters_;
  std::string last_listing_;
  uint64_t scan_ = 0;
  std::vector<WindowsListedProcess> listed_;
  std::vector<unsigned char> spi_buffer_;  // kept between scans: it only grows
  std::unordered_map<uint32_t, Instance> instances_;
  std::unordered_map<std::string, Account> accounts_;
};

}  // namespace sentinel::procmond
