// Small string helpers shared by every module. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sentinel {

// Splits on every occurrence of `sep` (empty pieces kept).
std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view Trim(std::string_view s);
std::string ToLower(std::string_view s);
std::string ToUpper(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);

// Strict decimal parsing: the whole string must be a number, no sign
// surprises, no overflow. Returns nullopt otherwise.
std::optional<int64_t> ParseInt64(std::string_view s);
std::optional<double> ParseDouble(std::string_view s);

// Replaces invalid UTF-8 sequences with U+FFFD so the text is safe to put
// in JSON; valid input is returned unchanged.
std::string SanitizeUtf8(std::string_view s);
bool IsValidUtf8(std::string_view s);

// Quotes a value for a human-readable message: "fast" with control
// characters escaped, truncated at 80 characters.
std::string QuoteForMessage(std::string_view s);

}  // namespace sentinel
