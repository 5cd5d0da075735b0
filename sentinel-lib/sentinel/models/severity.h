// The severity of a rule and of the alerts it raises (SPEC §6): a value type
// shared by detection (rule files), the alert store, the sinks and the CLI.
#pragma once

#include <optional>
#include <string_view>

namespace sentinel::models {

enum class Severity { kLow = 0, kMedium = 1, kHigh = 2, kCritical = 3 };

// "low", "medium", "high", "critical".
std::string_view SeverityName(Severity s);
// The severity of one of those names; nullopt for any other text.
std::optional<Severity> ParseSeverity(std::string_view name);

}  // namespace sentinel::models
