// SHA-256: OpenSSL's libcrypto on Linux (hardware-accelerated where the CPU
// has SHA extensions, sha256_openssl.cc), CNG on Windows (sha256_cng.cc).
// Used for executable hashes and configuration hashes.
//
// Sha256 is a streaming hasher owned by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sentinel/base/status.h"

namespace sentinel::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t len);
  Sha256Digest Finish();  // resets the hasher for reuse

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);

// Hashes an open file descriptor from its current offset to EOF, reading at
// most max_bytes (ResourceExhausted beyond). Retries EINTR.
Result<std::string> Sha256HexOfFd(int fd, uint64_t max_bytes);

}  // namespace sentinel::crypto
