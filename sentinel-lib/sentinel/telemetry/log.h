// Structured logging shared by every SentinelD binary.
//
// One event per line on stderr (or any fd), either JSON
//   {"ts":"2026-11-28T13:48:16.123Z","level":"info","component":"procmond","msg":"scan written","scan_id":4}
// or text
//   2026-11-28T13:48:16.123Z INFO  procmond: scan written scan_id=4
//
// The logger is process-global. Configure it once early in main() with
// InitLogging(); Log() may then be called from any thread (a mutex keeps lines
// whole). Messages and field values are attacker-influenced at times (process
// names), so text output escapes control characters and JSON output is always
// valid UTF-8.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"

namespace sentinel::telemetry {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };
enum class LogFormat { kJson, kText };

Result<LogLevel> ParseLogLevel(std::string_view name);
Result<LogFormat> ParseLogFormat(std::string_view name);
std::string_view LogLevelName(LogLevel level);

// Sets component name, threshold, format and destination fd (default 2).
void InitLogging(std::string component, LogLevel level, LogFormat format, int fd = 2);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Writes one event. `fields` must be a JSON object (or null for none).
void Log(LogLevel level, std::string_view msg, const nlohmann::json& fields = nullptr);

inline void LogDebug(std::string_view m, const nlohmann::json& f = nullptr) {
  Log(LogLevel::kDebug, m, f);
}
inline void LogInfo(std::string_view m, const nlohmann::json& f = nullptr) {
  Log(LogLevel::kInfo, m, f);
}
inline void LogWarn(std::string_view m, const nlohmann::json& f = nullptr) {
  Log(LogLevel::kWarn, m, f);
}
inline void LogError(std::string_view m, const nlohmann::json& f = nullptr) {
  Log(LogLevel::kError, m, f);
}

// Renders one line without writing it (used by Log and by tests).
std::string FormatLogLine(int64_t ts_ms, LogLevel level, std::string_view component, std::string_view msg,
                          const nlohmann::json& fields, LogFormat format);

}  // namespace sentinel::telemetry
