// Standard streams of shells and interpreters, kept current (issue 17,
// case 3). A shell that moves its stdin/stdout onto a socket after it
// started (bash's `exec <>/dev/tcp/...`, python's os.dup2(s.fileno(), 0))
// is a reverse shell that the once-per-instance read of fds 0-2 would miss:
// for the few processes whose command name is a shell's or an
// interpreter's, LinuxProcessSource reads fds 0-2 again on every scan (three
// readlinks each) and rewrites platform_data.fds when they changed.
// StdioKey() digests what was read, so a change is one comparison; the
// record carries the digest (ProcessRecord::stdio_key) and the event store
// keeps the platform_data it shows current when the digest moves.
#pragma once

#include <cstdint>
#include <string_view>

#include "sentinel/base/status.h"

namespace sentinel::procmond {

// Whether fds 0-2 of a process with command name `comm` are re-read every
// scan: the shells and interpreters of proc-reverse-shell-socket-stdio.
bool WatchesStdio(std::string_view comm);

// Digest of fds 0-2 as read, folded one descriptor at a time; never 0 once
// anything was folded (0 means "not watched").
class StdioKey {
 public:
  void Add(int fd, const Status& read, std::string_view link);
  uint64_t value() const { return h_ | 1; }

 private:
  void Mix(std::string_view bytes);
  uint64_t h_ = 0xcbf29ce484222325ULL;  // FNV-1a offset basis
};

}  // namespace sentinel::procmond
