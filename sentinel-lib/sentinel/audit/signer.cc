#include "sentinel/audit/signer.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "sentinel/base/files.h"
#include "sentinel/base/hex.h"

namespace sentinel::audit {
namespace {

static_assert(crypto_sign_PUBLICKEYBYTES == kPublicKeyLen);
static_assert(crypto_sign_BYTES == kSignatureLen);
static_assert(crypto_sign_SEEDBYTES == kSeedLen);
static_assert(crypto_sign_SECRETKEYBYTES == 64);

Status InitSodium() {
  // Idempotent and thread-safe; returns 1 when already initialised.
  if (sodium_init() < 0) return InternalError("libsodium could not be initialised");
  return Status::Ok();
}

std::string ModeString(mode_t mode) {
  char buf[8];
  (void)std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Reads at most `cap` bytes from fd.
Result<std::string> ReadSmall(int fd, size_t cap, const std::string& path) {
  std::string out;
  char buf[256];
  while (out.size() <= cap) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "reading " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Signer>> Signer::FromSeed(const std::array<uint8_t, kSeedLen>& seed) {
  RETURN_IF_ERROR(InitSodium());
  std::unique_ptr<Signer> s(new Signer());
  if (crypto_sign_seed_keypair(s->public_key_.data(), s->secret_key_.data(), seed.data()) != 0) {
    return InternalError("deriving the Ed25519 key pair failed");
  }
  return s;
}

Result<std::unique_ptr<Signer>> Signer::LoadPrivateKeyFile(const std::string& path) {
  RETURN_IF_ERROR(InitSodium());
  // O_NOFOLLOW: a symlink planted in place of the key is refused, not followed.
  // O_NONBLOCK: a FIFO planted there must not hang the open (refused below).
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ELOOP) return RefusedPathError(path, "the audit signing key is a symbolic link");
    if (errno == ENOENT) return NotFoundError(path + ": audit signing key not found");
    return ErrnoError(errno, "opening audit signing key " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat " + path);
  // Checked on the open descriptor, so the file cannot be swapped in between.
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgumentError(path + ": audit signing key is not a regular file");
  }
  if (st.st_uid != ::geteuid()) {
    return PermissionDeniedError(path + ": audit signing key is owned by uid " + std::to_string(st.st_uid) +
                                 ", not by the current user (uid " + std::to_string(::geteuid()) +
                                 "); refusing to use it");
  }
  if ((st.st_mode & 077) != 0) {
    return PermissionDeniedError(path + ": audit signing key has mode " + ModeString(st.st_mode) +
                                 " (accessible by group or others); refusing to use it — run chmod 600 " +
                                 path);
  }
  auto content = ReadSmall(fd.get(), 256, path);
  if (!content.ok()) return content.status();
  std::string& text = *content;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  std::array<uint8_t, kSeedLen> seed{};
  const bool parsed = FromLowerHex(text, seed);
  sodium_memzero(text.data(), text.size());
  if (!parsed) {
    return InvalidArgumentError(path + ": not an audit signing key (expected 64 lowercase hex characters)");
  }
  auto signer = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return signer;
}

Signer::~Signer() {
  sodium_memzero(secret_key_.data(), secret_key_.size());
}

Signature Signer::Sign(const crypto::Blake3Digest& entry_hash) const {
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, entry_hash.data(), entry_hash.size(), secret_key_.data());
  return sig;
}

std::string Signer::PublicKeyHex() const {
  return ToHex(public_key_);
}

Result<std::string> GenerateSigningKeyFile(const std::string& path) {
  RETURN_IF_ERROR(InitSodium());
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
  if (fd.get() < 0) {
    if (errno == EEXIST)
      return AlreadyExistsError(path + ": already exists; refusing to overwrite a signing key");
    return ErrnoError(errno, "creating audit signing key " + path);
  }
  auto fail = [&](Status s) -> Status {
    fd = UniqueFd();
    ::unlink(path.c_str());
    return s;
  };
  // The umask can only have removed bits; make sure no others were left.
  if (::fchmod(fd.get(), 0600) != 0) return fail(ErrnoError(errno, "chmod " + path));
  std::array<uint8_t, kSeedLen> seed{};
  randombytes_buf(seed.data(), seed.size());
  std::string text = ToHex(seed) + "\n";
  auto signer = Signer::FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      sodium_memzero(text.data(), text.size());
      return fail(ErrnoError(errno, "writing " + path));
    }
    off += static_cast<size_t>(n);
  }
  sodium_memzero(text.data(), text.size());
  if (::fsync(fd.get()) != 0) return fail(ErrnoError(errno, "fsync " + path));
  // Closed by hand: an error of the last close is an error of the write.
  if (::close(fd.release()) != 0) {
    ::unlink(path.c_str());
    return ErrnoError(errno, "closing " + path);
  }
  if (!signer.ok()) {
    ::unlink(path.c_str());
    return signer.status();
  }
  return (*signer)->PublicKeyHex();
}

}  // namespace sentinel::audit
