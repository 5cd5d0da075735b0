#include "procmond/platform/linux/proc_parsers.h"

#include <string.h>

#include <algorithm>

#include "sentinel/base/strings.h"

namespace sentinel::procmond::linux_proc {

namespace {

// Fields after comm, numbered from 3 (state) as in proc(5), up to field 51
// (env_end) when present: no allocation per call.
constexpr size_t kStatNeed = 22;  // up to rss (field 24)
constexpr size_t kStatMax = 49;   // up to env_end (field 51)

// Splits what follows stat's ")" into fields; returns how many.
size_t SplitStatFields(std::string_view after_comm, std::string_view (&fields)[kStatMax]) {
  size_t nfields = 0;
  const char* p = after_comm.data();
  const char* const end = p + after_comm.size();
  while (p < end && nfields < kStatMax) {
    while (p < end && (*p == ' ' || *p == '\n')) ++p;
    const char* q = p;
    while (q < end && *q != ' ' && *q != '\n') ++q;
    if (q > p) fields[nfields++] = std::string_view(p, static_cast<size_t>(q - p));
    p = q;
  }
  return nfields;
}

// The exec signature: its fields are decimal addresses; no value is needed,
// only whether they changed, so their text is mixed in. 0: none shown.
uint64_t ExecSignature(const std::string_view (&fields)[kStatMax], size_t nfields) {
  uint64_t sig = 0;
  bool any = false;
  for (int field : {26, 27, 28, 45, 46, 47, 48, 49, 50, 51}) {
    const size_t idx = static_cast<size_t>(field - 3);
    if (idx >= nfields) break;
    std::string_view t = fields[idx];
    if (t != "0") any = true;
    for (char ch : t) sig = (sig ^ static_cast<unsigned char>(ch)) * 0x100000001b3ULL;  // FNV-1a
    sig = (sig ^ 0xff) * 0x100000001b3ULL;                                              // separator
  }
  return any ? (sig | 1) : 0;
}

// The numeric fields the collector uses (index = field - 3).
Status ParseStatNumbers(const std::string_view (&fields)[kStatMax], StatFields* f) {
  auto num = [&](int field) -> std::optional<int64_t> {
    return ParseInt64(fields[static_cast<size_t>(field - 3)]);
  };
  auto ppid = num(4), tty = num(7), flags = num(9), utime = num(14), stime = num(15), threads = num(20),
       start = num(22), rss = num(24);
  if (!ppid || !tty || !flags || !utime || !stime || !threads || !start || !rss) {
    return InvalidArgumentError("stat: non-numeric field");
  }
  f->ppid = *ppid;
  f->tty_nr = *tty;
  f->flags = static_cast<uint64_t>(*flags);
  f->utime_ticks = static_cast<uint64_t>(*utime);
  f->stime_ticks = static_cast<uint64_t>(*stime);
  f->num_threads = *threads;
  f->starttime_ticks = static_cast<uint64_t>(*start);
  f->rss_pages = *rss;
  return Status::Ok();
}

}  // namespace

Result<StatFields> ParseStat(std::string_view c) {
  StatFields f;
  size_t open = c.find('(');
  // The LAST ')': memrchr is vectorized, string_view::rfind is not.
  const void* last = c.empty() ? nullptr : ::memrchr(c.data(), ')', c.size());
  size_t close =
      last ? static_cast<size_t>(static_cast<const char*>(last) - c.data()) : std::string_view::npos;
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return InvalidArgumentError("stat: no (comm) field");
  }
  auto pid = ParseInt64(Trim(c.substr(0, open)));
  if (!pid) return InvalidArgumentError("stat: bad pid");
  f.pid = *pid;
  f.comm = std::string(c.substr(open + 1, close - open - 1));
  std::string_view fields[kStatMax];
  const size_t nfields = SplitStatFields(c.substr(close + 1), fields);
  if (nfields < kStatNeed)
    return InvalidArgumentError("stat: truncated (" + std::to_string(nfields) + " fields)");
  f.exec_sig = ExecSignature(fields, nfields);
  if (fields[0].size() != 1) return InvalidArgumentError("stat: bad state");
  f.state = fields[0][0];
  RETURN_IF_ERROR(ParseStatNumbers(fields, &f));
  return f;
}

std::string StateName(char s) {
  switch (s) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk-sleep";
    case 'T': return "stopped";
    case 't': return "tracing-stop";
    case 'Z': return "zombie";
    case 'X':
    case 'x': return "dead";
    case 'I': return "idle";
    case 'P': return "parked";
    case 'W': return "waking";
    case 'K': return "wakekill";
    default: return "unknown";
  }
}

