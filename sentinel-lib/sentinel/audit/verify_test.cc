// Tampering with real ledger files, each way an attacker with write access
// to the database could, and what `verify` must then report.
#include "sentinel/audit/verify.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "sentinel/audit/audit_test_util.h"
#include "sentinel/audit/ledger.h"
#include "sentinel/base/hex.h"
#include "sentinel/testing/fake_clock.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::audit {
namespace {

using testutil::Exec;
using testutil::RawOpen;

constexpr int kEntries = 300;

// Two base ledgers built once: one unsigned, one signed. Each test tampers
// with its own copy.
class VerifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    BuildLedger(Base(false), nullptr);
    std::array<uint8_t, kSeedLen> seed;
    seed.fill(0x5a);
    signer_ = Signer::FromSeed(seed).value().release();
    BuildLedger(Base(true), std::shared_ptr<const Signer>(signer_, [](const Signer*) {}));
  }
  static void TearDownTestSuite() {
    delete signer_;
    delete dir_;
  }

  static std::string Base(bool signed_ledger) { return dir_->File(signed_ledger ? "signed.db" : "plain.db"); }

  static void BuildLedger(const std::string& path, std::shared_ptr<const Signer> signer) {
    static testing::FakeClock clock;
    clock.SetReadStepMs(testutil::kBusyHostReadStepMs);
    LedgerOptions o;
    o.path = path;
    o.clock = &clock;
    o.signer = std::move(signer);
    auto ledger = AuditLedger::Open(o);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    // Singles and batches, so both write paths are covered.
    int i = 0;
    while (i < kEntries) {
      if (i % 50 < 40) {
        const AuditEvent e = testutil::TestEvent(i);
        ASSERT_TRUE((*ledger)->AppendRaw(e.actor, e.action, e.event_data).ok());
        ++i;
      } else {
        std::vector<AuditEvent> batch;
        for (int k = 0; k < 10; ++k, ++i) batch.push_back(testutil::TestEvent(i));
        ASSERT_TRUE((*ledger)->AppendBatch(batch).ok());
      }
    }
  }  // closing the last connection checkpoints the WAL into the file

  // A fresh copy of a base ledger, open for raw tampering.
  std::unique_ptr<storage::Database> Copy(bool signed_ledger) {
    copy_ = dir_->File("copy_" + std::to_string(++copies_) + ".db");
    testutil::CopyLedger(Base(signed_ledger), copy_);
    return RawOpen(copy_);
  }

  VerifyResult Verify(const VerifyOptions& options = {}) {
    auto r = VerifyLedgerFile(copy_, options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyResult{};
  }

  std::string Text(storage::Database& db, const std::string& sql) {
    auto t = db.QueryText(sql);
    EXPECT_TRUE(t.ok() && t->has_value()) << sql;
    return t.ok() && t->has_value() ? **t : "";
  }

  // What an attacker who knows the format computes for a forged entry.
  void InsertForged(storage::Database& db, int64_t seq, int64_t ts, const std::string& actor,
                    const std::string& action, const std::string& data, const crypto::Blake3Digest& prev,
                    const Signer* sign_with = nullptr) {
    const crypto::Blake3Digest payload = PayloadHash(data);
    const crypto::Blake3Digest entry = EntryHash(seq, ts, actor, action, payload, prev);
    auto st = db.Prepare("INSERT INTO audit_ledger VALUES(?,?,?,?,?,?,?,?,?)");
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(st->BindInt(1, seq).ok());
    ASSERT_TRUE(st->BindInt(2, ts).ok());
    ASSERT_TRUE(st->BindText(3, actor).ok());
    ASSERT_TRUE(st->BindText(4, action).ok());
    ASSERT_TRUE(st->BindText(5, data).ok());
    ASSERT_TRUE(st->BindText(6, ToHex(payload)).ok());
    ASSERT_TRUE(st->BindText(7, ToHex(prev)).ok());
    ASSERT_TRUE(st->BindText(8, ToHex(entry)).ok());
    if (sign_with) {
      ASSERT_TRUE(st->BindText(9, ToHex(sign_with->Sign(entry))).ok());
    } else {
      ASSERT_TRUE(st->BindNull(9).ok());
    }
    ASSERT_TRUE(st->Run().ok());
  }

  crypto::Blake3Digest StoredEntryHash(storage::Database& db, int64_t seq) {
    crypto::Blake3Digest d{};
    auto bytes =
        FromHex(Text(db, "SELECT entry_hash FROM audit_ledger WHERE sequence = " + std::to_string(seq)));
    EXPECT_TRUE(bytes && bytes->size() == 32);
    if (bytes) std::copy_n(bytes->begin(), 32, d.begin());
    return d;
  }

  static void ExpectBad(const VerifyResult& r, VerifyFinding finding, int64_t sequence) {
    EXPECT_FALSE(r.intact());
    EXPECT_EQ(VerifyFindingName(r.finding), VerifyFindingName(finding)) << r.Summary();
    EXPECT_EQ(r.first_bad_sequence, sequence) << r.Summary();
    EXPECT_EQ(r.entries_verified, std::max<int64_t>(0, sequence - 1)) << r.Summary();
  }

  static testing::TempDir* dir_;
  static Signer* signer_;
  std::string copy_;
  int copies_ = 0;
};

