#include "procmond/platform/linux/stdio_watch.h"

#include <algorithm>
#include <array>

namespace sentinel::procmond {

namespace {

// The names of proc-reverse-shell-socket-stdio (rules/), exactly...
constexpr std::array<std::string_view, 22> kExact = {
    "sh",    "bash",    "dash", "zsh",  "ksh", "ksh93", "mksh", "ash",   "csh",    "tcsh", "fish",
    "rbash", "busybox", "perl", "ruby", "lua", "node",  "php",  "tclsh", "expect", "irb",  "pwsh"};
// ... and by prefix (python3.11, perl5.36.0, ruby3.1, lua5.4, php8.2, tclsh8.6).
constexpr std::array<std::string_view, 6> kPrefixes = {"python", "perl5", "ruby", "lua", "php", "tclsh"};

}  // namespace

bool WatchesStdio(std::string_view comm) {
  if (comm.empty()) return false;
  if (std::find(kExact.begin(), kExact.end(), comm) != kExact.end()) return true;
  return std::any_of(kPrefixes.begin(), kPrefixes.end(),
                     [&](std::string_view p) { return comm.starts_with(p); });
}

void StdioKey::Mix(std::string_view bytes) {
  for (const char c : bytes) {
    h_ ^= static_cast<unsigned char>(c);
    h_ *= 0x100000001b3ULL;  // FNV-1a prime
  }
}

void StdioKey::Add(int fd, const Status& read, std::string_view link) {
  const char head[2] = {static_cast<char>('0' + fd), static_cast<char>(read.code())};
  Mix(std::string_view(head, sizeof head));
  if (read.ok()) Mix(link);
  Mix(std::string_view("\0", 1));
}

}  // namespace sentinel::procmond
