#include "sentinel/crypto/blake3.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/base/hex.h"
#include "sentinel/testing/subprocess.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::crypto {
namespace {

// The official BLAKE3 test vectors (a copy of ../shared/testdata/blake3/test_vectors.json, kept in
// the tree so a clean clone anywhere runs them; a missing file fails the test).
constexpr const char* kVectorsPath = SENTINEL_SOURCE_DIR "/testdata/blake3/test_vectors.json";
constexpr const char* kB3sum = "/usr/bin/b3sum";

// The official vectors' input: 0, 1, ..., 250, 0, 1, ... repeated.
std::vector<uint8_t> PatternInput(size_t len) {
  std::vector<uint8_t> in(len);
  for (size_t i = 0; i < len; ++i) in[i] = static_cast<uint8_t>(i % 251);
  return in;
}

std::vector<uint8_t> RandomBytes(size_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(len);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

std::string HexOutput(const Blake3Hasher& h, size_t len) {
  std::vector<uint8_t> out(len);
  h.Finalize(out.data(), out.size());
  return ToHex(out);
}

// Feeds `in` in pieces whose sizes cycle through `splits`.
void FeedInPieces(Blake3Hasher& h, const std::vector<uint8_t>& in, const std::vector<size_t>& splits) {
  size_t off = 0;
  for (size_t i = 0; off < in.size(); ++i) {
    size_t n = std::min(splits[i % splits.size()], in.size() - off);
    h.Update(in.data() + off, n);
    off += n;
  }
}

struct Vectors {
  nlohmann::json doc;
  Blake3Key key{};
  std::string context;
};

// Loads the official test vectors, or explains why not.
bool LoadVectors(Vectors* v, std::string* why) {
  std::ifstream f(kVectorsPath);
  if (!f) {
    *why = std::string("BLAKE3 test vectors not found at ") + kVectorsPath;
    return false;
  }
  v->doc = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (v->doc.is_discarded() || !v->doc.contains("cases")) {
    *why = std::string(kVectorsPath) + " is not the BLAKE3 test vector file";
    return false;
  }
  const std::string key = v->doc.at("key").get<std::string>();
  if (key.size() != v->key.size()) {
    *why = "unexpected key length in test vectors";
    return false;
  }
  std::copy(key.begin(), key.end(), v->key.begin());
  v->context = v->doc.at("context_string").get<std::string>();
  return true;
}

enum class Mode { kHash, kKeyed, kDerive };

Blake3Hasher MakeHasher(Mode mode, const Vectors& v) {
  switch (mode) {
    case Mode::kHash: return Blake3Hasher();
    case Mode::kKeyed: return Blake3Hasher::Keyed(v.key);
    case Mode::kDerive: return Blake3Hasher::DeriveKey(v.context);
  }
  return Blake3Hasher();
}

TEST(Blake3Test, OfficialVectorsAllModes) {
  Vectors v;
  std::string why;
  ASSERT_TRUE(LoadVectors(&v, &why)) << why;
  const std::pair<Mode, const char*> modes[] = {
      {Mode::kHash, "hash"}, {Mode::kKeyed, "keyed_hash"}, {Mode::kDerive, "derive_key"}};
  size_t checked = 0;
  for (const auto& c : v.doc.at("cases")) {
    const size_t len = c.at("input_len").get<size_t>();
    const std::vector<uint8_t> in = PatternInput(len);
    for (const auto& [mode, field] : modes) {
      SCOPED_TRACE(std::string(field) + " input_len=" + std::to_string(len));
      const std::string expected = c.at(field).get<std::string>();
      ASSERT_EQ(expected.size() % 2, 0u);
      const size_t out_len = expected.size() / 2;
      ASSERT_GT(out_len, kBlake3OutLen);

      Blake3Hasher h = MakeHasher(mode, v);
      h.Update(in.data(), in.size());
      EXPECT_EQ(HexOutput(h, out_len), expected);                             // extended output
      EXPECT_EQ(ToHex(h.Finalize()), expected.substr(0, 2 * kBlake3OutLen));  // default length
      // Finalize leaves the state alone: asking again gives the same bytes.
      EXPECT_EQ(HexOutput(h, out_len), expected);

      // Every prefix of the extended output is the output of that length.
      for (size_t n : {size_t{1}, size_t{31}, size_t{33}, size_t{64}, size_t{65}, out_len - 1}) {
        EXPECT_EQ(HexOutput(h, n), expected.substr(0, 2 * n)) << "output length " << n;
      }

      // Odd split sizes, crossing block and chunk boundaries at every offset.
      for (const std::vector<size_t>& splits :
           std::vector<std::vector<size_t>>{{1}, {3, 7}, {63}, {65, 1}, {1023, 2}, {1025}, {13, 1024, 511}}) {
        Blake3Hasher inc = MakeHasher(mode, v);
        FeedInPieces(inc, in, splits);
        EXPECT_EQ(HexOutput(inc, out_len), expected) << "split pattern starting " << splits[0];
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * v.doc.at("cases").size());
  EXPECT_GE(checked, 3u * 35);  // the published file has 35 cases
}

TEST(Blake3Test, OneShotHelpersMatchHasher) {
  Vectors v;
  std::string why;
  ASSERT_TRUE(LoadVectors(&v, &why)) << why;
  for (const auto& c : v.doc.at("cases")) {
    const size_t len = c.at("input_len").get<size_t>();
    const std::vector<uint8_t> in = PatternInput(len);
    EXPECT_EQ(ToHex(Blake3(in)), c.at("hash").get<std::string>().substr(0, 64));
    EXPECT_EQ(ToHex(Blake3Keyed(v.key, in)), c.at("keyed_hash").get<std::string>().substr(0, 64));
    std::vector<uint8_t> derived(40);
    Blake3DeriveKey(v.context, in, derived.data(), derived.size());
    EXPECT_EQ(ToHex(derived), c.at("derive_key").get<std::string>().substr(0, 80));
  }
}

TEST(Blake3Test, KnownDigestsWithoutVectorFile) {
  // Independent of the JSON file, so a missing file cannot hide a broken hash.
  EXPECT_EQ(ToHex(Blake3(std::string_view())),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
  EXPECT_EQ(ToHex(Blake3(std::string_view("abc"))),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
}

TEST(Blake3Test, ResetAndCopy) {
  const std::vector<uint8_t> a = RandomBytes(5000, 1);
  Blake3Hasher h;
  h.Update(a.data(), 2000);
  Blake3Hasher copy = h;  // forks the state
  h.Update(a.data() + 2000, a.size() - 2000);
  EXPECT_EQ(h.Finalize(), Blake3(a));
  copy.Update(a.data() + 2000, 10);
  EXPECT_EQ(copy.Finalize(), Blake3(std::span<const uint8_t>(a.data(), 2010)));
  h.Reset();
  EXPECT_EQ(h.Finalize(), Blake3(std::string_view()));
  Blake3Key key{};
  key[0] = 7;
  Blake3Hasher k = Blake3Hasher::Keyed(key);
  k.Update(a.data(), 100);
  k.Reset();
  k.Update(a.data(), 10);
  EXPECT_EQ(k.Finalize(), Blake3Keyed(key, std::span<const uint8_t>(a.data(), 10)));
  EXPECT_NE(k.Finalize(), Blake3(std::span<const uint8_t>(a.data(), 10)));
}

// --- against Debian's b3sum (the Rust reference implementation) -------------

class Blake3VsB3sum : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kB3sum, X_OK) != 0) GTEST_SKIP() << kB3sum << " not installed (apt-get install b3sum)";
  }

  // b3sum's hex output for `path` with extra flags.
  std::string B3sum(const std::vector<std::string>& flags, const std::string& path,
                    const std::string& stdin_data = "") {
    std::vector<std::string> argv{kB3sum, "--no-names"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(path);
    testing::RunResult r = testing::Run(argv, {}, stdin_data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
    return r.out;
  }

  testing::TempDir dir_;
};

TEST_F(Blake3VsB3sum, RandomInputsOfManySizes) {
  const size_t sizes[] = {0,    1,    2,    63,   64,    65,    127,   128,           1000,
                          1023, 1024, 1025, 2047, 2048,  2049,  3072,  3073,          4096,
                          5000, 8191, 8192, 8193, 65536, 65537, 99999, (1 << 20) + 7, (3 << 20) + 1023};
  uint32_t seed = 42;
  for (size_t size : sizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::vector<uint8_t> data = RandomBytes(size, seed++);
    const std::string path = dir_.File("in_" + std::to_string(size));
    testing::WriteFile(path, std::string(data.begin(), data.end()));
    const std::string expected = B3sum({}, path);
    ASSERT_EQ(expected.size(), 64u);
    EXPECT_EQ(ToHex(Blake3(data)), expected);
    Blake3Hasher inc;
    FeedInPieces(inc, data, {7, 1031, 64, 1});
    EXPECT_EQ(ToHex(inc.Finalize()), expected);
  }
}

TEST_F(Blake3VsB3sum, ExtendedOutputKeyedAndDerive) {
  const std::vector<uint8_t> data = RandomBytes(70000, 9);
  const std::string path = dir_.File("xof");
  testing::WriteFile(path, std::string(data.begin(), data.end()));
  for (size_t len : {size_t{1}, size_t{33}, size_t{64}, size_t{65}, size_t{1000}, size_t{4099}}) {
    Blake3Hasher h;
    h.Update(data.data(), data.size());
    EXPECT_EQ(HexOutput(h, len), B3sum({"--length", std::to_string(len)}, path)) << "length " << len;
  }
  Blake3Key key;
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(200 - i);
  EXPECT_EQ(ToHex(Blake3Keyed(key, data)), B3sum({"--keyed"}, path, std::string(key.begin(), key.end())));
  const std::string context = "SentinelD 2024 blake3 test context";
  std::vector<uint8_t> derived(32);
  Blake3DeriveKey(context, data, derived.data(), derived.size());
  EXPECT_EQ(ToHex(derived), B3sum({"--derive-key", context}, path));
}

}  // namespace
}  // namespace sentinel::crypto
