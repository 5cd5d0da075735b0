#include "sentinel/crypto/blake3.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace sentinel::crypto {
namespace {

constexpr size_t kBlockLen = 64;
constexpr size_t kChunkLen = 1024;
constexpr size_t kBlocksPerChunk = kChunkLen / kBlockLen;

// Domain-separation flags (specification §2.1).
constexpr uint32_t kChunkStart = 1u << 0;
constexpr uint32_t kChunkEnd = 1u << 1;
constexpr uint32_t kParent = 1u << 2;
constexpr uint32_t kRoot = 1u << 3;
constexpr uint32_t kKeyedHash = 1u << 4;
constexpr uint32_t kDeriveKeyContext = 1u << 5;
constexpr uint32_t kDeriveKeyMaterial = 1u << 6;

// The SHA-256 initial hash values, as BLAKE3 takes them.
constexpr uint32_t kIv[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                             0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

constexpr size_t kRounds = 7;
constexpr uint8_t kPermutation[16] = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};

// Instead of permuting the message words between rounds, each round reads
// them through its own index table: round r uses the permutation applied r
// times. Computed at compile time so the rounds below index with constants
// and the compiler keeps the whole state in registers.
struct Schedule {
  uint8_t idx[kRounds][16];
};
constexpr Schedule MakeSchedule() {
  Schedule s{};
  for (uint8_t i = 0; i < 16; ++i) s.idx[0][i] = i;
  for (size_t r = 1; r < kRounds; ++r)
    for (size_t i = 0; i < 16; ++i) s.idx[r][i] = s.idx[r - 1][kPermutation[i]];
  return s;
}
constexpr Schedule kSchedule = MakeSchedule();

#define SENTINEL_BLAKE3_INLINE inline __attribute__((always_inline))

SENTINEL_BLAKE3_INLINE uint32_t LoadLe32(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap32(w);
  return w;
}

SENTINEL_BLAKE3_INLINE void StoreLe32(uint8_t* p, uint32_t w) {
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap32(w);
  std::memcpy(p, &w, 4);
}

SENTINEL_BLAKE3_INLINE void G(uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d, uint32_t mx, uint32_t my) {
  a = a + b + mx;
  d = std::rotr(d ^ a, 16);
  c = c + d;
  b = std::rotr(b ^ c, 12);
  a = a + b + my;
  d = std::rotr(d ^ a, 8);
  c = c + d;
  b = std::rotr(b ^ c, 7);
}

template <size_t R>
SENTINEL_BLAKE3_INLINE void Round(uint32_t (&v)[16], const uint32_t (&m)[16]) {
  constexpr const uint8_t* s = kSchedule.idx[R];
  // Columns.
  G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
  G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
  G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
  G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
  // Diagonals.
  G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
  G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
  G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
  G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
}

// The compression function: 7 rounds over the 16-word state. Leaves the
// full state in `v`; callers fold it into a chaining value or output bytes.
SENTINEL_BLAKE3_INLINE void CompressCore(const uint32_t cv[8], const uint8_t block[kBlockLen],
                                         uint32_t block_len, uint64_t counter, uint32_t flags,
                                         uint32_t (&v)[16]) {
  uint32_t m[16];
  for (size_t i = 0; i < 16; ++i) m[i] = LoadLe32(block + 4 * i);
  for (size_t i = 0; i < 8; ++i) v[i] = cv[i];
  v[8] = kIv[0];
  v[9] = kIv[1];
  v[10] = kIv[2];
  v[11] = kIv[3];
  v[12] = static_cast<uint32_t>(counter);
  v[13] = static_cast<uint32_t>(counter >> 32);
  v[14] = block_len;
  v[15] = flags;
  Round<0>(v, m);
  Round<1>(v, m);
  Round<2>(v, m);
  Round<3>(v, m);
  Round<4>(v, m);
  Round<5>(v, m);
  Round<6>(v, m);
}

// Compresses one block into the chaining value `cv` (the first 8 output words).
void CompressInPlace(uint32_t cv[8], const uint8_t block[kBlockLen], uint32_t block_len, uint64_t counter,
                     uint32_t flags) {
  uint32_t v[16];
  CompressCore(cv, block, block_len, counter, flags, v);
  for (size_t i = 0; i < 8; ++i) cv[i] = v[i] ^ v[i + 8];
}

// The full 64-byte output of one compression, for the root's output blocks.
void CompressXof(const uint32_t cv[8], const uint8_t block[kBlockLen], uint32_t block_len, uint64_t counter,
                 uint32_t flags, uint8_t out[kBlockLen]) {
  uint32_t v[16];
  CompressCore(cv, block, block_len, counter, flags, v);
  for (size_t i = 0; i < 8; ++i) {
    StoreLe32(out + 4 * i, v[i] ^ v[i + 8]);
    StoreLe32(out + 32 + 4 * i, v[i + 8] ^ cv[i]);
  }
}

void WordsToBlock(const uint32_t left[8], const uint32_t right[8], uint8_t block[kBlockLen]) {
  for (size_t i = 0; i < 8; ++i) {
    StoreLe32(block + 4 * i, left[i]);
    StoreLe32(block + 32 + 4 * i, right[i]);
  }
}

void ParentCv(const uint32_t left[8], const uint32_t right[8], const uint32_t key[8], uint32_t flags,
              uint32_t out[8]) {
  uint8_t block[kBlockLen];
  WordsToBlock(left, right, block);
  std::memcpy(out, key, 8 * sizeof(uint32_t));
  CompressInPlace(out, block, kBlockLen, 0, flags | kParent);
}

// The inputs of the last compression, kept so the root can be compressed
// again with the ROOT flag and successive output counters.
struct Output {
  uint32_t cv[8];
  uint8_t block[kBlockLen];
  uint32_t block_len;
  uint64_t counter;
  uint32_t flags;

