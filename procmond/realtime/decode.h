// Pure decoders of the kernel's real-time records, separated from the
// reads so they are tested without a kernel (decode_test.cc):
//  - the BPF ring-buffer record of procmond/bpf/exec_events.h;
//  - the netlink proc connector message (linux/cn_proc.h).
// Thread-safe (no state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "procmond/realtime/realtime_source.h"
#include "sentinel/base/status.h"

namespace sentinel::procmond {

// A wait(2) status as a process_events.exit_code: the exit code when the
// process exited, 128 + signal number when a signal killed it (the shell's
// convention).
int64_t ExitCodeFromWaitStatus(int64_t status);

// Epoch ms of a CLOCK_BOOTTIME/CLOCK_MONOTONIC timestamp given the offset
// (epoch ns - clock ns) measured at start-up.
int64_t EpochMsFromClockNs(uint64_t clock_ns, int64_t offset_ns);
// Offset between CLOCK_REALTIME and `clock_id` now, in ns.
int64_t ClockOffsetNs(int clock_id);

// Decodes one ring-buffer record (struct sentinel_event). InvalidArgument on
// a short record, an unknown type or lengths past the record's bounds.
// `boot_offset_ns` = ClockOffsetNs(CLOCK_BOOTTIME).
Result<RealtimeEvent> DecodeBpfRecord(const void* data, size_t size, int64_t boot_offset_ns);

// The environment variables an exec event keeps (docs/realtime.md): the
// loader's (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, LD_DEBUG,
// LD_TRACE_LOADED_OBJECTS: ldd's "list, do not run") and the shells'
// that change what runs or what is remembered (HISTFILE, HISTSIZE,
// HISTFILESIZE, HISTCONTROL, HISTIGNORE, PROMPT_COMMAND, BASH_ENV, ENV).
// No other value ever leaves FilterEnvironment.
inline constexpr std::string_view kEnvAllowList[] = {"LD_PRELOAD",
                                                     "LD_LIBRARY_PATH",
                                                     "LD_AUDIT",
                                                     "LD_DEBUG",
                                                     "HISTFILE",
                                                     "HISTSIZE",
                                                     "HISTFILESIZE",
                                                     "HISTCONTROL",
                                                     "HISTIGNORE",
                                                     "PROMPT_COMMAND",
                                                     "BASH_ENV",
                                                     "ENV",
                                                     "LD_TRACE_LOADED_OBJECTS"};
inline constexpr size_t kEnvValueMax = 256;  // bytes of a kept value; longer ones are cut and flagged
// Bytes of an environment block read (the eBPF program's bound; the netlink
// source reads /proc/PID/environ up to the same).
inline constexpr size_t kEnvBlockMax = 4096;

// Bytes of an argument block captured (the eBPF program's bound; the netlink
// source reads /proc/PID/cmdline to the same, start and end alike).
inline constexpr size_t kArgsBlockMax = 4096;

// The allow-listed variables of a NUL-separated environment block, in block
// order, each name once (the first, as getenv() finds it). `truncated`
// starts as `block_truncated` (the block was cut at its bound) and is set
// when a value is cut at kEnvValueMax.
ExecEnv FilterEnvironment(std::string_view block, bool block_truncated);

// A block captured as its start and its end (the first `head_len` bytes of
// `captured` are the block's start, the rest its end; a block that fit has
// head_len == captured.size()). The argument vector keeps the pieces of the
// arguments cut at either side of the gap as arguments of their own; the
// environment drops the entry cut at the start of the end part (its name
// may be the tail of a longer one).
std::vector<std::string> ArgvFromHeadAndTail(std::string_view captured, size_t head_len);
ExecEnv EnvironmentFromHeadAndTail(std::string_view captured, size_t head_len, bool block_truncated);

// The working directory from the eBPF record's components, leaf first and
// NUL-terminated ("c\0b\0a\0" -> "/a/b/c"; none -> "/").
std::string CwdFromComponents(std::string_view leaf_first);

// A user-space dev_t (makedev) from the kernel's internal one (major << 20 | minor).
uint64_t UserDevFromKernel(uint32_t kernel_dev);

// One proc connector notification, as far as procmond cares.
struct ProcConnectorEvent {
  enum class What { kNone, kFork, kExec, kExit, kUid, kOther } what = What::kNone;
  int64_t pid = 0;            // process (tgid) the event is about
  int64_t thread = 0;         // thread id (fork: child thread; exec/exit/uid: the thread)
  int64_t parent = 0;         // fork: parent tgid; exit: parent tgid (6.x kernels)
  int64_t exit_status = 0;    // exit: wait(2) status
  int64_t ruid = -1;          // uid: the real uid after a set*uid call
  int64_t euid = -1;          // uid: the effective uid after it
  uint64_t timestamp_ns = 0;  // CLOCK_MONOTONIC
};
// Decodes one netlink message payload area: nlmsghdr + cn_msg + proc_event.
// InvalidArgument when the message is not a well-formed proc connector
// event. A PROC_EVENT_NONE (the ack of the subscription) is kNone.
Result<ProcConnectorEvent> DecodeProcConnector(const void* data, size_t size);

}  // namespace sentinel::procmond
