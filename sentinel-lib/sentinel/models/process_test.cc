#include "sentinel/models/process.h"

#include <random>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "sentinel/base/strings.h"

namespace sentinel::models {
namespace {

TEST(ProcessModelTest, CommandLineIsJsonArray) {
  std::string enc = EncodeCommandLine({"/bin/sh", "-c", "echo \"hi\"\n", "\xff"});
  auto j = nlohmann::json::parse(enc);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[2], "echo \"hi\"\n");
  EXPECT_EQ(j[3], "\xEF\xBF\xBD");
  EXPECT_EQ(EncodeCommandLine({}), "[]");
}

// The fast path for plain arguments writes exactly what nlohmann::json
// writes for the (sanitised) array, for any bytes an attacker chooses.
TEST(ProcessModelTest, CommandLineTextIsNlohmannsForAnyBytes) {
  std::mt19937 rng(16);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 12), count(0, 5), kind(0, 3);
  for (int round = 0; round < 5000; ++round) {
    std::vector<std::string> argv;
    nlohmann::json reference = nlohmann::json::array();
    for (int n = count(rng); n > 0; --n) {
      std::string a;
      for (int l = len(rng); l > 0; --l) {
        // Mostly printable ASCII (the fast path), sometimes anything.
        a.push_back(static_cast<char>(kind(rng) == 0 ? byte(rng) : 0x20 + byte(rng) % 0x5f));
      }
      reference.push_back(IsValidUtf8(a) ? a : SanitizeUtf8(a));
      argv.push_back(std::move(a));
    }
    ASSERT_EQ(EncodeCommandLine(argv), reference.dump()) << round;
  }
}

}  // namespace
}  // namespace sentinel::models