  void ChainingValue(uint32_t out[8]) const {
    std::memcpy(out, cv, sizeof cv);
    CompressInPlace(out, block, block_len, counter, flags);
  }

  void RootBytes(uint8_t* out, size_t len) const {
    uint8_t buf[kBlockLen];
    for (uint64_t output_counter = 0; len > 0; ++output_counter) {
      const size_t n = std::min(len, kBlockLen);
      if (n == kBlockLen) {
        CompressXof(cv, block, block_len, output_counter, flags | kRoot, out);
      } else {
        CompressXof(cv, block, block_len, output_counter, flags | kRoot, buf);
        std::memcpy(out, buf, n);
      }
      out += n;
      len -= n;
    }
  }
};

void KeyWords(const uint8_t key[kBlake3KeyLen], uint32_t out[8]) {
  for (size_t i = 0; i < 8; ++i) out[i] = LoadLe32(key + 4 * i);
}

}  // namespace

Blake3Hasher::Blake3Hasher() : Blake3Hasher(kIv, 0) {}

Blake3Hasher::Blake3Hasher(const uint32_t key_words[8], uint32_t flags) : flags_(flags) {
  std::memcpy(key_, key_words, sizeof key_);
  Reset();
}

Blake3Hasher Blake3Hasher::Keyed(const Blake3Key& key) {
  uint32_t words[8];
  KeyWords(key.data(), words);
  return Blake3Hasher(words, kKeyedHash);
}

Blake3Hasher Blake3Hasher::DeriveKey(std::string_view context) {
  Blake3Hasher context_hasher(kIv, kDeriveKeyContext);
  context_hasher.Update(context);
  uint8_t context_key[kBlake3KeyLen];
  context_hasher.Finalize(context_key, sizeof context_key);
  uint32_t words[8];
  KeyWords(context_key, words);
  return Blake3Hasher(words, kDeriveKeyMaterial);
}

void Blake3Hasher::Reset() {
  std::memcpy(chunk_cv_, key_, sizeof chunk_cv_);
  chunk_counter_ = 0;
  std::memset(block_, 0, sizeof block_);
  block_len_ = 0;
  blocks_compressed_ = 0;
  cv_stack_len_ = 0;
}

// Adds the chaining value of chunk number chunk_counter_ (so the total number
// of chunks so far is chunk_counter_ + 1). Every trailing zero bit of that
// total is a subtree this chunk completes: its left half is on the stack.
void Blake3Hasher::PushChunkCv(const uint32_t cv[8]) {
  uint32_t merged[8];
  std::memcpy(merged, cv, sizeof merged);
  for (uint64_t total = chunk_counter_ + 1; (total & 1) == 0; total >>= 1) {
    --cv_stack_len_;
    ParentCv(cv_stack_[cv_stack_len_], merged, key_, flags_, merged);
  }
  std::memcpy(cv_stack_[cv_stack_len_], merged, sizeof merged);
  ++cv_stack_len_;
}

// Called only when the buffered chunk is full and more input follows, so its
// last block is not the root.
void Blake3Hasher::CompleteChunk() {
  const uint32_t start = blocks_compressed_ == 0 ? kChunkStart : 0;
  CompressInPlace(chunk_cv_, block_, block_len_, chunk_counter_, flags_ | start | kChunkEnd);
  PushChunkCv(chunk_cv_);
  ++chunk_counter_;
  std::memcpy(chunk_cv_, key_, sizeof chunk_cv_);
  block_len_ = 0;
  blocks_compressed_ = 0;
}

