// Hex, the one codec of the tree: bytes as lowercase hex digits and back,
// and the hex pieces the escapers write (\xNN, the digits of \uXXXX). Pure
// functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sentinel {

// Lowercase hex, two digits per byte.
std::string ToHex(std::span<const uint8_t> bytes);
std::string ToHex(std::string_view bytes);
void AppendHex(std::string& out, std::string_view bytes);

// Hex digits of either case back to bytes; nullopt for an odd length or any
// other character.
std::optional<std::vector<uint8_t>> FromHex(std::string_view hex);

// Strict: exactly 2 * out.size() lowercase digits into `out`. Anything else
// (wrong length, uppercase, other characters) is false, for stored values of
// which one spelling only is written, so another spelling is itself a change.
bool FromLowerHex(std::string_view hex, std::span<uint8_t> out);

// The `digits` lowest nibbles of `value`, most significant first, lowercase
// (the XXXX of "\uXXXX").
void AppendHexDigits(std::string& out, uint32_t value, int digits);

// One byte escaped as "\xNN" (lowercase).
void AppendHexByteEscape(std::string& out, uint8_t byte);

}  // namespace sentinel
