// What sentinelcli knows about the terminal it writes to: whether colour is
// allowed and how wide a table may be (SPEC §9).
//
// Thread-safety: DetectTerminal reads the environment (getenv) and must not
// race with setenv/unsetenv; call it once from main before starting threads.
#pragma once

namespace sentinel::cli {

struct TerminalInfo {
  bool color = false;   // ANSI SGR escape codes allowed in table output
  int width = 0;        // columns available to a table; 0 = unlimited
  bool is_tty = false;  // the fd is a terminal
};

// Decides colour per SPEC §9: colour is off when NO_COLOR is set (any value,
// even empty), TERM=dumb, `no_color_flag` (--no-color) is true, or `fd` is not
// a terminal.
// Width: TIOCGWINSZ on `fd` when it is a terminal and reports a non-zero
// width, else $COLUMNS when it is a positive decimal number, else 0.
// Never fails: anything it cannot determine falls back to the safe value
// (no colour, unlimited width).
TerminalInfo DetectTerminal(int fd, bool no_color_flag);

}  // namespace sentinel::cli
