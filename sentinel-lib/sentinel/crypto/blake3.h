// BLAKE3, written from the published specification (Aumasson, Neves,
// O'Connor, Wilcox-O'Hearn, 2020): the regular hash, the keyed hash, key
// derivation and extendable output of any length. Portable C++ with no SIMD;
// whole chunks are compressed straight from the caller's buffer.
//
// Used for the audit ledger's hash chain (docs/audit-format.md).
//
// Blake3Hasher is a streaming hasher owned by one thread at a time. The free
// functions are pure and thread-safe. Nothing here allocates or fails.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace sentinel::crypto {

inline constexpr size_t kBlake3OutLen = 32;
inline constexpr size_t kBlake3KeyLen = 32;

using Blake3Digest = std::array<uint8_t, kBlake3OutLen>;
using Blake3Key = std::array<uint8_t, kBlake3KeyLen>;

class Blake3Hasher {
 public:
  // The regular (unkeyed) hash.
  Blake3Hasher();
  // The keyed hash (a PRF / MAC) under a 32-byte key.
  static Blake3Hasher Keyed(const Blake3Key& key);
  // Key derivation: `context` should be a hard-coded, globally unique,
  // application-specific string; the key material is then fed with Update().
  static Blake3Hasher DeriveKey(std::string_view context);

  // Copyable: a copy continues independently from the same state.
  Blake3Hasher(const Blake3Hasher&) = default;
  Blake3Hasher& operator=(const Blake3Hasher&) = default;

  void Update(const void* data, size_t len);
  void Update(std::string_view data) { Update(data.data(), data.size()); }

  // Writes the first `len` bytes of the extendable output to `out`. Does not
  // change the state: more input may follow, and Finalize may be called again.
  void Finalize(uint8_t* out, size_t len) const;
  Blake3Digest Finalize() const;

  // Back to the state of a fresh hasher of the same mode and key.
  void Reset();

 private:
  static constexpr size_t kMaxDepth = 54;  // 2^54 chunks of 1 KiB = 2^64 bytes

  Blake3Hasher(const uint32_t key_words[8], uint32_t flags);

  // Compresses whole 1 KiB chunks straight from `data` (the state must be at
  // a chunk boundary); returns the number of bytes consumed.
  size_t HashWholeChunks(const uint8_t* data, size_t len);
  void CompleteChunk();
  void PushChunkCv(const uint32_t cv[8]);

  uint32_t key_[8];
  uint32_t flags_;  // mode flags: 0, KEYED_HASH or DERIVE_KEY_MATERIAL

  // The current chunk.
  uint32_t chunk_cv_[8];
  uint64_t chunk_counter_ = 0;
  uint8_t block_[64];
  uint8_t block_len_ = 0;
  uint8_t blocks_compressed_ = 0;

  // Chaining values of completed subtrees, merged lazily (a chunk is only
  // added once more input shows it is not the last one).
  uint32_t cv_stack_[kMaxDepth][8];
  uint8_t cv_stack_len_ = 0;
};

// One-shot helpers.
Blake3Digest Blake3(std::span<const uint8_t> data);
Blake3Digest Blake3(std::string_view data);
Blake3Digest Blake3Keyed(const Blake3Key& key, std::span<const uint8_t> data);
// Derives `out_len` bytes from `material` under `context`.
void Blake3DeriveKey(std::string_view context, std::span<const uint8_t> material, uint8_t* out,
                     size_t out_len);

}  // namespace sentinel::crypto
