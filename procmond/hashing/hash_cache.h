// The cache rule both platforms' executable hashers share (ExeHasher on
// Linux, WindowsExeHasher): a file's SHA-256 is reused while its identity
// (the platform's Key: device or volume, inode or file id, size, modification
// and change times) is unchanged. A file that exists but may not be read is
// remembered as a skip under its key, so every process running it does not
// retry. At most `capacity` files; the least recently used goes first.
//
// Every Hash() of a hasher ends in exactly one of: a hit, a miss (the file
// was read and hashed) or a skip with a reason, and is counted here as such.
//
// Not thread-safe: owned by the collector thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace sentinel::procmond {

// What a hasher says of one file.
struct HashOutcome {
  std::optional<std::string> sha256;  // lowercase hex; set iff not skipped
  std::string skipped;                // one of kHashSkip* (exe_hasher.h); empty when hashed
  std::string detail;                 // human-readable context for a skip ("4096 > 1024 bytes")
  bool cache_hit = false;
};

struct HashCacheCounters {
  int64_t hits = 0;
  int64_t misses = 0;                      // files actually read and hashed
  std::map<std::string, int64_t> skipped;  // reason -> count
};

template <typename Key, typename KeyHash>
class HashCache {
 public:
  explicit HashCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  HashCache(const HashCache&) = delete;
  HashCache& operator=(const HashCache&) = delete;

  // The file cached under `key` (a hit, or the skip it was remembered as),
  // counted and made the most recently used; nothing when it is not cached.
  std::optional<HashOutcome> Lookup(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second);
    const Entry& e = *it->second;
    if (!e.skipped.empty()) return Skip(e.skipped, e.detail);
    ++counters_.hits;
    HashOutcome o;
    o.sha256 = e.sha256;
    o.cache_hit = true;
    return o;
  }

  // A skip, counted; not cached.
  HashOutcome Skip(std::string reason, std::string detail) {
    ++counters_.skipped[reason];
    HashOutcome o;
    o.skipped = std::move(reason);
    o.detail = std::move(detail);
    return o;
  }

  // A skip, counted and remembered under `key`.
  HashOutcome RememberSkip(const Key& key, std::string reason, std::string detail) {
    Insert(Entry{key, "", reason, detail});
    return Skip(std::move(reason), std::move(detail));
  }

  // A file read and hashed: counted as a miss and cached under `key`.
  HashOutcome Hashed(const Key& key, std::string sha256) {
    ++counters_.misses;
    Insert(Entry{key, sha256, "", ""});
    HashOutcome o;
    o.sha256 = std::move(sha256);
    return o;
  }

  const HashCacheCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = {}; }
  size_t size() const { return index_.size(); }

 private:
  struct Entry {
    Key key;
    std::string sha256;   // empty when `skipped` is set
    std::string skipped;  // a remembered skip
    std::string detail;
  };

  void Insert(Entry e) {
    if (auto it = index_.find(e.key); it != index_.end()) {
      lru_.erase(it->second);
      index_.erase(it);
    }
    lru_.push_front(std::move(e));
    index_[lru_.front().key] = lru_.begin();
    while (index_.size() > capacity_) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
  }

  size_t capacity_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<Key, typename std::list<Entry>::iterator, KeyHash> index_;
  HashCacheCounters counters_;
};

}  // namespace sentinel::procmond
