// What a program knows about the terminal it writes to: whether colour is
// allowed and how wide a line may be (SPEC §9, §16). Shared by sentinelcli's
// tables and progress line and the agent's stdout alert sink, so every
// binary turns colour off for the same reasons.
//
// Thread-safety: DetectTerminal reads the environment (getenv) and must not
// race with setenv/unsetenv; call it from the main thread before starting
// threads, or where nothing changes the environment.
#pragma once

namespace sentinel {

struct TerminalInfo {
  bool color = false;   // ANSI SGR escape codes allowed
  int width = 0;        // columns available; 0 = unlimited
  bool is_tty = false;  // the fd is a terminal
};

// Colour is off when NO_COLOR is set (any value, even empty), TERM=dumb,
// `no_color_flag` (--no-color) is true, or `fd` is not a terminal (a pipe, a
// file, -1).
// Width: TIOCGWINSZ on `fd` when it is a terminal and reports a non-zero
// width, else $COLUMNS when it is a positive decimal number, else 0.
// Never fails: anything it cannot determine falls back to the safe value
// (no colour, unlimited width).
TerminalInfo DetectTerminal(int fd, bool no_color_flag);

}  // namespace sentinel
