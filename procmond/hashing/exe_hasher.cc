#include "procmond/hashing/exe_hasher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <functional>

#include "sentinel/base/files.h"
#include "sentinel/base/status.h"
#include "sentinel/crypto/sha256.h"

namespace sentinel::procmond {

namespace {

std::string ReasonForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ESRCH: return kHashSkipGone;
    case EACCES:
    case EPERM: return kHashSkipPermissionDenied;
    default: return kHashSkipIoError;
  }
}

int64_t Ns(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

ExeHasher::ExeHasher(uint64_t max_hash_bytes, size_t capacity)
    : max_hash_bytes_(max_hash_bytes), cache_(capacity) {}

size_t ExeHasher::KeyHash::operator()(const Key& k) const {
  size_t h = std::hash<uint64_t>()(static_cast<uint64_t>(k.ino));
  auto mix = [&h](uint64_t v) {
    h ^= std::hash<uint64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  };
  mix(static_cast<uint64_t>(k.dev));
  mix(static_cast<uint64_t>(k.size));
  mix(static_cast<uint64_t>(k.mtime_ns));
  mix(static_cast<uint64_t>(k.ctime_ns));
  return h;
}

ExeHasher::Key ExeHasher::KeyOf(const struct stat& st) {
  return Key{st.st_dev, st.st_ino, st.st_size, Ns(st.st_mtim), Ns(st.st_ctim)};
}

ExeHasher::Outcome ExeHasher::Hash(int dirfd, const char* path) {
  // stat() through the link first: on a hit the file is never opened.
  struct stat st {};
  if (::fstatat(dirfd, path, &st, 0) != 0) {
    int err = errno;
    return Skip(ReasonForErrno(err), ErrnoError(err, "stat").message());
  }
  if (!S_ISREG(st.st_mode)) return Skip(kHashSkipNotRegular, "not a regular file");
  if (auto hit = cache_.Lookup(KeyOf(st))) return *std::move(hit);
  if (static_cast<uint64_t>(st.st_size) > max_hash_bytes_) {
    // Not cached: the stat above already decides it without reading.
    return Skip(kHashSkipTooLarge,
                std::to_string(st.st_size) + " bytes > max_hash_bytes " + std::to_string(max_hash_bytes_));
  }

  // O_NOATIME (allowed to the file's owner and to CAP_FOWNER) keeps the
  // access time of a suspicious binary as it was, for whoever investigates.
  UniqueFd fd(::openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOATIME));
  if (fd.get() < 0 && errno == EPERM)
    fd = UniqueFd(::openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    int err = errno;
    std::string reason = ReasonForErrno(err);
    std::string detail = ErrnoError(err, "open").message();
    // The file exists (stat succeeded) but cannot be opened: remember that for
    // its key so the next process running it does not retry.
    if (reason == kHashSkipPermissionDenied) return cache_.RememberSkip(KeyOf(st), reason, detail);
    return Skip(std::move(reason), std::move(detail));
  }
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0) {
    int err = errno;
    return Skip(kHashSkipIoError, ErrnoError(err, "fstat").message());
  }
  // The opened file is what the key must describe (an exec may have swapped
  // the image between the stat and the open).
  if (!S_ISREG(before.st_mode)) {
    return Skip(kHashSkipNotRegular, "not a regular file");
  }
  if (static_cast<uint64_t>(before.st_size) > max_hash_bytes_) {
    return Skip(kHashSkipTooLarge, std::to_string(before.st_size) + " bytes > max_hash_bytes " +
                                       std::to_string(max_hash_bytes_));
  }
  auto digest = crypto::Sha256HexOfFd(fd.get(), max_hash_bytes_);
  struct stat after {};
  const bool stat_after_ok = ::fstat(fd.get(), &after) == 0;
  fd = UniqueFd();
  if (!digest.ok()) {
    if (digest.status().code() == StatusCode::kResourceExhausted) {
      return Skip(kHashSkipChanged, "grew past max_hash_bytes while hashing");
    }
    return Skip(kHashSkipIoError, digest.status().message());
  }
  if (!stat_after_ok || !(KeyOf(before) == KeyOf(after))) {
    // Written to while we read it: the digest matches no version of the file.
    return Skip(kHashSkipChanged, "file changed while hashing");
  }
  return cache_.Hashed(KeyOf(before), std::move(*digest));
}

}  // namespace sentinel::procmond