namespace {
// "Uid:\t1000\t1000\t1000\t1000" -> the four numbers.
bool ParseFour(std::string_view v, std::optional<int64_t>* a, std::optional<int64_t>* b,
               std::optional<int64_t>* c, std::optional<int64_t>* d) {
  std::optional<int64_t>* out[4] = {a, b, c, d};
  size_t idx = 0, i = 0;
  while (i < v.size() && idx < 4) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    size_t j = i;
    while (j < v.size() && v[j] != ' ' && v[j] != '\t') ++j;
    if (j == i) break;
    auto n = ParseInt64(v.substr(i, j - i));
    if (!n) return false;
    *out[idx++] = *n;
    i = j;
  }
  return idx == 4;
}
}  // namespace

Result<StatusFields> ParseStatus(std::string_view c) {
  StatusFields f;
  size_t pos = 0;
  bool any = false;
  while (pos < c.size()) {
    size_t nl = c.find('\n', pos);
    std::string_view line = c.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? c.size() : nl + 1;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view val = line.substr(colon + 1);
    if (key == "Name") {
      f.name = std::string(Trim(val));
      any = true;
    } else if (key == "Uid") {
      if (!ParseFour(val, &f.ruid, &f.euid, &f.suid, &f.fsuid))
        return InvalidArgumentError("status: bad Uid line");
      any = true;
    } else if (key == "Gid") {
      if (!ParseFour(val, &f.rgid, &f.egid, &f.sgid, &f.fsgid))
        return InvalidArgumentError("status: bad Gid line");
    } else if (key == "PPid") {
      f.ppid = ParseInt64(Trim(val));
    } else if (key == "Threads") {
      f.threads = ParseInt64(Trim(val));
    } else if (key == "VmRSS") {
      std::string_view v = Trim(val);
      if (EndsWith(v, " kB")) v = v.substr(0, v.size() - 3);
      f.vm_rss_kb = ParseInt64(Trim(v));
    }
  }
  if (!any) return InvalidArgumentError("status: no Name or Uid line");
  return f;
}

std::vector<std::string> ParseCmdline(std::string_view c) {
  std::vector<std::string> args;
  ParseCmdlineInto(c, &args);
  return args;
}

void ParseCmdlineInto(std::string_view c, std::vector<std::string>* args) {
  size_t n = 0;
  auto put = [&](std::string_view arg) {
    if (n < args->size()) {
      (*args)[n].assign(arg);
    } else {
      args->emplace_back(arg);
    }
    ++n;
  };
  if (!c.empty()) {
    if (c.back() == '\0') c.remove_suffix(1);
    if (args->empty()) args->reserve(static_cast<size_t>(std::count(c.begin(), c.end(), '\0')) + 1);
    size_t start = 0;
    while (true) {
      size_t z = c.find('\0', start);
      if (z == std::string_view::npos) {
        put(c.substr(start));
        break;
      }
      put(c.substr(start, z - start));
      start = z + 1;
    }
  }
  args->resize(n);
}

Result<int64_t> ParseBootTime(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    std::string_view line = s.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? s.size() : nl + 1;
    if (StartsWith(line, "btime ")) {
      auto v = ParseInt64(Trim(line.substr(6)));
      if (!v) return InvalidArgumentError("/proc/stat: bad btime line");
      return *v;
    }
  }
  return InvalidArgumentError("/proc/stat: no btime line");
}

ExeInfo ClassifyExe(std::string_view t) {
  ExeInfo e;
  e.path = std::string(t);
  e.deleted = EndsWith(t, " (deleted)");
  e.memfd = StartsWith(t, "/memfd:");
  return e;
}

std::optional<std::string> TtyName(int64_t tty_nr) {
  if (tty_nr == 0) return std::nullopt;
  // Linux dev_t encoding as the kernel prints it in stat (new_encode_dev).
  const auto v = static_cast<uint64_t>(tty_nr);
  const uint64_t major = (v >> 8) & 0xfff;
  const uint64_t minor = (v & 0xff) | ((v >> 12) & 0xfff00);
  auto n = [](uint64_t x) { return std::to_string(x); };
  if (major >= 136 && major <= 143) return "pts/" + n((major - 136) * 256 + minor);
  if (major == 4) return minor < 64 ? "tty" + n(minor) : "ttyS" + n(minor - 64);
  if (major == 5 && minor == 0) return "tty";
  if (major == 5 && minor == 1) return "console";
  if (major == 5 && minor == 2) return "ptmx";
  if (major == 188) return "ttyUSB" + n(minor);
  if (major == 166) return "ttyACM" + n(minor);
  if (major == 229) return "hvc" + n(minor);
  if (major == 204 && minor >= 64) return "ttyAMA" + n(minor - 64);
  return n(major) + ":" + n(minor);
}

