#include "sentinel/models/process.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace sentinel::models
