// Test-only helpers shared by the audit tests: a varied event generator and
// raw SQL on a copy of a ledger file. (Their clock is testing::FakeClock.)
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/audit/ledger.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::audit::testutil {

// The ledgers' fake clock moves on this much at every read: strictly
// increasing timestamps, like a busy host's (testing::FakeClock::SetReadStepMs).
constexpr int64_t kBusyHostReadStepMs = 7;

// The i-th event of a test ledger: a mix of actors, actions and payloads
// (including non-ASCII text and nested objects).
inline AuditEvent TestEvent(int i) {
  static const char* kActors[] = {"procmond", "sentinelagent", "sentinelcli"};
  static const char* kActions[] = {"component.start", "rule.loaded", "alert.created", "query.executed"};
  nlohmann::json data = {{"i", i},
                         {"note", "entrée ✓ #" + std::to_string(i)},
                         {"nested", {{"b", i % 7}, {"a", std::string(static_cast<size_t>(i % 5), 'x')}}}};
  return AuditEvent{kActors[i % 3], kActions[i % 4], data.dump()};
}

// Copies a closed ledger file (no -wal pending) to `to`.
inline void CopyLedger(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

// A raw read-write connection for tampering, as an attacker with file access would.
inline std::unique_ptr<storage::Database> RawOpen(const std::string& path) {
  auto db = storage::Database::Open(path, storage::OpenMode::kReadWrite);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(db).value();
}

inline void Exec(storage::Database& db, const std::string& sql) {
  Status s = db.Exec(sql);
  ASSERT_TRUE(s.ok()) << sql << ": " << s.ToString();
}

}  // namespace sentinel::audit::testutil