namespace {

// A file starting with "0::" (`rest` follows it). Pure v2: a single entry,
// taken whole. A hybrid file starting with "0::" has more "N:...:" lines
// after it; then the first line is the entry.
Result<std::string> ParseCgroupV2(std::string_view rest) {
  if (!rest.empty() && rest.back() == '\n') rest.remove_suffix(1);
  size_t nl = rest.find('\n');
  if (nl != std::string_view::npos) {
    std::string_view tail = rest.substr(nl + 1);
    size_t colon = tail.find(':');
    if (colon != std::string_view::npos && colon > 0 && ParseInt64(tail.substr(0, colon))) {
      rest = rest.substr(0, nl);
    }
  }
  if (rest.empty() || rest[0] != '/') return InvalidArgumentError("cgroup: bad v2 path");
  return std::string(rest);
}

struct CgroupLine {
  std::string_view id, controllers, path;
};

// "hierarchy-ID:controller-list:path"; nullopt when the line is not one.
std::optional<CgroupLine> SplitCgroupLine(std::string_view line) {
  size_t a = line.find(':');
  if (a == std::string_view::npos) return std::nullopt;
  size_t b = line.find(':', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  return CgroupLine{line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)};
}

}  // namespace

Result<std::string> ParseCgroup(std::string_view c) {
  if (StartsWith(c, "0::")) return ParseCgroupV2(c.substr(3));
  std::optional<std::string_view> systemd;
  size_t pos = 0;
  while (pos < c.size()) {
    size_t nl = c.find('\n', pos);
    std::string_view line = c.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? c.size() : nl + 1;
    auto entry = SplitCgroupLine(line);
    if (!entry || entry->path.empty() || entry->path[0] != '/') continue;
    if (entry->id == "0" && entry->controllers.empty()) return std::string(entry->path);
    if (entry->controllers == "name=systemd" && !systemd) systemd = entry->path;
  }
  if (systemd) return std::string(*systemd);
  return InvalidArgumentError("cgroup: no v2 or name=systemd entry");
}

Result<uint64_t> ParseNsLink(std::string_view t, std::string_view type) {
  // "<type>:[<decimal>]"
  if (t.size() < type.size() + 4 || t.substr(0, type.size()) != type || t.substr(type.size(), 2) != ":[" ||
      t.back() != ']') {
    return InvalidArgumentError("ns/" + std::string(type) + ": unexpected link target");
  }
  std::string_view digits = t.substr(type.size() + 2, t.size() - type.size() - 3);
  auto v = ParseInt64(digits);
  if (!v || *v < 0 || digits.empty() || digits[0] == '+' || digits[0] == '-') {
    return InvalidArgumentError("ns/" + std::string(type) + ": bad inode number");
  }
  return static_cast<uint64_t>(*v);
}

namespace {
// "pipe:[123]" with prefix "pipe" -> 123.
std::optional<uint64_t> BracketInode(std::string_view t, std::string_view prefix) {
  if (t.size() < prefix.size() + 4 || t.substr(0, prefix.size()) != prefix ||
      t.substr(prefix.size(), 2) != ":[" || t.back() != ']') {
    return std::nullopt;
  }
  std::string_view digits = t.substr(prefix.size() + 2, t.size() - prefix.size() - 3);
  if (digits.empty() || digits[0] < '0' || digits[0] > '9') return std::nullopt;
  auto v = ParseInt64(digits);
  if (!v) return std::nullopt;
  return static_cast<uint64_t>(*v);
}
}  // namespace

FdTarget ClassifyFdTarget(std::string_view t) {
  FdTarget f;
  if (auto ino = BracketInode(t, "pipe")) {
    f.type = "pipe";
    f.inode = ino;
    return f;
  }
  if (auto ino = BracketInode(t, "socket")) {
    f.type = "socket";
    f.inode = ino;
    return f;
  }
  f.path = std::string(t);
  if (t.empty() || t[0] != '/') {
    f.type = "anon";  // anon_inode:[eventfd], anon_inode:inotify, net:[...], ...
  } else if (t == "/dev/null") {
    f.type = "null";
    f.path.clear();
  } else if (StartsWith(t, "/dev/pts/") || StartsWith(t, "/dev/tty") || t == "/dev/console" ||
             t == "/dev/ptmx") {
    f.type = "tty";
  } else {
    f.type = "file";
  }
  return f;
}

std::vector<std::string> LoaderEnvNames(std::string_view env) {
  static constexpr std::string_view kNames[] = {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"};
  bool seen[3] = {false, false, false};
  size_t pos = 0;
  while (pos < env.size()) {
    size_t end = env.find('\0', pos);
    if (end == std::string_view::npos) end = env.size();
    std::string_view entry = env.substr(pos, end - pos);
    pos = end + 1;
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = entry.substr(0, eq);
    for (size_t i = 0; i < 3; ++i) {
      if (name == kNames[i]) seen[i] = true;
    }
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < 3; ++i) {
    if (seen[i]) out.emplace_back(kNames[i]);
  }
  return out;
}

}  // namespace sentinel::procmond::linux_proc
