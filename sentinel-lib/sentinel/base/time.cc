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
#ifdef _WIN32
  gmtime_s(&tm, &t);
#else
  gmtime_r(&t, &tm);
#endif
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

// A position in the text being parsed.
struct Cursor {
  std::string_view s;
  size_t p = 0;
  bool AtEnd() const { return p >= s.size(); }
  bool Take(char c) { return TakeAny(std::string_view(&c, 1)); }
  // Takes the next character if it is one of `set`; the character or 0.
  char TakeAny(std::string_view set) {
    if (AtEnd() || set.find(s[p]) == std::string_view::npos) return 0;
    return s[p++];
  }
  bool Digits(size_t count, int& out) { return ReadDigits(s, p, count, out); }
};

struct CivilTime {
  int year = 0, mon = 0, day = 0, hh = 0, mm = 0, ss = 0, ms = 0;
  int64_t offset_min = 0;
};

// YYYY-MM-DD.
bool ParseDate(Cursor& c, CivilTime& t) {
  return c.Digits(4, t.year) && c.Take('-') && c.Digits(2, t.mon) && c.Take('-') && c.Digits(2, t.day) &&
         t.mon >= 1 && t.mon <= 12 && t.day >= 1 && t.day <= 31;
}

// After the '.' or ',': one or more digits, the first three of them milliseconds.
bool ParseFraction(Cursor& c, int& ms) {
  int digits = 0;
  int frac = 0;
  for (; !c.AtEnd() && c.s[c.p] >= '0' && c.s[c.p] <= '9'; ++c.p, ++digits) {
    if (digits < 3) frac = frac * 10 + (c.s[c.p] - '0');
  }
  for (int d = digits; d < 3; ++d) frac *= 10;
  ms = frac;
  return digits > 0;
}

// hh:mm[:ss[.fff]].
bool ParseClock(Cursor& c, CivilTime& t) {
  if (!c.Digits(2, t.hh) || !c.Take(':') || !c.Digits(2, t.mm)) return false;
  if (c.Take(':')) {
    if (!c.Digits(2, t.ss)) return false;
    if (c.TakeAny(".,") && !ParseFraction(c, t.ms)) return false;
  }
  return t.hh <= 23 && t.mm <= 59 && t.ss <= 60;
}

// Nothing (UTC), Z, or +hh[[:]mm] / -hh[[:]mm].
bool ParseZone(Cursor& c, int64_t& offset_min) {
  if (c.AtEnd() || c.TakeAny("Zz")) return true;
  const char sign = c.TakeAny("+-");
  if (sign == 0) return false;
  int oh = 0, om = 0;
  if (!c.Digits(2, oh)) return false;
  c.Take(':');
  if (!c.AtEnd() && !c.Digits(2, om)) return false;
  offset_min = (sign == '-' ? -1 : 1) * (oh * 60 + om);
  return true;
}

Result<int64_t> ParseIso8601(std::string_view s) {
  Cursor c{s};
  CivilTime t;
  bool ok = ParseDate(c, t);
  if (ok && !c.AtEnd()) ok = c.TakeAny("T t") && ParseClock(c, t) && ParseZone(c, t.offset_min) && c.AtEnd();
  if (!ok) {
    return InvalidArgumentError(
        "expected ISO-8601 time (2026-11-28T10:00:00Z) or a relative time (15m, 2h, 7d), got " +
        QuoteForMessage(s));
  }
  const int64_t days = DaysFromCivil(t.year, static_cast<unsigned>(t.mon), static_cast<unsigned>(t.day));
  const int64_t secs = days * 86400 + t.hh * 3600 + t.mm * 60 + t.ss - t.offset_min * 60;
  return secs * 1000 + t.ms;
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
