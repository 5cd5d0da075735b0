#include "sentinelcli/output/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "sentinel/base/escape.h"
#include "sentinel/base/terminal.h"

namespace sentinel::cli {
namespace {

constexpr int kDefaultWidth = 80;

// 1234567 -> "1,234,567".
std::string Grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// Seconds as m:ss, or h:mm:ss from an hour on.
std::string Duration(int64_t secs) {
  auto two = [](int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  if (secs >= 3600) return std::to_string(secs / 3600) + ":" + two(secs / 60 % 60) + ":" + two(secs % 60);
  return std::to_string(secs / 60) + ":" + two(secs % 60);
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

Progress::Progress(Options options)
    : options_(std::move(options)), clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {
  const TerminalInfo term = DetectTerminal(options_.fd, /*no_color_flag=*/true);
  active_ = term.is_tty;
  width_ = options_.width > 0 ? options_.width : (term.width > 0 ? term.width : kDefaultWidth);
  started_ms_ = clock_.MonotonicMs();
}

Progress::~Progress() {
  Finish();
}

std::string Progress::Render(const std::string& label, const std::string& unit, int64_t done,
                             std::optional<int64_t> total, int64_t elapsed_ms) {
  std::string line = EscapeText(label) + ": " + Grouped(done);
  // A total the count has passed was an estimate: drop it rather than show 104 %.
  const bool known = total && *total > 0 && done <= *total;
  if (known) line += "/" + Grouped(*total);
  line += " " + EscapeText(unit);
  if (known) line += " (" + std::to_string(done * 100 / *total) + "%)";
  if (elapsed_ms > 0 && done > 0) {
    const int64_t rate = done * 1000 / elapsed_ms;
    line += ", " + Grouped(rate) + "/s";
    if (known && rate > 0) line += ", " + Duration((*total - done + rate - 1) / rate) + " left";
  }
  return line;
}

void Progress::Update(int64_t done) {
  if (!active_) return;
  const int64_t now = clock_.MonotonicMs();
  if (drawn_ms_ && now - *drawn_ms_ < options_.redraw_ms) return;
  drawn_ms_ = now;
  Draw(Render(options_.label, options_.unit, done, options_.total, now - started_ms_));
}

void Progress::Draw(const std::string& text) {
  // One column is left free: a line that fills the last column wraps on some terminals.
  std::string line = text.substr(0, static_cast<size_t>(std::max(1, width_ - 1)));
  const size_t len = line.size();
  // Blank what a longer previous line left behind.
  if (len < drawn_len_) line.append(drawn_len_ - len, ' ');
  WriteAll(options_.fd, "\r" + line);
  drawn_len_ = std::max(len, drawn_len_);
}

void Progress::Finish() {
  if (!active_) return;
  active_ = false;
  if (drawn_len_ == 0) return;
  WriteAll(options_.fd, "\r" + std::string(drawn_len_, ' ') + "\r");
  drawn_len_ = 0;
}

}  // namespace sentinel::cli
