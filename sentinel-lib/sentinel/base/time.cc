#include "sentinel/base/time.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <string>

#include "sentinel/base/strings.h"

namespace sentinel {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t MonotonicMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::string FormatIso8601Ms(int64_t epoch_ms) {
  int64_t secs = epoch_ms >= 0 ? epoch_ms / 1000 : (epoch_ms - 999) / 1000;
  int ms = static_cast<int>(epoch_ms - secs * 1000);
  time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

Result<int64_t> ParseDurationMs(std::string_view s) {
  s = Trim(s);
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) {
    return InvalidArgumentError("expected a duration like 15m, 2h or 7d, got " + QuoteForMessage(s));
  }
  const int64_t n = *ParseInt64(s.substr(0, digits));  // at most 12 digits: fits
  std::string_view unit = s.substr(digits);
  int64_t mult = 0;
  if (unit == "ms")
    mult = 1;
  else if (unit == "s")
    mult = 1000;
  else if (unit == "m")
    mult = 60'000;
  else if (unit == "h")
    mult = 3'600'000;
  else if (unit == "d")
    mult = 86'400'000;
  else if (unit == "w")
    mult = 7 * 86'400'000LL;
  else
    return InvalidArgumentError("expected a duration like 15m, 2h or 7d, got " + QuoteForMessage(s));
  // 12 digits of days or weeks do not fit in int64 milliseconds.
  int64_t ms = 0;
  if (__builtin_mul_overflow(n, mult, &ms)) {
    return InvalidArgumentError("expected a duration of at most " +
                                std::to_string(std::numeric_limits<int64_t>::max() / mult) +
                                std::string(unit) + ", got " + QuoteForMessage(s));
  }
  return ms;
}

namespace {
// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool ReadDigits(std::string_view s, size_t& pos, size_t count, int& out) {
  if (pos + count > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += count;
  return true;
}

Result<int64_t> ParseIso8601(std::string_view s) {
  auto bad = [&] {
    return InvalidArgumentError(
        "expected ISO-8601 time (2026-11-28T10:00:00Z) or a relative time (15m, 2h, 7d), got " +
        QuoteForMessage(s));
  };
  size_t p = 0;
  int year, mon, day, hh = 0, mm = 0, ss = 0, ms = 0;
  if (!ReadDigits(s, p, 4, year) || p >= s.size() || s[p++] != '-' || !ReadDigits(s, p, 2, mon) ||
      p >= s.size() || s[p++] != '-' || !ReadDigits(s, p, 2, day))
    return bad();
  if (mon < 1 || mon > 12 || day < 1 || day > 31) return bad();
  int64_t offset_min = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != ' ' && s[p] != 't') return bad();
    ++p;
    if (!ReadDigits(s, p, 2, hh) || p >= s.size() || s[p++] != ':' || !ReadDigits(s, p, 2, mm)) return bad();
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!ReadDigits(s, p, 2, ss)) return bad();
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        ++p;
        int digits = 0;
        int frac = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          if (digits < 3) frac = frac * 10 + (s[p] - '0');
          ++digits;
          ++p;
        }
        if (digits == 0) return bad();
        for (int d = digits; d < 3; ++d) frac *= 10;
        ms = frac;
      }
    }
    if (hh > 23 || mm > 59 || ss > 60) return bad();
    if (p < s.size()) {
      if (s[p] == 'Z' || s[p] == 'z') {
        ++p;
      } else if (s[p] == '+' || s[p] == '-') {
        int sign = s[p] == '-' ? -1 : 1;
        ++p;
        int oh, om = 0;
        if (!ReadDigits(s, p, 2, oh)) return bad();
        if (p < s.size() && s[p] == ':') ++p;
        if (p < s.size() && !ReadDigits(s, p, 2, om)) return bad();
        offset_min = sign * (oh * 60 + om);
      } else {
        return bad();
      }
    }
    if (p != s.size()) return bad();
  }
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(mon), static_cast<unsigned>(day));
  int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_min * 60;
  return secs * 1000 + ms;
}
}  // namespace

Result<int64_t> ParseTimePoint(std::string_view s, int64_t now_ms) {
  s = Trim(s);
  if (s.empty()) return InvalidArgumentError("expected a time, got an empty string");
  if (auto n = ParseInt64(s); n && s.size() > 8) return *n;  // epoch milliseconds
  if (s.size() >= 10 && s[4] == '-') return ParseIso8601(s);
  auto d = ParseDurationMs(s);
  if (d.ok()) {
    int64_t at = 0;
    if (__builtin_sub_overflow(now_ms, *d, &at)) {
      return InvalidArgumentError("relative time " + QuoteForMessage(s) +
                                  " reaches before the earliest time");
    }
    return at;
  }
  if (d.status().message().starts_with("expected a duration of at most")) return d.status();
  return InvalidArgumentError(
      "expected ISO-8601 time (2026-11-28T10:00:00Z), a relative time (15m, 2h, 7d) or epoch ms, got " +
      QuoteForMessage(s));
}

namespace {
class RealClock final : public Clock {
 public:
  int64_t NowMs() const override { return sentinel::NowMs(); }
  int64_t MonotonicMs() const override { return sentinel::MonotonicMs(); }

  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_mono_ms,
                 const std::function<bool()>& done) const override {
    // MonotonicMs() is steady_clock time; waits are cut into days so a far
    // deadline (INT64_MAX: "none") cannot overflow the clock's duration type.
    constexpr int64_t kLongestWaitMs = 24LL * 3600 * 1000;
    while (!done()) {
      const int64_t left = deadline_mono_ms - sentinel::MonotonicMs();
      if (left <= 0) return false;
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(std::min(left, kLongestWaitMs));
      cv.wait_until(lock, until, done);
    }
    return true;
  }
};
}  // namespace

const Clock& Clock::Real() {
  static const RealClock clock;
  return clock;
}

}  // namespace sentinel
