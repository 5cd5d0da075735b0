#include "procmond/realtime/decode.h"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <linux/types.h>
#include <time.h>

#include <cstring>
#include <limits>
#include <string>

#include "procmond/bpf/exec_events.h"
#include "procmond/platform/linux/proc_parsers.h"

namespace sentinel::procmond {

int64_t ExitCodeFromWaitStatus(int64_t status) {
  const int64_t sig = status & 0x7f;
  if (sig == 0) return (status >> 8) & 0xff;
  return 128 + sig;
}

int64_t EpochMsFromClockNs(uint64_t clock_ns, int64_t offset_ns) {
  // The timestamp comes from a record: a garbled one must not overflow
  // (undefined behaviour), so the sum saturates.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t ns = clock_ns > static_cast<uint64_t>(kMax) ? kMax : static_cast<int64_t>(clock_ns);
  int64_t sum = 0;
  if (__builtin_add_overflow(ns, offset_ns, &sum)) sum = kMax;  // ns >= 0: only upwards
  return sum / 1'000'000;
}

int64_t ClockOffsetNs(int clock_id) {
  // Read the clock between two reads of the wall clock and take the middle,
  // so a preemption between the reads costs at most its own half.
  timespec r0{}, c{}, r1{};
  clock_gettime(CLOCK_REALTIME, &r0);
  clock_gettime(clock_id, &c);
  clock_gettime(CLOCK_REALTIME, &r1);
  auto ns = [](const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; };
  return (ns(r0) + ns(r1)) / 2 - ns(c);
}

namespace {

// A fixed-size char field up to its first NUL.
std::string FieldString(const char* p, size_t n) {
  return std::string(p, strnlen(p, n));
}

}  // namespace

Result<RealtimeEvent> DecodeBpfRecord(const void* data, size_t size, int64_t boot_offset_ns) {
  constexpr size_t kHeader = offsetof(sentinel_event, path);
  if (data == nullptr || size < kHeader) {
    return InvalidArgumentError("BPF record of " + std::to_string(size) +
                                " bytes is shorter than its header (" + std::to_string(kHeader) + ")");
  }
  sentinel_event e{};
  std::memcpy(&e, data, size < sizeof(e) ? size : sizeof(e));
  RealtimeEvent out;
  switch (e.type) {
    case SENTINEL_EVENT_EXEC: out.type = RealtimeEventType::kExec; break;
    case SENTINEL_EVENT_FORK: out.type = RealtimeEventType::kFork; break;
    case SENTINEL_EVENT_EXIT: out.type = RealtimeEventType::kExit; break;
    default: return InvalidArgumentError("BPF record has unknown type " + std::to_string(e.type));
  }
  out.time_ms = EpochMsFromClockNs(e.ktime_ns, boot_offset_ns);
  out.pid = e.tgid;
  out.ppid = e.ppid;
  out.uid = e.uid;
  out.gid = e.gid;
  out.cgroup_id = e.cgroup_id;
  out.comm = FieldString(e.comm, sizeof(e.comm));
  if (out.type == RealtimeEventType::kExit) out.exit_code = ExitCodeFromWaitStatus(e.exit_code);
  if (out.type != RealtimeEventType::kExec) return out;

  // An exec record ends right after the argv bytes it carries.
  constexpr size_t kArgs = offsetof(sentinel_event, args);
  if (size < kArgs) {
    return InvalidArgumentError("BPF exec record of " + std::to_string(size) + " bytes is shorter than " +
                                std::to_string(kArgs));
  }
  if (e.args_len > sizeof(e.args) || e.path_len > sizeof(e.path) || kArgs + e.args_len > size) {
    return InvalidArgumentError("BPF exec record has args_len " + std::to_string(e.args_len) +
                                " / path_len " + std::to_string(e.path_len) + " past its " +
                                std::to_string(size) + " bytes");
  }
  out.argc = e.argc;
  if (!(e.flags & SENTINEL_EVENT_PATH_FAULT) && e.path_len > 0) {
    out.exe_path = FieldString(e.path, e.path_len);
  } else {
    out.incomplete = "path_unreadable";
  }
  if (e.flags & SENTINEL_EVENT_ARGS_FAULT) {
    out.incomplete = out.incomplete.empty() ? "argv_unreadable" : out.incomplete + ",argv_unreadable";
  } else {
    out.argv = linux_proc::ParseCmdline(std::string_view(e.args, e.args_len));
    out.argv_truncated = (e.flags & SENTINEL_EVENT_ARGS_TRUNCATED) != 0;
  }
  return out;
}

Result<ProcConnectorEvent> DecodeProcConnector(const void* data, size_t size) {
  const size_t need = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_event));
  if (data == nullptr || size < NLMSG_HDRLEN + sizeof(cn_msg)) {
    return InvalidArgumentError("netlink message of " + std::to_string(size) +
                                " bytes is too short for cn_msg");
  }
  nlmsghdr nh{};
  std::memcpy(&nh, data, sizeof(nh));
  if (nh.nlmsg_len > size) {
    return InvalidArgumentError("netlink message says " + std::to_string(nh.nlmsg_len) + " bytes, got " +
                                std::to_string(size));
  }
  cn_msg msg{};
  std::memcpy(&msg, static_cast<const char*>(data) + NLMSG_HDRLEN, sizeof(msg));
  if (msg.id.idx != CN_IDX_PROC || msg.id.val != CN_VAL_PROC) {
    return InvalidArgumentError("netlink message is not from the proc connector (idx " +
                                std::to_string(msg.id.idx) + ")");
  }
  if (size < need || msg.len < sizeof(proc_event) - sizeof(proc_event::event_data) ||
      NLMSG_HDRLEN + sizeof(cn_msg) + msg.len > size) {
    // The ack of the subscription and short events. Its "what" is read only when the message
    // really holds those 4 bytes: cn_msg.len is the sender's claim, `size` the truth.
    if (msg.len >= sizeof(uint32_t) && NLMSG_HDRLEN + sizeof(cn_msg) + sizeof(uint32_t) <= size) {
      uint32_t what = 0;
      std::memcpy(&what, static_cast<const char*>(data) + NLMSG_HDRLEN + sizeof(cn_msg), sizeof(what));
      if (what == proc_event::PROC_EVENT_NONE) return ProcConnectorEvent{};
    }
    return InvalidArgumentError("proc connector event of " + std::to_string(msg.len) + " bytes is too short");
  }
  proc_event ev{};
  std::memcpy(&ev, static_cast<const char*>(data) + NLMSG_HDRLEN + sizeof(cn_msg), sizeof(ev));
  ProcConnectorEvent out;
  out.timestamp_ns = ev.timestamp_ns;
  switch (ev.what) {
    case proc_event::PROC_EVENT_NONE: out.what = ProcConnectorEvent::What::kNone; break;
    case proc_event::PROC_EVENT_FORK:
      out.what = ProcConnectorEvent::What::kFork;
      out.pid = ev.event_data.fork.child_tgid;
      out.thread = ev.event_data.fork.child_pid;
      out.parent = ev.event_data.fork.parent_tgid;
      break;
    case proc_event::PROC_EVENT_EXEC:
      out.what = ProcConnectorEvent::What::kExec;
      out.pid = ev.event_data.exec.process_tgid;
      out.thread = ev.event_data.exec.process_pid;
      break;
    case proc_event::PROC_EVENT_EXIT:
      out.what = ProcConnectorEvent::What::kExit;
      out.pid = ev.event_data.exit.process_tgid;
      out.thread = ev.event_data.exit.process_pid;
      out.parent = ev.event_data.exit.parent_tgid;
      out.exit_status = ev.event_data.exit.exit_code;
      break;
    default: out.what = ProcConnectorEvent::What::kOther; break;
  }
  return out;
}

}  // namespace sentinel::procmond
