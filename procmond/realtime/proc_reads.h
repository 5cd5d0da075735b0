// Small /proc reads of the real-time path: the netlink source's exec context
// (it gets nothing else from the kernel) and the event writer's parent
// fallback (a parent that did not exec while procmond watched). Each read is
// of one process's files; a process that is gone leaves its fields empty.
//
// Thread-safe (no state); `scratch` is the caller's reusable buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "procmond/realtime/realtime_source.h"

namespace sentinel::procmond {

// Reads a whole small file (at most `max` bytes, the rest ignored) with one
// open and usually one read. false when it cannot be opened or read.
bool ReadSmallFile(const std::string& path, std::string* out, size_t max = size_t{1} << 20);
// A block file (/proc/PID/cmdline) bounded like the eBPF record's argument
// block: whole when it has at most `max` bytes, else its first max/2 and its
// last max/2 bytes back to back. *head_len = bytes of the first part,
// *total = the file's whole length. false when it cannot be opened or read.
bool ReadHeadAndTail(const std::string& path, size_t max, std::string* out, size_t* head_len, size_t* total);
// The target of a symbolic link (/proc/PID/exe, cwd); empty when unreadable.
std::optional<std::string> ReadLinkText(const std::string& path);

// The first number of a "Key:\tN ..." line of /proc/PID/status, or, with
// `index` 1, the second (Uid/Gid lines: real, effective, saved, fs).
std::optional<int64_t> StatusField(std::string_view status, std::string_view key, int index = 0);

// Whether /proc/PID/auxv's AT_SECURE entry is set: the loader runs the
// program in secure mode (setuid/setgid/file capabilities). Empty when the
// entry is not there (a short or unreadable block).
std::optional<bool> AuxvSecure(std::string_view auxv);

// A process as /proc shows it: the parent of an exec event.
struct ProcIdentity {
  uint64_t start_ticks = 0;  // /proc/PID/stat starttime
  std::string comm;
  std::optional<std::string> exe_path;
  std::optional<std::vector<std::string>> argv;
};
// Empty when /proc/PID/stat cannot be read (the process is gone).
std::optional<ProcIdentity> ReadProcIdentity(const std::string& proc_root, int64_t pid, std::string* scratch);

// The exec context of a live process from /proc/PID (`dir`): parent, name,
// real and effective ids and whether the exec changed credentials (status,
// auxv), working directory, login uid, controlling terminal, start time, and the allow-listed environment
// (kEnvBlockMax bytes of it, as the eBPF program reads). Fields that cannot
// be read stay empty; returns the names of those, comma-separated ("" all read).
std::string ReadProcExecContext(const std::string& dir, RealtimeEvent* ev, std::string* scratch);

}  // namespace sentinel::procmond
