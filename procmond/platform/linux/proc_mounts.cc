#include "procmond/platform/linux/proc_mounts.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

namespace sentinel::procmond {

namespace {

bool IsOctal(char c) {
  return c >= '0' && c <= '7';
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && IsOctal(s[i + 1]) && IsOctal(s[i + 2]) && IsOctal(s[i + 3])) {
      out.push_back(static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The fifth space-separated field of a mountinfo line: the mount point.
std::string_view MountPoint(std::string_view line) {
  for (int field = 0; field < 4; ++field) {
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return {};
    line.remove_prefix(sp + 1);
  }
  return line.substr(0, line.find(' '));
}

// The pid of "<proc_root>/PID" or "<proc_root>/PID/...", or 0.
int32_t PidBelow(std::string_view path, std::string_view proc_root) {
  if (path.size() <= proc_root.size() + 1 || path.substr(0, proc_root.size()) != proc_root ||
      path[proc_root.size()] != '/') {
    return 0;
  }
  path.remove_prefix(proc_root.size() + 1);
  const std::string_view digits = path.substr(0, path.find('/'));
  int32_t pid = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  return ec == std::errc() && ptr == digits.data() + digits.size() && pid > 0 ? pid : 0;
}

}  // namespace

std::unordered_map<int32_t, std::string> ParseProcMounts(std::string_view mountinfo,
                                                         std::string_view proc_root) {
  std::unordered_map<int32_t, std::string> out;
  while (!mountinfo.empty()) {
    const size_t nl = mountinfo.find('\n');
    const std::string_view line = mountinfo.substr(0, nl);
    mountinfo.remove_prefix(nl == std::string_view::npos ? mountinfo.size() : nl + 1);
    const std::string_view raw = MountPoint(line);
    if (raw.substr(0, proc_root.size()) != proc_root) continue;  // cheap filter before unescaping
    std::string point = Unescape(raw);
    if (const int32_t pid = PidBelow(point, proc_root)) out.try_emplace(pid, std::move(point));
  }
  return out;
}

ProcMountWatch::ProcMountWatch(std::string proc_root, std::string mountinfo)
    : proc_root_(std::move(proc_root)), mountinfo_(std::move(mountinfo)) {}

void ProcMountWatch::Refresh() {
  if (fd_.get() >= 0) {
    pollfd p{fd_.get(), POLLPRI, 0};
    if (::poll(&p, 1, 0) == 0) return;  // unchanged
  } else {
    fd_ = UniqueFd(::open(mountinfo_.c_str(), O_RDONLY | O_CLOEXEC));
  }
  mounts_.clear();
  buf_.clear();
  if (fd_.get() < 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0) return;
  char chunk[16384];
  while (true) {
    const ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf_.append(chunk, static_cast<size_t>(n));
  }
  mounts_ = ParseProcMounts(buf_, proc_root_);
  std::string().swap(buf_);
}

}  // namespace sentinel::procmond