testing::TempDir* VerifyTest::dir_ = nullptr;
Signer* VerifyTest::signer_ = nullptr;

TEST_F(VerifyTest, UntouchedLedgersAreIntact) {
  for (bool signed_ledger : {false, true}) {
    Copy(signed_ledger);
    VerifyResult r = Verify();
    EXPECT_TRUE(r.intact()) << r.Summary();
    EXPECT_EQ(r.entries_total, kEntries);
    EXPECT_EQ(r.entries_verified, kEntries);
    EXPECT_EQ(r.first_sequence, 1);
    EXPECT_EQ(r.last_sequence, kEntries);
    EXPECT_EQ(r.signatures_verified, signed_ledger ? kEntries : 0);
    EXPECT_EQ(r.unsigned_entries, signed_ledger ? 0 : kEntries);
    EXPECT_EQ(r.last_entry_hash_hex.size(), 64u);
    EXPECT_EQ(r.Summary(), "intact: 300 entries (sequences 1..300)");
  }
}

TEST_F(VerifyTest, PayloadChanged) {
  auto db = Copy(false);
  Exec(*db,
       "UPDATE audit_ledger SET event_data = '{\"i\":100,\"note\":\"nothing to see\"}' WHERE sequence = 101");
  VerifyResult r = Verify();
  ExpectBad(r, VerifyFinding::kPayloadChanged, 101);
  EXPECT_EQ(r.Summary(), "first bad sequence 101: payload changed: payload_hash does not match event_data");
}

TEST_F(VerifyTest, PayloadChangedWithRecomputedPayloadHash) {
  auto db = Copy(false);
  const std::string data = "{\"forged\":true}";
  Exec(*db, "UPDATE audit_ledger SET event_data = '" + data + "', payload_hash = '" +
                ToHex(PayloadHash(data)) + "' WHERE sequence = 42");
  ExpectBad(Verify(), VerifyFinding::kEntryChanged, 42);
}

TEST_F(VerifyTest, FieldsChanged) {
  const std::pair<std::string, int> cases[] = {
      {"UPDATE audit_ledger SET actor = 'root' WHERE sequence = 120", 120},
      {"UPDATE audit_ledger SET action = 'nothing.happened' WHERE sequence = 121", 121},
      {"UPDATE audit_ledger SET timestamp = timestamp + 1 WHERE sequence = 122", 122},
      {"UPDATE audit_ledger SET entry_hash = '" + std::string(64, 'e') + "' WHERE sequence = 88", 88},
  };
  for (const auto& [sql, seq] : cases) {
    SCOPED_TRACE(sql);
    auto db = Copy(false);
    Exec(*db, sql);
    ExpectBad(Verify(), VerifyFinding::kEntryChanged, seq);
  }
}

TEST_F(VerifyTest, RewrittenEntryWithRecomputedHashBreaksTheNextLink) {
  auto db = Copy(false);
  const int64_t ts = std::stoll(Text(*db, "SELECT timestamp FROM audit_ledger WHERE sequence = 200"));
  Exec(*db, "DELETE FROM audit_ledger WHERE sequence = 200");
  InsertForged(*db, 200, ts, "procmond", "component.start", "{}", StoredEntryHash(*db, 199));
  ExpectBad(Verify(), VerifyFinding::kChainBroken, 201);
}

