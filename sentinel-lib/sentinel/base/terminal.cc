#include "sentinel/base/terminal.h"

#ifdef _WIN32
#include <io.h>
#else
#include <sys/ioctl.h>
#include <unistd.h>
#endif

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "sentinel/base/strings.h"

namespace sentinel {

namespace {
// Anything wider is a broken $COLUMNS, not a terminal.
constexpr int64_t kMaxWidth = 100000;
}  // namespace

TerminalInfo DetectTerminal(int fd, bool no_color_flag) {
  TerminalInfo info;
  info.is_tty = fd >= 0 && ::isatty(fd) == 1;

  // getenv: the environment is not changed while this runs (see the header).
  const char* term = std::getenv("TERM");  // NOLINT(concurrency-mt-unsafe)
  const bool dumb = term != nullptr && std::string_view(term) == "dumb";
  // SPEC §9 says "when NO_COLOR is set": presence alone counts, even empty
  // (stricter than no-color.org, which ignores an empty value).
  const bool no_color_env = std::getenv("NO_COLOR") != nullptr;  // NOLINT(concurrency-mt-unsafe)
  info.color = info.is_tty && !no_color_flag && !no_color_env && !dumb;

#ifndef _WIN32
  if (info.is_tty) {
    struct winsize ws = {};
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
      info.width = ws.ws_col;
      return info;
    }
  }
#endif
  if (const char* columns = std::getenv("COLUMNS")) {  // NOLINT(concurrency-mt-unsafe)
    std::optional<int64_t> n = ParseInt64(columns);
    if (n && *n > 0 && *n <= kMaxWidth) info.width = static_cast<int>(*n);
  }
  return info;
}

}  // namespace sentinel
