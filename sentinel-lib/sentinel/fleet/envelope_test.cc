#include "sentinel/fleet/envelope.h"
#include "sentinel/fleet/fleet_test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "sentinel/base/hex.h"
#include "sentinel/testing/fake_clock.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::fleet {
namespace {

using testing::TestSigner;

using nlohmann::json;
using testing::FakeClock;
using testing::TempDir;

class EnvelopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = ReplayStore::Open(dir_.File("nonces"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    replay_ = std::move(*store);
    verifier_ = std::make_unique<EnvelopeVerifier>(std::vector<std::string>{signer_->PublicKeyHex()},
                                                   replay_.get(), clock_);
  }
  int64_t Now() const { return clock_.NowMs() / 1000; }
  std::string SignQuery(std::string_view payload) {
    return SignEnvelope(*signer_, EnvelopeKind::kQuery, payload, Now());
  }
  // Re-signs `e` as the trusted signer would (after a field was changed on purpose).
  std::string Resign(Envelope e) {
    e.sig = ToHex(signer_->Sign(SigningDigest(e.kind, e.key, e.issued_at, e.nonce, e.payload)));
    return EnvelopeToJson(e);
  }
  Envelope Parsed(const std::string& wire) {
    auto e = ParseEnvelopeJson(wire);
    EXPECT_TRUE(e.ok()) << e.status().message();
    return *e;
  }
  void ExpectRefused(std::string_view wire, RefusalCode code, EnvelopeKind kind = EnvelopeKind::kQuery) {
    auto v = verifier_->Verify(kind, wire);
    ASSERT_FALSE(v.ok()) << wire;
    EXPECT_EQ(v.refusal().code_name(), RefusalCodeName(code)) << v.refusal().message;
    EXPECT_FALSE(v.refusal().message.empty());
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<audit::Signer> signer_ = TestSigner(0x11);
  std::unique_ptr<audit::Signer> stranger_ = TestSigner(0x22);
  std::unique_ptr<ReplayStore> replay_;
  std::unique_ptr<EnvelopeVerifier> verifier_;
};

TEST_F(EnvelopeTest, SigningInputIsTheDocumentedString) {
  EXPECT_EQ(SigningInput("query", "ab", 1764820000, "00ff", "{\"x\":1}"),
            "sentineld-fleet-v1\nquery\nab\n1764820000\n00ff\n{\"x\":1}");
}

TEST_F(EnvelopeTest, WireFormHasExactlyTheContractFields) {
  json j = json::parse(SignQuery("{}"));
  EXPECT_EQ(j.size(), 7u);
  EXPECT_EQ(j["v"], 1);
  EXPECT_EQ(j["kind"], "query");
  EXPECT_EQ(j["key"], signer_->PublicKeyHex());
  EXPECT_EQ(j["issued_at"], Now());
  EXPECT_EQ(j["nonce"].get<std::string>().size(), 32u);
  EXPECT_EQ(j["payload"], "{}");
  EXPECT_EQ(j["sig"].get<std::string>().size(), 128u);
}

TEST_F(EnvelopeTest, SignedEnvelopeVerifies) {
  const std::string payload = R"({"query_id":"q1","sql":"SELECT 1"})";
  auto v = verifier_->Verify(EnvelopeKind::kQuery, SignQuery(payload));
  ASSERT_TRUE(v.ok()) << v.refusal().message;
  EXPECT_EQ(v->payload, payload);
  EXPECT_EQ(v->key, signer_->PublicKeyHex());
  EXPECT_EQ(v->issued_at, Now());
  EXPECT_EQ(v->kind, EnvelopeKind::kQuery);
}

TEST_F(EnvelopeTest, NoncesAndUuidsAreFreshAndWellFormed) {
  EXPECT_NE(NewNonce(), NewNonce());
  const std::string u = NewUuid();
  EXPECT_EQ(u.size(), 36u);
  EXPECT_EQ(u[14], '4');
  EXPECT_NE(u, NewUuid());
}

TEST_F(EnvelopeTest, OversizedIsRefusedBeforeParsing) {
  std::string big(kMaxQueryEnvelopeBytes + 1, ' ');
  ExpectRefused(big, RefusalCode::kOversized);
  // A signed query whose envelope is over 64 KiB, though under a bundle's 1 MiB.
  const std::string wire = SignQuery(std::string(kMaxQueryEnvelopeBytes, 'x'));
  ExpectRefused(wire, RefusalCode::kOversized);
  ExpectRefused(std::string(kMaxBundleEnvelopeBytes + 1, ' '), RefusalCode::kOversized,
                EnvelopeKind::kBundle);
}

TEST_F(EnvelopeTest, MalformedShapesAreRefused) {
  ExpectRefused("not json", RefusalCode::kMalformed);
  ExpectRefused("[1,2]", RefusalCode::kMalformed);
  ExpectRefused(R"({"sql":"SELECT 1"})", RefusalCode::kMalformed);  // unsigned, no envelope at all
  json j = json::parse(SignQuery("{}"));
  for (const char* field : {"v", "kind", "key", "issued_at", "nonce", "payload", "sig"}) {
    json missing = j;
    missing.erase(field);
    ExpectRefused(missing.dump(), RefusalCode::kMalformed);
    json wrong_type = j;
    wrong_type[field] = json::array();
    ExpectRefused(wrong_type.dump(), RefusalCode::kMalformed);
  }
  json extra = j;
  extra["hosts"] = "all";
  ExpectRefused(extra.dump(), RefusalCode::kMalformed);
  json fractional = j;
  fractional["issued_at"] = 1.5;
  ExpectRefused(fractional.dump(), RefusalCode::kMalformed);
}

TEST_F(EnvelopeTest, WrongVersionOrKindIsMalformedEvenWhenSigned) {
  Envelope e = Parsed(SignQuery("{}"));
  e.v = 2;
  ExpectRefused(Resign(e), RefusalCode::kMalformed);
  // A signed query is not a bundle.
  ExpectRefused(SignQuery("{}"), RefusalCode::kMalformed, EnvelopeKind::kBundle);
  Envelope n = Parsed(SignQuery("{}"));
  n.nonce = "ABCDEF0123456789ABCDEF0123456789";  // not lowercase
  ExpectRefused(Resign(n), RefusalCode::kMalformed);
}

TEST_F(EnvelopeTest, UntrustedKeyIsRefused) {
  ExpectRefused(SignEnvelope(*stranger_, EnvelopeKind::kQuery, "{}", Now()), RefusalCode::kUntrustedKey);
  EnvelopeVerifier nobody({}, replay_.get(), clock_);
  auto v = nobody.Verify(EnvelopeKind::kQuery, SignQuery("{}"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.refusal().code_name(), "untrusted_key");
}

TEST_F(EnvelopeTest, UnsignedOrBadlySignedIsRefused) {
  Envelope e = Parsed(SignQuery("{}"));
  e.sig = "";
  ExpectRefused(EnvelopeToJson(e), RefusalCode::kBadSignature);
  e.sig = std::string(128, 'z');
  ExpectRefused(EnvelopeToJson(e), RefusalCode::kBadSignature);
  // Signed by the stranger but claiming the trusted key.
  Envelope forged = Parsed(SignQuery("{}"));
  forged.sig = ToHex(stranger_->Sign(
      SigningDigest(forged.kind, forged.key, forged.issued_at, forged.nonce, forged.payload)));
  ExpectRefused(EnvelopeToJson(forged), RefusalCode::kBadSignature);
}

// Every signed field, changed after signing, breaks the signature.
TEST_F(EnvelopeTest, TamperingWithAnySignedFieldIsABadSignature) {
  auto second = TestSigner(0x33);
  EnvelopeVerifier two({signer_->PublicKeyHex(), second->PublicKeyHex()}, replay_.get(), clock_);
  const Envelope good = Parsed(SignQuery(R"({"query_id":"q","sql":"SELECT 1"})"));
  std::vector<std::pair<std::string, Envelope>> cases;
  Envelope e = good;
  e.key = second->PublicKeyHex();  // another trusted key
  cases.emplace_back("key", e);
  e = good;
  e.issued_at -= 1;
  cases.emplace_back("issued_at", e);
  e = good;
  e.nonce[0] = e.nonce[0] == 'a' ? 'b' : 'a';
  cases.emplace_back("nonce", e);
  e = good;
  e.payload = R"({"query_id":"q","sql":"SELECT 2"})";
  cases.emplace_back("payload", e);
  e = good;
  e.sig[5] = e.sig[5] == '0' ? '1' : '0';
  cases.emplace_back("sig", e);
  for (const auto& [field, tampered] : cases) {
    auto v = two.Verify(EnvelopeKind::kQuery, EnvelopeToJson(tampered));
    ASSERT_FALSE(v.ok()) << field;
    EXPECT_EQ(v.refusal().code_name(), "bad_signature") << field;
  }
  // kind: a query envelope relabelled as a bundle.
  e = good;
  e.kind = "bundle";
  auto v = two.Verify(EnvelopeKind::kBundle, EnvelopeToJson(e));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.refusal().code_name(), "bad_signature");
  // The untouched envelope still verifies (its nonce was never consumed).
  EXPECT_TRUE(two.Verify(EnvelopeKind::kQuery, EnvelopeToJson(good)).ok());
}

TEST_F(EnvelopeTest, AgeWindowIsFiveMinutesBackOneMinuteAhead) {
  ExpectRefused(SignEnvelope(*signer_, EnvelopeKind::kQuery, "{}", Now() - 301), RefusalCode::kExpired);
  ExpectRefused(SignEnvelope(*signer_, EnvelopeKind::kQuery, "{}", Now() + 61), RefusalCode::kFromFuture);
  EXPECT_TRUE(
      verifier_->Verify(EnvelopeKind::kQuery, SignEnvelope(*signer_, EnvelopeKind::kQuery, "{}", Now() - 300))
          .ok());
  EXPECT_TRUE(
      verifier_->Verify(EnvelopeKind::kQuery, SignEnvelope(*signer_, EnvelopeKind::kQuery, "{}", Now() + 60))
          .ok());
  // The same envelope expires as the clock moves on.
  const std::string wire = SignQuery("{}");
  clock_.Advance(301'000);
  ExpectRefused(wire, RefusalCode::kExpired);
}

TEST_F(EnvelopeTest, ReplayIsRefused) {
  const std::string wire = SignQuery("{}");
  ASSERT_TRUE(verifier_->Verify(EnvelopeKind::kQuery, wire).ok());
  ExpectRefused(wire, RefusalCode::kReplayed);
  clock_.Advance(200'000);  // still within the age window
  ExpectRefused(wire, RefusalCode::kReplayed);
}

TEST_F(EnvelopeTest, ReplayStoreSurvivesARestart) {
  const std::string wire = SignQuery("{}");
  ASSERT_TRUE(verifier_->Verify(EnvelopeKind::kQuery, wire).ok());
  // A new process: a fresh store object and verifier over the same file.
  verifier_.reset();
  replay_.reset();
  auto reopened = ReplayStore::Open(dir_.File("nonces"));
  ASSERT_TRUE(reopened.ok());
  EnvelopeVerifier again({signer_->PublicKeyHex()}, reopened->get(), clock_);
  auto v = again.Verify(EnvelopeKind::kQuery, wire);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.refusal().code_name(), "replayed");
}

TEST_F(EnvelopeTest, ExpiredNoncesArePruned) {
  ASSERT_TRUE(replay_->Remember(std::string(32, 'a'), Now() + 10, Now()).ok());
  ASSERT_TRUE(replay_->Remember(std::string(32, 'b'), Now() + 1000, Now()).ok());
  clock_.Advance(11'000);
  ASSERT_TRUE(replay_->Remember(std::string(32, 'c'), Now() + 10, Now()).ok());
  const std::string text = testing::ReadFile(dir_.File("nonces"));
  EXPECT_EQ(text.find(std::string(32, 'a')), std::string::npos) << text;
  EXPECT_NE(text.find(std::string(32, 'b')), std::string::npos) << text;
  EXPECT_EQ(replay_->Remember(std::string(32, 'b'), Now() + 1000, Now()).code(), StatusCode::kAlreadyExists);
}

// The agent and `sentinelcli rules import` share the store: of several
// processes presenting the same nonce at once, exactly one is accepted.
TEST_F(EnvelopeTest, ReplayStoreAcceptsANonceOnceAcrossProcesses) {
  constexpr int kProcs = 8;
  const std::string nonce(32, 'd');
  std::vector<pid_t> pids;
  for (int i = 0; i < kProcs; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto store = ReplayStore::Open(dir_.File("nonces"));
      if (!store.ok()) ::_exit(3);
      Status s = (*store)->Remember(nonce, Now() + 100, Now());
      ::_exit(s.ok() ? 0 : s.code() == StatusCode::kAlreadyExists ? 1 : 2);
    }
    pids.push_back(pid);
  }
  int accepted = 0, replayed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    accepted += WEXITSTATUS(status) == 0;
    replayed += WEXITSTATUS(status) == 1;
  }
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(replayed, kProcs - 1);
}

TEST_F(EnvelopeTest, DamagedReplayStoreFailsClosed) {
  testing::WriteFile(dir_.File("nonces"), "garbage\n");
  EXPECT_FALSE(ReplayStore::Open(dir_.File("nonces")).ok());
  auto v = verifier_->Verify(EnvelopeKind::kQuery, SignQuery("{}"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.refusal().code_name(), "internal");
}

TEST(QueryPayloadTest, RoundTripAndDefaults) {
  QueryRequest q{"3f0c-1", "SELECT pid FROM processes", {"h1", "h2"}, 50};
  auto p = ParseQueryPayload(QueryPayloadJson(q));
  ASSERT_TRUE(p.ok()) << p.refusal().message;
  EXPECT_EQ(p->sql, q.sql);
  EXPECT_EQ(p->hosts, q.hosts);
  EXPECT_EQ(p->max_rows, 50);
  EXPECT_TRUE(QueryAddresses(*p, "h2"));
  EXPECT_FALSE(QueryAddresses(*p, "h3"));
  auto d = ParseQueryPayload(R"({"query_id":"a","sql":"SELECT 1"})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max_rows, kDefaultQueryMaxRows);
  EXPECT_TRUE(QueryAddresses(*d, "anything"));
}

TEST(QueryPayloadTest, BadPayloadsAreMalformed) {
  for (const char* bad : {"[]", "{}", R"({"query_id":"a"})", R"({"query_id":"a b","sql":"SELECT 1"})",
                          R"({"query_id":"a","sql":""})", R"({"query_id":"a","sql":"SELECT 1","hosts":[]})",
                          R"({"query_id":"a","sql":"SELECT 1","hosts":[1]})",
                          R"({"query_id":"a","sql":"SELECT 1","max_rows":0})",
                          R"({"query_id":"a","sql":"SELECT 1","max_rows":100001})"}) {
    auto p = ParseQueryPayload(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.refusal().code_name(), "malformed") << bad;
  }
}

TEST(QueryPayloadTest, RepliesGoToInboxesOnly) {
  EXPECT_TRUE(IsReplyInbox("_INBOX.abc123"));
  EXPECT_TRUE(IsReplyInbox("_INBOX.a-b_c.d1"));
  for (const char* bad : {"", "_INBOX.", "_INBOX..a", "_INBOX.a.", "sentineld.alerts.h1", "_INBOX.*",
                          "_INBOX.>", "_INBOX.a b", "_INBOXa", "$JS.API.STREAM.DELETE.SENTINELD_ALERTS"}) {
    EXPECT_FALSE(IsReplyInbox(bad)) << bad;
  }
  EXPECT_FALSE(IsReplyInbox("_INBOX." + std::string(300, 'a')));
}

TEST(ChunkWriterTest, ChunksStayWithinTheBoundAndCarryEveryRow) {
  ChunkWriter w("q", "host-1", {"pid", "name"}, 1024);
  std::vector<std::string> chunks;
  for (int i = 0; i < 200; ++i) {
    if (auto c = w.Add(json::array({i, "proc-" + std::to_string(i)}))) chunks.push_back(*c);
  }
  chunks.push_back(w.Finish(false));
  ASSERT_GT(chunks.size(), 2u);
  int64_t rows = 0;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_LE(chunks[i].size(), 1024u);
    auto c = ParseQueryChunk(chunks[i]);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->seq, static_cast<int64_t>(i));
    EXPECT_EQ(c->final, i + 1 == chunks.size());
    EXPECT_EQ(c->columns, (std::vector<std::string>{"pid", "name"}));
    for (const auto& r : c->rows) EXPECT_EQ(r[0].get<int64_t>(), rows++);
    if (c->final) {
      EXPECT_EQ(c->row_count, 200);
      EXPECT_FALSE(c->truncated);
    }
  }
  EXPECT_EQ(rows, 200);
}

TEST(ChunkWriterTest, OversizedRowBecomesNullsAndTruncated) {
  ChunkWriter w("q", "h", {"a"}, 512);
  EXPECT_FALSE(w.Add(json::array({std::string(4096, 'x')})).has_value());
  auto c = ParseQueryChunk(w.Finish(false));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->truncated);
  ASSERT_EQ(c->rows.size(), 1u);
  EXPECT_TRUE(c->rows[0][0].is_null());
}

TEST(ChunkWriterTest, InvalidUtf8FromProcessDataStillMakesValidJson) {
  ChunkWriter w("q", "h", {"name"});
  EXPECT_FALSE(w.Add(json::array({std::string("evil\xff\xfe\x01name")})).has_value());
  const std::string out = w.Finish(false);
  auto c = ParseQueryChunk(out);
  ASSERT_TRUE(c.ok()) << out;
  EXPECT_EQ(c->rows.size(), 1u);
}

TEST(ChunkWriterTest, ErrorChunkIsFinal) {
  auto c = ParseQueryChunk(ChunkWriter::Error("q", "h", {"not_select", "writes are refused"}));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->final);
  ASSERT_TRUE(c->error.has_value());
  EXPECT_EQ(c->error->code, "not_select");
}

}  // namespace
}  // namespace sentinel::fleet
