// SHA-256 of process image files on Windows, with a cache keyed by file
// identity so that a scan hashes each distinct image once and a steady-state
// scan reads no file content at all. The Windows counterpart of
// procmond/hashing/exe_hasher.h, with the same cache rule and the same skip
// reasons (kHashSkip*, stored in platform_data.hash_skipped).
//
// Hash() is given the image path (QueryFullProcessImageNameW). The file is
// opened for its attributes only (FILE_READ_ATTRIBUTES; sharing read, write
// and delete so a running program or an installer is never blocked) and its
// identity read through that handle:
//   (volume serial number, file id, size, last-write time, change time)
// The file id is the 128-bit FILE_ID_INFO id where the file system reports
// one (ReFS), else the 64-bit file index. ChangeTime (FileBasicInfo) is in the
// key for the reason ctime is on Linux: last-write time can be set back with
// SetFileTime after an in-place rewrite of the same size; ChangeTime cannot
// be set from user mode.
// A cache hit costs that open and three queries and reads nothing. A miss
// reopens the same file (ReOpenFile, so a rename between the two opens
// cannot swap it) for reading, hashes it with crypto::Sha256 (CNG) and keys
// the entry by the identity of the read handle taken before reading; if the
// identity differs after reading the hash is discarded
// (kHashSkipChanged). A file that exists but may not be read is cached as a
// skip under its key, so every process running it does not retry (the cache:
// procmond/hashing/hash_cache.h, shared with Linux).
//
// What this cannot see (real Windows only): the file at the image path may no
// longer be the mapped image (a renamed-over image, process ghosting or
// herpaderping). The hash is of the file at the path now.
//
// Every call ends in exactly one of: a hit, a miss (the file was read and
// hashed) or a skip with a reason, and is counted as such. Never fails.
//
// Not thread-safe: owned by the collector thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "procmond/hashing/exe_hasher.h"  // kHashSkip*: one set of stored strings
#include "procmond/hashing/hash_cache.h"

namespace sentinel::procmond {

class WindowsExeHasher {
 public:
  static constexpr size_t kDefaultCapacity = 4096;

  using Outcome = HashOutcome;
  using Counters = HashCacheCounters;

  // max_hash_bytes: files larger than this are skipped (kHashSkipTooLarge).
  // capacity: maximum number of cached files (0 is taken as 1).
  explicit WindowsExeHasher(uint64_t max_hash_bytes, size_t capacity = kDefaultCapacity);
  WindowsExeHasher(const WindowsExeHasher&) = delete;
  WindowsExeHasher& operator=(const WindowsExeHasher&) = delete;

  // Hashes the file at `path` (a Win32 path, UTF-16; paths of MAX_PATH or
  // more are opened with the \\?\ prefix). Never fails: a problem is an
  // Outcome with `skipped` set.
  Outcome Hash(const std::wstring& path);

  const Counters& counters() const { return cache_.counters(); }
  void ResetCounters() { cache_.ResetCounters(); }
  size_t cache_size() const { return cache_.size(); }
  uint64_t max_hash_bytes() const { return max_hash_bytes_; }
  // A reload's new limit: cached hashes stay valid (a file's hash does not
  // depend on the limit); files over it are skipped from the next call.
  void set_max_hash_bytes(uint64_t max_hash_bytes) { max_hash_bytes_ = max_hash_bytes; }

  // The identity of an open file: the cache key.
  struct Key {
    uint64_t volume = 0;
    uint64_t id_high = 0;  // 0 for a 64-bit file index
    uint64_t id_low = 0;
    uint64_t size = 0;
    int64_t write_time = 0;   // FILETIME, 100 ns
    int64_t change_time = 0;  // FILETIME, 100 ns
    bool operator==(const Key&) const = default;
  };

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  Outcome Skip(std::string reason, std::string detail) {
    return cache_.Skip(std::move(reason), std::move(detail));
  }
  // Reads the file behind `attr_handle` (a void* HANDLE, kept out of this
  // header) and caches the result under the read handle's identity.
  Outcome HashMiss(void* attr_handle, const Key& key);

  uint64_t max_hash_bytes_;
  HashCache<Key, KeyHash> cache_;
};

}  // namespace sentinel::procmond
