// Test-only helpers shared by the audit tests: a settable clock, a varied
// event generator, and raw SQL on a copy of a ledger file.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/audit/ledger.h"
#include "sentinel/base/time.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::audit::testutil {

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now_ms) : now_(now_ms) {}
  int64_t NowMs() const override { return now_ += 7; }  // strictly increasing, like a busy host
  int64_t MonotonicMs() const override { return now_; }

 private:
  mutable int64_t now_;
};

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
