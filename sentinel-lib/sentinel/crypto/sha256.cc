#include "sentinel/crypto/sha256.h"

#include <unistd.h>

#include <cerrno>
#include <vector>

#include "sentinel/base/hex.h"

namespace sentinel::crypto {

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data.data(), data.size());
  return ToHex(h.Finish());
}

Result<std::string> Sha256HexOfFd(int fd, uint64_t max_bytes) {
  Sha256 h;
  std::vector<uint8_t> buf(1 << 16);
  uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read");
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {
      return ResourceExhaustedError("file larger than max_hash_bytes (" + std::to_string(max_bytes) + ")");
    }
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  return ToHex(h.Finish());
}

}  // namespace sentinel::crypto
