// SHA-256 of executables with a cache keyed by file identity, so that a scan
// hashes each distinct executable once and a steady-state scan reads none.
//
// Hash() is given a path that resolves to the file to hash; on Linux it is
// /proc/PID/exe, a link the kernel resolves to the image the process runs
// even when that file was deleted, replaced or lives only in memory (memfd).
// The path is stat()ed first (following the link): a cache hit costs that
// one syscall and never opens or reads the file. Only a miss opens the file,
// and the entry is keyed by fstat() of the opened descriptor.
//
// Cache key: (st_dev, st_ino, st_size, st_mtime ns, st_ctime ns). ctime is in
// the key because mtime can be set back with utimensat() after an in-place
// rewrite of the same size; ctime cannot be forged without the system clock.
// The cache (hash_cache.h) is an LRU bounded by `capacity` entries. A file
// that could not be opened (EACCES on NFS root_squash, ...) is cached as a
// skip under its key so it is not retried for every process that runs it.
//
// Not thread-safe: owned by the collector thread.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "procmond/hashing/hash_cache.h"

namespace sentinel::procmond {

// Reasons a hash is skipped. Stable strings: they are stored in
// platform_data.hash_skipped and counted per scan.
inline constexpr const char* kHashSkipTooLarge = "too_large";                  // st_size > max_hash_bytes
inline constexpr const char* kHashSkipPermissionDenied = "permission_denied";  // EACCES/EPERM
inline constexpr const char* kHashSkipNotRegular = "not_regular_file";
inline constexpr const char* kHashSkipGone = "gone";         // ENOENT/ESRCH: the process exited
inline constexpr const char* kHashSkipIoError = "io_error";  // any other errno, or a read error
inline constexpr const char* kHashSkipChanged = "changed_while_hashing";
inline constexpr const char* kHashSkipDisabled = "disabled";  // collection.hash_executables=false

class ExeHasher {
 public:
  static constexpr size_t kDefaultCapacity = 4096;

  using Outcome = HashOutcome;
  using Counters = HashCacheCounters;

  // max_hash_bytes: files larger than this are skipped (kHashSkipTooLarge).
  // capacity: maximum number of cached files (>= 1).
  explicit ExeHasher(uint64_t max_hash_bytes, size_t capacity = kDefaultCapacity);
  ExeHasher(const ExeHasher&) = delete;
  ExeHasher& operator=(const ExeHasher&) = delete;

  // Hashes the file `path` resolves to, relative to dirfd (AT_FDCWD or an
  // open directory, e.g. /proc). Never fails: a problem is an Outcome with
  // `skipped` set.
  Outcome Hash(int dirfd, const char* path);

  const Counters& counters() const { return cache_.counters(); }
  void ResetCounters() { cache_.ResetCounters(); }
  size_t cache_size() const { return cache_.size(); }
  uint64_t max_hash_bytes() const { return max_hash_bytes_; }

 private:
  struct Key {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  static Key KeyOf(const struct stat& st);
  Outcome Skip(std::string reason, std::string detail) {
    return cache_.Skip(std::move(reason), std::move(detail));
  }

  uint64_t max_hash_bytes_;
  HashCache<Key, KeyHash> cache_;
};

}  // namespace sentinel::procmond