TEST_F(VerifyTest, DeletedEntries) {
  const std::pair<const char*, int> cases[] = {
      {"DELETE FROM audit_ledger WHERE sequence = 150", 150},
      {"DELETE FROM audit_ledger WHERE sequence BETWEEN 150 AND 152", 150},
      {"DELETE FROM audit_ledger WHERE sequence = 1", 1},
  };
  for (const auto& [sql, seq] : cases) {
    SCOPED_TRACE(sql);
    auto db = Copy(false);
    Exec(*db, sql);
    VerifyResult r = Verify();
    ExpectBad(r, VerifyFinding::kEntryMissing, seq);
    EXPECT_EQ(r.entries_total, kEntries - (std::string(sql).find("BETWEEN") != std::string::npos ? 3 : 1));
  }
}

TEST_F(VerifyTest, DeletedEntryWithRenumberedTail) {
  // Delete 150 and shift everything after it down by one: no gap, but 150's
  // successor still links to the deleted entry.
  auto db = Copy(false);
  Exec(*db, "DELETE FROM audit_ledger WHERE sequence = 150");
  Exec(*db, "UPDATE audit_ledger SET sequence = -sequence WHERE sequence > 150");
  Exec(*db, "UPDATE audit_ledger SET sequence = -sequence - 1 WHERE sequence < 0");
  ExpectBad(Verify(), VerifyFinding::kChainBroken, 150);
}

TEST_F(VerifyTest, InsertedEntries) {
  {
    SCOPED_TRACE("inserted in the middle, later entries renumbered, forged hashes");
    auto db = Copy(false);
    Exec(*db, "UPDATE audit_ledger SET sequence = -sequence WHERE sequence >= 200");
    Exec(*db, "UPDATE audit_ledger SET sequence = -sequence + 1 WHERE sequence < 0");
    InsertForged(*db, 200, 1'700'000'001'000, "sentinelcli", "query.executed", "{}",
                 StoredEntryHash(*db, 199));
    VerifyResult r = Verify();
    ExpectBad(r, VerifyFinding::kChainBroken, 201);
    EXPECT_EQ(r.entries_total, kEntries + 1);
  }
  {
    SCOPED_TRACE("entry 0 before the start");
    auto db = Copy(false);
    InsertForged(*db, 0, 1'700'000'000'000, "procmond", "component.start", "{}", crypto::Blake3Digest{});
    ExpectBad(Verify(), VerifyFinding::kEntryUnexpected, 0);
  }
  {
    SCOPED_TRACE("appended after the tail with a wrong prev_hash");
    auto db = Copy(false);
    InsertForged(*db, kEntries + 1, 1'800'000'000'000, "procmond", "component.stop", "{}",
                 StoredEntryHash(*db, 17));
    ExpectBad(Verify(), VerifyFinding::kChainBroken, kEntries + 1);
  }
}

TEST_F(VerifyTest, SwappedEntries) {
  auto db = Copy(false);
  Exec(*db, "UPDATE audit_ledger SET sequence = -1 WHERE sequence = 50");
  Exec(*db, "UPDATE audit_ledger SET sequence = 50 WHERE sequence = 51");
  Exec(*db, "UPDATE audit_ledger SET sequence = 51 WHERE sequence = -1");
  ExpectBad(Verify(), VerifyFinding::kChainBroken, 50);
}

TEST_F(VerifyTest, PrevHashChanged) {
  auto db = Copy(false);
  Exec(*db, "UPDATE audit_ledger SET prev_hash = '" + std::string(64, '0') + "' WHERE sequence = 77");
  ExpectBad(Verify(), VerifyFinding::kChainBroken, 77);

  db = Copy(false);
  Exec(*db, "UPDATE audit_ledger SET prev_hash = NULL WHERE sequence = 78");
  ExpectBad(Verify(), VerifyFinding::kChainBroken, 78);

  db = Copy(false);
  Exec(*db, "UPDATE audit_ledger SET prev_hash = '" + std::string(64, '1') + "' WHERE sequence = 1");
  ExpectBad(Verify(), VerifyFinding::kChainBroken, 1);
}

