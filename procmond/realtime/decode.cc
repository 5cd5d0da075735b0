#include "procmond/realtime/decode.h"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <linux/types.h>
#include <time.h>

#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "procmond/bpf/exec_events.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "procmond/platform/linux/task_sampler.h"

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

void AddIncomplete(RealtimeEvent* ev, std::string_view what) {
  if (!ev->incomplete.empty()) ev->incomplete += ",";
  ev->incomplete += what;
}

// The header fields every record has.
Result<RealtimeEvent> DecodeHeader(const sentinel_event& e, int64_t boot_offset_ns) {
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
  if (e.start_boottime_ns != 0) out.start_boottime_ns = e.start_boottime_ns;
  if (e.parent_start_boottime_ns != 0) out.parent_start_boottime_ns = e.parent_start_boottime_ns;
  if (out.type == RealtimeEventType::kExit) out.exit_code = ExitCodeFromWaitStatus(e.exit_code);
  return out;
}

// Credentials, login uid, terminal and image identity of an exec record.
void DecodeExecIdentity(const sentinel_event& e, RealtimeEvent* out) {
  out->euid = e.euid;
  out->egid = e.egid;
  out->cred_change = (e.flags & SENTINEL_EVENT_SECUREEXEC) != 0 || e.euid != e.uid || e.egid != e.gid;
  if ((e.flags & SENTINEL_EVENT_HAS_LOGINUID) && e.loginuid != 4294967295u) out->login_uid = e.loginuid;
  if (e.flags & SENTINEL_EVENT_HAS_TTY) out->tty = linux_proc::TtyName(EncodeTtyNr(e.tty_major, e.tty_minor));
  if (e.flags & SENTINEL_EVENT_HAS_FILE) {
    ExecImage img;
    img.dev = UserDevFromKernel(e.file_dev);
    img.ino = e.file_ino;
    img.size = e.file_size;
    img.mtime_ns = IdentityNs(e.file_mtime_sec, e.file_mtime_nsec);
    img.ctime_ns = IdentityNs(e.file_ctime_sec, e.file_ctime_nsec);
    img.nlink = e.file_nlink;
    out->image = img;
  }
  if (e.flags & SENTINEL_EVENT_HAS_ROOT) out->root_dev_ino = {UserDevFromKernel(e.root_dev), e.root_ino};
  if (e.flags & SENTINEL_EVENT_MEMFD) out->memfd_seals = e.memfd_seals;
  out->interpreted = (e.flags & SENTINEL_EVENT_INTERP) != 0;
}

// The packed variable parts of an exec record (exec_events.h).
struct ExecParts {
  std::string_view path, cwd, args, env;
};

Result<ExecParts> SplitExecParts(const sentinel_event& e, const char* data, size_t size) {
  constexpr size_t kBody = offsetof(sentinel_event, data);
  if (size < kBody) {
    return InvalidArgumentError("BPF exec record of " + std::to_string(size) + " bytes is shorter than " +
                                std::to_string(kBody));
  }
  const uint64_t used = uint64_t{e.path_len} + e.cwd_len + e.args_len + e.env_len;
  if (e.path_len > SENTINEL_EXEC_PATH_MAX || e.cwd_len > SENTINEL_EXEC_CWD_MAX ||
      e.args_len > SENTINEL_EXEC_ARGS_MAX || e.env_len > SENTINEL_EXEC_ENV_MAX || kBody + used > size) {
    return InvalidArgumentError("BPF exec record has path_len " + std::to_string(e.path_len) + " / cwd_len " +
                                std::to_string(e.cwd_len) + " / args_len " + std::to_string(e.args_len) +
                                " / env_len " + std::to_string(e.env_len) + " past its " +
                                std::to_string(size) + " bytes");
  }
  const char* p = data + kBody;
  ExecParts parts;
  parts.path = std::string_view(p, e.path_len);
  parts.cwd = std::string_view(p + e.path_len, e.cwd_len);
  parts.args = std::string_view(p + e.path_len + e.cwd_len, e.args_len);
  parts.env = std::string_view(p + e.path_len + e.cwd_len + e.args_len, e.env_len);
  return parts;
}

void DecodeExecParts(const sentinel_event& e, const ExecParts& parts, RealtimeEvent* out) {
  if (!(e.flags & SENTINEL_EVENT_PATH_FAULT) && !parts.path.empty()) {
    out->exe_path = FieldString(parts.path.data(), parts.path.size());
  } else {
    AddIncomplete(out, "path_unreadable");
  }
  if (e.flags & SENTINEL_EVENT_ARGS_FAULT) {
    AddIncomplete(out, "argv_unreadable");
  } else {
    out->argv = ArgvFromHeadAndTail(parts.args, std::min<size_t>(e.args_head_len, parts.args.size()));
    out->argv_truncated = (e.flags & SENTINEL_EVENT_ARGS_TRUNCATED) != 0;
    out->args_length = e.args_size;
  }
  if (e.flags & SENTINEL_EVENT_ENV_FAULT) {
    AddIncomplete(out, "env_unreadable");
  } else {
    out->env = EnvironmentFromHeadAndTail(parts.env, std::min<size_t>(e.env_head_len, parts.env.size()),
                                          (e.flags & SENTINEL_EVENT_ENV_TRUNCATED) != 0);
  }
  if (e.flags & SENTINEL_EVENT_CWD_FAULT) {
    AddIncomplete(out, "cwd_unreadable");
  } else if (e.flags & SENTINEL_EVENT_CWD_TRUNCATED) {
    AddIncomplete(out, "cwd_truncated");  // the writer may still read /proc/PID/cwd
  } else {
    out->cwd = CwdFromComponents(parts.cwd);
    if (e.flags & SENTINEL_EVENT_CWD_DELETED) *out->cwd += " (deleted)";
  }
}

}  // namespace

