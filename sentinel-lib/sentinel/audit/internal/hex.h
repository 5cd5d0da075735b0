// Strict lowercase-hex decoding for the ledger's stored digests and
// signatures. Private to sentinel/audit. Pure, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sentinel::audit::internal {

// Decodes exactly 2*len lowercase hex characters into out[0..len). Anything
// else (wrong length, uppercase, other characters) is rejected: the ledger
// writes one spelling only, so another spelling is itself a change.
inline bool ParseLowerHex(std::string_view hex, uint8_t* out, size_t len) {
  if (hex.size() != 2 * len) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < len; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace sentinel::audit::internal
