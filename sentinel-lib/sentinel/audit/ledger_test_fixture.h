// The ledger tests' fixture (ledger_test.cc, and ledger_signing_test.cc in a
// build with the audit-signing feature): a ledger file in a temporary
// directory on a fake clock, and its rows as stored.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/audit/audit_test_util.h"
#include "sentinel/audit/ledger.h"
#include "sentinel/testing/fake_clock.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::audit {

struct Row {
  int64_t sequence, timestamp;
  std::string actor, action, event_data, payload_hash, entry_hash;
  std::optional<std::string> prev_hash, signature;
};

inline std::vector<Row> ReadRows(storage::Database& db) {
  std::vector<Row> rows;
  auto st = db.Prepare(
      "SELECT sequence, timestamp, actor, action, event_data, payload_hash, prev_hash, entry_hash, signature"
      " FROM audit_ledger ORDER BY sequence");
  EXPECT_TRUE(st.ok());
  while (true) {
    auto row = st->Step();
    EXPECT_TRUE(row.ok());
    if (!row.ok() || !*row) break;
    rows.push_back(Row{st->ColumnInt(0), st->ColumnInt(1), st->ColumnText(2), st->ColumnText(3),
                       st->ColumnText(4), st->ColumnText(5), st->ColumnText(7), st->ColumnOptionalText(6),
                       st->ColumnOptionalText(8)});
  }
  return rows;
}

class LedgerTest : public ::testing::Test {
 protected:
  LedgerTest() { clock_.SetReadStepMs(testutil::kBusyHostReadStepMs); }
  std::unique_ptr<AuditLedger> OpenLedger(std::shared_ptr<const Signer> signer = nullptr) {
    LedgerOptions o;
    o.path = path_;
    o.clock = &clock_;
    o.signer = std::move(signer);
    auto l = AuditLedger::Open(o);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(l).value() : nullptr;
  }
  std::shared_ptr<const Signer> MakeSigner(uint8_t fill) {
    std::array<uint8_t, kSeedLen> seed;
    seed.fill(fill);
    auto s = Signer::FromSeed(seed);
    EXPECT_TRUE(s.ok());
    return std::shared_ptr<const Signer>(std::move(s).value());
  }

  testing::TempDir dir_;
  std::string path_ = dir_.File("audit.db");
  testing::FakeClock clock_;
};

}  // namespace sentinel::audit
