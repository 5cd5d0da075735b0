// Signed ledgers (the audit-signing feature, SENTINEL_AUDIT_SIGNING): the key
// recorded, every entry signed, appends without the key refused.
#include <algorithm>

#include <gtest/gtest.h>

#include "sentinel/audit/ledger.h"
#include "sentinel/audit/ledger_test_fixture.h"
#include "sentinel/audit/signer.h"
#include "sentinel/audit/verify.h"
#include "sentinel/base/hex.h"

namespace sentinel::audit {
namespace {

TEST_F(LedgerTest, SignedLedgerRecordsKeyAndRefusesUnsignedAppends) {
  auto signer = MakeSigner(1);
  {
    auto ledger = OpenLedger(signer);
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(ledger->AppendRaw("procmond", "component.start", "{}").ok());
    auto key = ledger->db().QueryText("SELECT value FROM system_metadata WHERE key = 'audit_public_key'");
    EXPECT_EQ(**key, signer->PublicKeyHex());
    auto from = ledger->db().QueryText("SELECT value FROM system_metadata WHERE key = 'audit_signed_from'");
    EXPECT_EQ(**from, "1");
    const std::vector<Row> rows = ReadRows(ledger->db());
    ASSERT_EQ(rows.size(), 1u);
    ASSERT_TRUE(rows[0].signature.has_value());
    Signature sig;
    ASSERT_TRUE(ParseSignatureHex(*rows[0].signature, &sig));
    crypto::Blake3Digest entry;
    std::copy_n(FromHex(rows[0].entry_hash)->begin(), 32, entry.begin());
    EXPECT_TRUE(VerifySignature(signer->public_key(), entry, sig));
  }
  {
    // Without the key: open works (readers, verify), appending does not.
    auto ledger = OpenLedger();
    ASSERT_TRUE(ledger);
    auto r = ledger->AppendRaw("procmond", "component.stop", "{}");
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(r.status().message().find("no signing key"), std::string::npos) << r.status().message();
  }
  {
    LedgerOptions o;
    o.path = path_;
    o.signer = MakeSigner(2);
    auto other = AuditLedger::Open(o);
    EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(other.status().message().find("another key"), std::string::npos) << other.status().message();
  }
  auto v = VerifyLedgerFile(path_);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->intact()) << v->Summary();
  EXPECT_EQ(v->signatures_verified, 1);
}

TEST_F(LedgerTest, SigningEnabledLaterStartsAtTheNextSequence) {
  {
    auto ledger = OpenLedger();
    ASSERT_TRUE(ledger);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(ledger->AppendRaw("procmond", "component.start", "{}").ok());
  }
  auto ledger = OpenLedger(MakeSigner(3));
  ASSERT_TRUE(ledger);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ledger->AppendRaw("procmond", "rule.loaded", "{}").ok());
  auto from = ledger->db().QueryText("SELECT value FROM system_metadata WHERE key = 'audit_signed_from'");
  EXPECT_EQ(**from, "11");
  auto v = VerifyLedger(ledger->db());
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->intact()) << v->Summary();
  EXPECT_EQ(v->signatures_verified, 5);
  EXPECT_EQ(v->unsigned_entries, 10);
  EXPECT_EQ(v->signed_from, 11);
}

}  // namespace
}  // namespace sentinel::audit
