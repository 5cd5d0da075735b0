#include "sentinel/base/hex.h"

namespace sentinel {
namespace {

constexpr char kDigits[] = "0123456789abcdef";

// The value of one hex digit, or -1; uppercase only when `any_case`.
int Nibble(char c, bool any_case) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (any_case && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes hex (2 * out.size() digits) into out; false at the first non-digit.
bool Decode(std::string_view hex, std::span<uint8_t> out, bool any_case) {
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = Nibble(hex[2 * i], any_case);
    const int lo = Nibble(hex[2 * i + 1], any_case);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

void AppendByte(std::string& out, uint8_t b) {
  out += kDigits[b >> 4];
  out += kDigits[b & 0xF];
}

}  // namespace

std::string ToHex(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve(2 * bytes.size());
  for (uint8_t b : bytes) AppendByte(out, b);
  return out;
}

std::string ToHex(std::string_view bytes) {
  std::string out;
  AppendHex(out, bytes);
  return out;
}

void AppendHex(std::string& out, std::string_view bytes) {
  out.reserve(out.size() + 2 * bytes.size());
  for (char c : bytes) AppendByte(out, static_cast<uint8_t>(c));
}

std::optional<std::vector<uint8_t>> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::vector<uint8_t> out(hex.size() / 2);
  if (!Decode(hex, out, /*any_case=*/true)) return std::nullopt;
  return out;
}

bool FromLowerHex(std::string_view hex, std::span<uint8_t> out) {
  return hex.size() == 2 * out.size() && Decode(hex, out, /*any_case=*/false);
}

void AppendHexDigits(std::string& out, uint32_t value, int digits) {
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += kDigits[(value >> shift) & 0xF];
}

void AppendHexByteEscape(std::string& out, uint8_t byte) {
  out += "\\x";
  AppendByte(out, byte);
}

}  // namespace sentinel