TEST_F(VerifyTest, MalformedColumns) {
  const std::pair<std::string, int> cases[] = {
      // INTEGER affinity keeps '123x' as TEXT; SQLite would read it as 123.
      {"UPDATE audit_ledger SET timestamp = timestamp || 'x' WHERE sequence = 30", 30},
      {"UPDATE audit_ledger SET payload_hash = upper(payload_hash) WHERE sequence = 31", 31},
      {"UPDATE audit_ledger SET entry_hash = substr(entry_hash, 3) WHERE sequence = 32", 32},
      {"UPDATE audit_ledger SET actor = CAST(actor AS BLOB) WHERE sequence = 33", 33},
      {"UPDATE audit_ledger SET event_data = x'7b7d' WHERE sequence = 34", 34},
  };
  for (const auto& [sql, seq] : cases) {
    SCOPED_TRACE(sql);
    auto db = Copy(false);
    Exec(*db, sql);
    ExpectBad(Verify(), VerifyFinding::kMalformed, seq);
  }
}

TEST_F(VerifyTest, NulInActorOrActionIsMalformed) {
  // NUL terminates actor and action in the preimage, so two splits that
  // both contain one collide: ("a\0b", "c") and ("a", "b\0c"). The writer
  // never stores a NUL; the verifier rejects one even when the hashes agree.
  crypto::Blake3Digest p{}, prev{};
  EXPECT_EQ(EntryHash(10, 5, std::string("a\0b", 3), "c", p, prev),
            EntryHash(10, 5, "a", std::string("b\0c", 3), p, prev));

  // The last entry rewritten with a NUL in its actor and a recomputed
  // entry_hash: only the NUL gives it away on an unsigned ledger.
  auto db = Copy(false);
  const int64_t ts = std::stoll(Text(*db, "SELECT timestamp FROM audit_ledger WHERE sequence = 300"));
  const std::string data = Text(*db, "SELECT event_data FROM audit_ledger WHERE sequence = 300");
  Exec(*db, "DELETE FROM audit_ledger WHERE sequence = 300");
  InsertForged(*db, 300, ts, std::string("procmond\0rule", 13), ".loaded", data, StoredEntryHash(*db, 299));
  VerifyResult r = Verify();
  ExpectBad(r, VerifyFinding::kMalformed, 300);
  EXPECT_NE(r.detail.find("NUL"), std::string::npos) << r.detail;
}

TEST_F(VerifyTest, TruncatedTailNeedsAnAnchor) {
  auto db = Copy(false);
  const std::string last_hash = Text(*db, "SELECT entry_hash FROM audit_ledger WHERE sequence = 300");
  Exec(*db, "DELETE FROM audit_ledger WHERE sequence >= 299");
  // Without an anchor the shorter chain is a valid chain: NOT detectable.
  VerifyResult plain = Verify();
  EXPECT_TRUE(plain.intact()) << plain.Summary();
  EXPECT_EQ(plain.last_sequence, 298);
  // With the tail recorded elsewhere, it is.
  VerifyOptions o;
  o.anchor = Anchor{300, last_hash};
  VerifyResult anchored = Verify(o);
  ExpectBad(anchored, VerifyFinding::kTruncated, 299);
  EXPECT_EQ(anchored.entries_verified, 298);
}

TEST_F(VerifyTest, RewrittenTailOfUnsignedLedgerNeedsAnAnchor) {
  auto db = Copy(false);
  const std::string real_hash = Text(*db, "SELECT entry_hash FROM audit_ledger WHERE sequence = 300");
  const int64_t ts = std::stoll(Text(*db, "SELECT timestamp FROM audit_ledger WHERE sequence = 300"));
  Exec(*db, "DELETE FROM audit_ledger WHERE sequence = 300");
  InsertForged(*db, 300, ts, "sentinelcli", "query.executed", "{\"sql\":\"innocent\"}",
               StoredEntryHash(*db, 299));
  // BLAKE3 is unkeyed: a forger who recomputes the chain is not detectable
  // by the chain alone (documented in docs/audit-format.md).
  EXPECT_TRUE(Verify().intact());
  VerifyOptions o;
  o.anchor = Anchor{300, real_hash};
  ExpectBad(Verify(o), VerifyFinding::kAnchorMismatch, 300);
}