size_t Blake3Hasher::HashWholeChunks(const uint8_t* data, size_t len) {
  size_t done = 0;
  // Strictly more than one chunk left: the one being hashed is not the last.
  while (len - done > kChunkLen) {
    uint32_t cv[8];
    std::memcpy(cv, key_, sizeof cv);
    const uint8_t* chunk = data + done;
    CompressInPlace(cv, chunk, kBlockLen, chunk_counter_, flags_ | kChunkStart);
    for (size_t b = 1; b < kBlocksPerChunk - 1; ++b) {
      CompressInPlace(cv, chunk + b * kBlockLen, kBlockLen, chunk_counter_, flags_);
    }
    CompressInPlace(cv, chunk + (kBlocksPerChunk - 1) * kBlockLen, kBlockLen, chunk_counter_,
                    flags_ | kChunkEnd);
    PushChunkCv(cv);
    ++chunk_counter_;
    done += kChunkLen;
  }
  return done;
}

void Blake3Hasher::Update(const void* data, size_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    const size_t chunk_len = blocks_compressed_ * kBlockLen + block_len_;
    if (chunk_len == kChunkLen) {
      CompleteChunk();
      continue;
    }
    if (chunk_len == 0 && len > kChunkLen) {
      const size_t n = HashWholeChunks(p, len);
      p += n;
      len -= n;
      continue;
    }
    // A full buffered block followed by more input is not the chunk's last.
    if (block_len_ == kBlockLen) {
      const uint32_t start = blocks_compressed_ == 0 ? kChunkStart : 0;
      CompressInPlace(chunk_cv_, block_, kBlockLen, chunk_counter_, flags_ | start);
      ++blocks_compressed_;
      block_len_ = 0;
    }
    // Blocks that are neither the chunk's last nor the input's last go
    // straight from the caller's buffer.
    if (block_len_ == 0) {
      while (len > kBlockLen && blocks_compressed_ < kBlocksPerChunk - 1) {
        const uint32_t start = blocks_compressed_ == 0 ? kChunkStart : 0;
        CompressInPlace(chunk_cv_, p, kBlockLen, chunk_counter_, flags_ | start);
        ++blocks_compressed_;
        p += kBlockLen;
        len -= kBlockLen;
      }
    }
    const size_t take = std::min(kBlockLen - block_len_, len);
    std::memcpy(block_ + block_len_, p, take);
    block_len_ = static_cast<uint8_t>(block_len_ + take);
    p += take;
    len -= take;
  }
}

void Blake3Hasher::Finalize(uint8_t* out, size_t len) const {
  Output o;
  std::memcpy(o.cv, chunk_cv_, sizeof o.cv);
  std::memset(o.block, 0, sizeof o.block);
  std::memcpy(o.block, block_, block_len_);
  o.block_len = block_len_;
  o.counter = chunk_counter_;
  o.flags = flags_ | kChunkEnd | (blocks_compressed_ == 0 ? kChunkStart : 0);
  // Fold the stack from the top: each entry is the left sibling of
  // everything to its right.
  for (size_t i = cv_stack_len_; i > 0; --i) {
    uint32_t right[8];
    o.ChainingValue(right);
    WordsToBlock(cv_stack_[i - 1], right, o.block);
    std::memcpy(o.cv, key_, sizeof o.cv);
    o.block_len = kBlockLen;
    o.counter = 0;
    o.flags = flags_ | kParent;
  }
  o.RootBytes(out, len);
}

Blake3Digest Blake3Hasher::Finalize() const {
  Blake3Digest d;
  Finalize(d.data(), d.size());
  return d;
}

Blake3Digest Blake3(std::span<const uint8_t> data) {
  Blake3Hasher h;
  h.Update(data.data(), data.size());
  return h.Finalize();
}

Blake3Digest Blake3(std::string_view data) {
  Blake3Hasher h;
  h.Update(data);
  return h.Finalize();
}

Blake3Digest Blake3Keyed(const Blake3Key& key, std::span<const uint8_t> data) {
  Blake3Hasher h = Blake3Hasher::Keyed(key);
  h.Update(data.data(), data.size());
  return h.Finalize();
}

void Blake3DeriveKey(std::string_view context, std::span<const uint8_t> material, uint8_t* out,
                     size_t out_len) {
  Blake3Hasher h = Blake3Hasher::DeriveKey(context);
  h.Update(material.data(), material.size());
  h.Finalize(out, out_len);
}

}  // namespace sentinel::crypto
