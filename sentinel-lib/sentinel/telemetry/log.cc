#include "sentinel/telemetry/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"

namespace sentinel::telemetry {
namespace {

struct LoggerState {
  std::mutex mu;
  std::string component = "sentinel";
  LogFormat format = LogFormat::kJson;
  int fd = 2;
};

LoggerState& State() {
  static LoggerState* state = new LoggerState();  // never destroyed: usable during exit
  return *state;
}

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

// Text rendering of a value: strings bare but through the one output escaper
// (base/escape.h: C0, DEL, C1, NEL, U+2028/9, bidi controls, invalid UTF-8),
// other values as JSON with the same code points \u-escaped.
std::string TextValue(const nlohmann::json& v) {
  if (v.is_string()) return EscapeText(v.get_ref<const std::string&>());
  return HardenJsonText(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

Result<LogLevel> ParseLogLevel(std::string_view name) {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"trace", LogLevel::kTrace},       {"debug", LogLevel::kDebug},  {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},         {"warning", LogLevel::kWarn}, {"error", LogLevel::kError},
      {"critical", LogLevel::kCritical}, {"off", LogLevel::kOff}};
  for (auto& [n, l] : kNames)
    if (n == name) return l;
  return InvalidArgumentError("unknown log level " + QuoteForMessage(name) +
                              " (expected trace, debug, info, warn, error, critical or off)");
}

Result<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "json") return LogFormat::kJson;
  if (name == "text") return LogFormat::kText;
  return InvalidArgumentError("unknown log format " + QuoteForMessage(name) + " (expected json or text)");
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kCritical: return "critical";
    case LogLevel::kOff: return "off";
  }
  return "?";
}

void InitLogging(std::string component, LogLevel level, LogFormat format, int fd) {
  auto& s = State();
  std::lock_guard lock(s.mu);
  s.component = std::move(component);
  s.format = format;
  s.fd = fd;
  g_level.store(static_cast<int>(level));
}

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level));
}

bool LogEnabled(LogLevel level) {
  return level != LogLevel::kOff && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::string FormatLogLine(int64_t ts_ms, LogLevel level, std::string_view component, std::string_view msg,
                          const nlohmann::json& fields, LogFormat format) {
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json line;
    line["ts"] = FormatIso8601Ms(ts_ms);
    line["level"] = LogLevelName(level);
    line["component"] = std::string(component);
    line["msg"] = SanitizeUtf8(msg);
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        if (it.key() == "ts" || it.key() == "level" || it.key() == "component" || it.key() == "msg") {
          line["field_" + it.key()] = it.value();
        } else {
          line[it.key()] = it.value();
        }
      }
    }
    // JSON-lines readers are safe with dump()'s escaping; terminals and
    // line-splitting readers also need C1, U+2028/9 and bidi controls escaped.
    return HardenJsonText(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) + "\n";
  }
  std::string out = FormatIso8601Ms(ts_ms);
  out += ' ';
  std::string lvl = ToLower(LogLevelName(level));
  for (char& c : lvl) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  lvl.resize(5, ' ');
  out += lvl;
  out += ' ';
  out += component;
  out += ": ";
  out += EscapeText(msg);
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      out += ' ';
      out += it.key();
      out += '=';
      out += TextValue(it.value());
    }
  }
  out += '\n';
  return out;
}

void Log(LogLevel level, std::string_view msg, const nlohmann::json& fields) {
  if (!LogEnabled(level)) return;
  auto& s = State();
  std::lock_guard lock(s.mu);
  std::string line = FormatLogLine(NowMs(), level, s.component, msg, fields, s.format);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(s.fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a failing log sink
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace sentinel::telemetry