TEST_F(VerifyTest, SignatureCorrupted) {
  auto db = Copy(true);
  // Flip the first hex digit (0<->1, a<->b, ...): still valid hex.
  Exec(*db,
       "UPDATE audit_ledger SET signature = "
       " substr('1032547698badcfe', instr('0123456789abcdef', substr(signature, 1, 1)), 1) || "
       "substr(signature, 2)"
       " WHERE sequence = 60");
  ExpectBad(Verify(), VerifyFinding::kBadSignature, 60);

  db = Copy(true);
  Exec(*db,
       "UPDATE audit_ledger SET signature = (SELECT signature FROM audit_ledger WHERE sequence = 59)"
       " WHERE sequence = 60");
  ExpectBad(Verify(), VerifyFinding::kBadSignature, 60);

  db = Copy(true);
  Exec(*db, "UPDATE audit_ledger SET signature = 'zz' WHERE sequence = 62");
  ExpectBad(Verify(), VerifyFinding::kBadSignature, 62);
}

TEST_F(VerifyTest, SignatureRemoved) {
  auto db = Copy(true);
  Exec(*db, "UPDATE audit_ledger SET signature = NULL WHERE sequence = 61");
  ExpectBad(Verify(), VerifyFinding::kMissingSignature, 61);
}

TEST_F(VerifyTest, ForgedEntriesOnSignedLedger) {
  {
    SCOPED_TRACE("fully recomputed entry appended, no signature");
    auto db = Copy(true);
    InsertForged(*db, kEntries + 1, 1'800'000'000'000, "procmond", "component.stop", "{}",
                 StoredEntryHash(*db, kEntries));
    ExpectBad(Verify(), VerifyFinding::kMissingSignature, kEntries + 1);
  }
  {
    SCOPED_TRACE("signed with the attacker's own key");
    auto db = Copy(true);
    std::array<uint8_t, kSeedLen> seed;
    seed.fill(0x11);
    auto attacker = Signer::FromSeed(seed);
    ASSERT_TRUE(attacker.ok());
    InsertForged(*db, kEntries + 1, 1'800'000'000'000, "procmond", "component.stop", "{}",
                 StoredEntryHash(*db, kEntries), attacker->get());
    ExpectBad(Verify(), VerifyFinding::kBadSignature, kEntries + 1);
  }
}

TEST_F(VerifyTest, StrippedKeyIsCaughtOnlyWithATrustedKey) {
  auto db = Copy(true);
  Exec(*db, "DELETE FROM system_metadata WHERE key IN ('audit_public_key', 'audit_signed_from')");
  Exec(*db, "UPDATE audit_ledger SET signature = NULL WHERE sequence >= 250");
  // The database alone no longer says it was signed.
  VerifyResult alone = Verify();
  EXPECT_TRUE(alone.intact()) << alone.Summary();
  EXPECT_EQ(alone.signatures_verified, 0);

  VerifyOptions o;
  o.trusted_public_key_hex = signer_->PublicKeyHex();
  VerifyResult trusted = Verify(o);
  EXPECT_EQ(VerifyFindingName(trusted.finding), "key_mismatch") << trusted.Summary();

  // Same with the key left in place but signed_from pushed past the stripped entries.
  db = Copy(true);
  Exec(*db, "UPDATE system_metadata SET value = '1000000' WHERE key = 'audit_signed_from'");
  Exec(*db, "UPDATE audit_ledger SET signature = NULL WHERE sequence >= 250");
  EXPECT_TRUE(Verify().intact());
  ExpectBad(Verify(o), VerifyFinding::kMissingSignature, 250);
}

TEST_F(VerifyTest, FailsCleanlyOnMissingOrForeignFiles) {
  auto missing = VerifyLedgerFile(dir_->File("nope.db"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  const std::string junk = dir_->File("junk.db");
  testing::WriteFile(junk, std::string(4096, 'j'));
  EXPECT_FALSE(VerifyLedgerFile(junk).ok());
  Copy(false);
  VerifyOptions bad;
  bad.anchor = Anchor{0, "x"};
  EXPECT_EQ(VerifyLedgerFile(copy_, bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sentinel::audit
