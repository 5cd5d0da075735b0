// The progress line of a long sentinelcli command (export, audit verify,
// rules import, query): how many items are done, the rate and, when the total
// is known, the share done and the time left, e.g.
//   verifying audit ledger: 12,288/50,000 entries (24%), 41,000/s, 0:01 left
//   query: 120,000 rows, 65,000/s
// drawn on a terminal (sentinelcli passes stderr) and redrawn in place with a
// carriage return at most every redraw_ms; Finish() blanks the line and puts
// the cursor back at its start, so nothing of it stays on screen or mixes
// with what is printed after it. It never writes an escape sequence (a dumb
// terminal shows it as well) and it writes nothing at all when its fd is not
// a terminal: pipes, files and JSON consumers never see it.
//
// The label and unit are the caller's own words (never attacker text); they
// are escaped anyway. The line is cut to the terminal's width, so it never
// wraps (a wrapped line cannot be redrawn in place).
//
// Not thread-safe: one owner thread. Write errors are ignored (a progress
// line is not worth failing a command for).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sentinel/base/time.h"

namespace sentinel::cli {

class Progress {
 public:
  struct Options {
    int fd = -1;                   // where to draw; silent unless a terminal
    std::string label;             // "verifying audit ledger"
    std::string unit;              // "entries"
    std::optional<int64_t> total;  // items expected, when known
    int64_t redraw_ms = 250;       // at most 4 redraws a second
    const Clock* clock = nullptr;  // null: Clock::Real()
    int width = 0;                 // columns; 0: the terminal's (80 when it does not say)
  };

  explicit Progress(Options options);
  ~Progress();  // Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Whether anything is drawn (the fd is a terminal).
  bool active() const { return active_; }

  void SetTotal(int64_t total) { options_.total = total; }
  // `done` items so far. The first call draws at once, later ones when
  // redraw_ms have passed since the last drawing.
  void Update(int64_t done);
  // Blanks the line (if anything was drawn); later Updates draw nothing.
  // Idempotent.
  void Finish();

  // The text of the line for `done` items after `elapsed_ms` (no carriage
  // return, not cut to a width). Pure; for tests.
  static std::string Render(const std::string& label, const std::string& unit, int64_t done,
                            std::optional<int64_t> total, int64_t elapsed_ms);

 private:
  void Draw(const std::string& line);

  Options options_;
  const Clock& clock_;
  bool active_ = false;
  int width_ = 0;
  int64_t started_ms_ = 0;
  std::optional<int64_t> drawn_ms_;  // when the line was last drawn
  size_t drawn_len_ = 0;             // length of the line on screen
};

}  // namespace sentinel::cli
