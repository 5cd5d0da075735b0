#include "procmond/realtime/proc_reads.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "procmond/platform/linux/boot_clock.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "procmond/realtime/decode.h"
#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"

namespace sentinel::procmond {

bool ReadSmallFile(const std::string& path, std::string* out, size_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  out->clear();
  char buf[8192];
  while (out->size() < max) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  if (out->size() > max) out->resize(max);
  return true;
}

bool ReadHeadAndTail(const std::string& path, size_t max, std::string* out, size_t* head_len, size_t* total) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  const size_t half = max / 2;
  out->clear();
  std::string tail;  // the last bytes read past the head, at most 2 * half before a trim
  *total = 0;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    *total += static_cast<size_t>(n);
    std::string_view got(buf, static_cast<size_t>(n));
    const size_t to_head = out->size() < max ? std::min(got.size(), max - out->size()) : 0;
    out->append(got.substr(0, to_head));
    tail.append(got.substr(to_head));
    if (tail.size() > 2 * half + sizeof(buf)) tail.erase(0, tail.size() - half);
  }
  *head_len = out->size();
  if (*total <= max) return true;
  // Over the bound: the head's first half and the block's last half.
  std::string end = *out + tail;
  out->resize(half);
  out->append(std::string_view(end).substr(end.size() - half));
  *head_len = half;
  return true;
}

std::optional<std::string> ReadLinkText(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<bool> AuxvSecure(std::string_view auxv) {
  // (type, value) pairs of the word size, ended by AT_NULL.
  constexpr size_t kPair = 2 * sizeof(uint64_t);
  for (size_t off = 0; off + kPair <= auxv.size(); off += kPair) {
    uint64_t type = 0, value = 0;
    std::memcpy(&type, auxv.data() + off, sizeof(type));
    std::memcpy(&value, auxv.data() + off + sizeof(type), sizeof(value));
    if (type == AT_NULL) break;
    if (type == AT_SECURE) return value != 0;
  }
  return std::nullopt;
}

namespace {

void AddMissing(std::string* missing, std::string_view what) {
  if (!missing->empty()) *missing += ",";
  *missing += what;
}

// stat: terminal and start time. false when the file could not be read.
bool ReadStatContext(const std::string& dir, RealtimeEvent* ev, std::string* scratch) {
  if (!ReadSmallFile(dir + "/stat", scratch)) return false;
  auto st = linux_proc::ParseStat(*scratch);
  if (!st.ok()) return false;
  ev->tty = linux_proc::TtyName(st->tty_nr);
  ev->start_boottime_ns = st->starttime_ticks * NsPerClockTick();
  return true;
}

// status and auxv: parent, name, real and effective ids, and whether the
// exec changed credentials.
bool ReadStatusContext(const std::string& dir, RealtimeEvent* ev, std::string* scratch) {
  if (!ReadSmallFile(dir + "/status", scratch)) return false;
  auto st = linux_proc::ParseStatus(*scratch);
  if (!st.ok()) return false;
  ev->ppid = st->ppid;
  ev->uid = st->ruid;
  ev->gid = st->rgid;
  ev->euid = st->euid;
  ev->egid = st->egid;
  if (st->name) ev->comm = st->name;
  if (!ev->uid || !ev->gid || !ev->euid || !ev->egid) return false;
  std::optional<bool> secure;
  if (ReadSmallFile(dir + "/auxv", scratch, 4096)) secure = AuxvSecure(*scratch);
  if (*ev->euid != *ev->uid || *ev->egid != *ev->gid) {
    ev->cred_change = true;
  } else if (secure) {
    ev->cred_change = *secure;
  }
  return ev->cred_change.has_value();
}

bool ReadLoginUid(const std::string& dir, RealtimeEvent* ev, std::string* scratch) {
  if (!ReadSmallFile(dir + "/loginuid", scratch, 32)) return false;
  auto n = ParseInt64(Trim(*scratch));
  if (!n) return false;
  if (*n != 4294967295) ev->login_uid = *n;
  return true;
}

}  // namespace

std::optional<ProcIdentity> ReadProcIdentity(const std::string& proc_root, int64_t pid,
                                             std::string* scratch) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  if (!ReadSmallFile(dir + "/stat", scratch)) return std::nullopt;
  auto st = linux_proc::ParseStat(*scratch);
  if (!st.ok()) return std::nullopt;
  ProcIdentity out;
  out.start_ticks = st->starttime_ticks;
  out.comm = st->comm;
  out.exe_path = ReadLinkText(dir + "/exe");
  if (ReadSmallFile(dir + "/cmdline", scratch) && !scratch->empty())
    out.argv = linux_proc::ParseCmdline(*scratch);
  return out;
}

std::string ReadProcExecContext(const std::string& dir, RealtimeEvent* ev, std::string* scratch) {
  std::string missing;
  // Who ran it first: a short-lived process is reaped (and its /proc
  // directory gone) within microseconds of its exit, and an exec whose
  // argv was read but not its user is the worst partial record. Then
  // environ and auxv (read with status), which go with the memory like cmdline.
  if (!ReadStatusContext(dir, ev, scratch)) AddMissing(&missing, "status");
  size_t head = 0, total = 0;
  if (ReadHeadAndTail(dir + "/environ", kEnvBlockMax, scratch, &head, &total)) {
    ev->env = EnvironmentFromHeadAndTail(*scratch, head, total > kEnvBlockMax);
  } else {
    AddMissing(&missing, "env");
  }
  ev->cwd = ReadLinkText(dir + "/cwd");
  if (!ev->cwd) AddMissing(&missing, "cwd");
  if (!ReadStatContext(dir, ev, scratch)) AddMissing(&missing, "stat");
  if (!ReadLoginUid(dir, ev, scratch)) AddMissing(&missing, "loginuid");
  return missing;
}

}  // namespace sentinel::procmond