ExecEnv FilterEnvironment(std::string_view block, bool block_truncated) {
  ExecEnv out;
  out.truncated = block_truncated;
  size_t pos = 0;
  while (pos < block.size()) {
    size_t end = block.find('\0', pos);
    if (end == std::string_view::npos) end = block.size();
    const std::string_view entry = block.substr(pos, end - pos);
    pos = end + 1;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = entry.substr(0, eq);
    if (std::find(std::begin(kEnvAllowList), std::end(kEnvAllowList), name) == std::end(kEnvAllowList))
      continue;
    const bool seen =
        std::any_of(out.vars.begin(), out.vars.end(), [&](const auto& v) { return v.first == name; });
    if (seen) continue;
    std::string_view value = entry.substr(eq + 1);
    if (value.size() > kEnvValueMax) {
      value = value.substr(0, kEnvValueMax);
      out.truncated = true;
    }
    out.vars.emplace_back(std::string(name), std::string(value));
  }
  return out;
}

std::vector<std::string> ArgvFromHeadAndTail(std::string_view captured, size_t head_len) {
  std::vector<std::string> argv = linux_proc::ParseCmdline(captured.substr(0, head_len));
  std::string_view tail = captured.substr(std::min(head_len, captured.size()));
  if (!tail.empty() && tail.front() == '\0') tail.remove_prefix(1);  // the gap ended an argument
  if (tail.empty()) return argv;
  std::vector<std::string> end = linux_proc::ParseCmdline(tail);
  argv.insert(argv.end(), std::make_move_iterator(end.begin()), std::make_move_iterator(end.end()));
  return argv;
}

ExecEnv EnvironmentFromHeadAndTail(std::string_view captured, size_t head_len, bool block_truncated) {
  head_len = std::min(head_len, captured.size());
  ExecEnv out = FilterEnvironment(captured.substr(0, head_len), block_truncated);
  std::string_view tail = captured.substr(head_len);
  const size_t first_end = tail.find('\0');
  if (tail.empty() || first_end == std::string_view::npos) return out;
  ExecEnv end = FilterEnvironment(tail.substr(first_end + 1), block_truncated);
  out.truncated = out.truncated || end.truncated;
  for (auto& var : end.vars) {
    const bool seen =
        std::any_of(out.vars.begin(), out.vars.end(), [&](const auto& v) { return v.first == var.first; });
    if (!seen) out.vars.push_back(std::move(var));
  }
  return out;
}

std::string CwdFromComponents(std::string_view leaf_first) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos < leaf_first.size()) {
    size_t end = leaf_first.find('\0', pos);
    if (end == std::string_view::npos) end = leaf_first.size();
    parts.push_back(leaf_first.substr(pos, end - pos));
    pos = end + 1;
  }
  if (parts.empty()) return "/";
  std::string out;
  out.reserve(leaf_first.size() + 1);
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    out += '/';
    out += *it;
  }
  return out;
}

uint64_t UserDevFromKernel(uint32_t kernel_dev) {
  return makedev(kernel_dev >> 20, kernel_dev & 0xfffff);
}

Result<RealtimeEvent> DecodeBpfRecord(const void* data, size_t size, int64_t boot_offset_ns) {
  constexpr size_t kHeader = SENTINEL_HEADER_SIZE;
  if (data == nullptr || size < kHeader) {
    return InvalidArgumentError("BPF record of " + std::to_string(size) +
                                " bytes is shorter than its header (" + std::to_string(kHeader) + ")");
  }
  // Only the fixed part is copied (aligned, and zero where a short fork or
  // exit record ends); the variable parts are read in place.
  thread_local sentinel_event e;
  constexpr size_t kFixed = offsetof(sentinel_event, data);
  std::memset(&e, 0, kFixed);
  std::memcpy(&e, data, std::min(size, kFixed));
  ASSIGN_OR_RETURN(RealtimeEvent out, DecodeHeader(e, boot_offset_ns));
  if (out.type != RealtimeEventType::kExec) return out;
  ASSIGN_OR_RETURN(ExecParts parts, SplitExecParts(e, static_cast<const char*>(data), size));
  out.argc = e.argc;
  DecodeExecIdentity(e, &out);
  DecodeExecParts(e, parts, &out);
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
    case proc_event::PROC_EVENT_UID:
      out.what = ProcConnectorEvent::What::kUid;
      out.pid = ev.event_data.id.process_tgid;
      out.thread = ev.event_data.id.process_pid;
      out.ruid = ev.event_data.id.r.ruid;
      out.euid = ev.event_data.id.e.euid;
      break;
    default: out.what = ProcConnectorEvent::What::kOther; break;
  }
  return out;
}

}  // namespace sentinel::procmond
