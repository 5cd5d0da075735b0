// Test helpers for signed fleet requests: a deterministic signing key and a
// small valid DRL rule file. Test-only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "sentinel/audit/signer.h"

namespace sentinel::testing {

// An Ed25519 signer whose seed is 32 bytes of `fill` (a different fill, a different key).
inline std::unique_ptr<audit::Signer> TestSigner(uint8_t fill) {
  std::array<uint8_t, audit::kSeedLen> seed;
  seed.fill(fill);
  auto s = audit::Signer::FromSeed(seed);
  EXPECT_TRUE(s.ok());
  return s.ok() ? std::move(*s) : nullptr;
}

// A native rule file with id `id` and query `query` that the sandbox accepts by default.
inline std::string TestDrlRule(
    const std::string& id, const std::string& query = "SELECT pid, name FROM processes WHERE name = 'zz'") {
  return "id: " + id + "\nname: Test rule " + id +
         "\ndescription: a test rule\nseverity: low\ncategory: process\ntags: [execution]\nmitre: [T1059]\n"
         "enabled: true\ndedup_keys: [pid]\nquery: " +
         query + "\n";
}

}  // namespace sentinel::testing
