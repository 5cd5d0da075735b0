// `sentinelcli rules import BUNDLE` (SPEC §14): a signed rule bundle installed
// on an air-gapped host through the real sentinelcli binary, with the same
// checks as the agent's bundle watcher, and audited either way.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "sentinel/audit/ledger.h"
#include "sentinel/base/time.h"
#include "sentinel/fleet/bundle.h"
#include "sentinel/fleet/envelope.h"
#include "sentinel/fleet/fleet_test_util.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using testing::TestDrlRule;
using testing::TestSigner;

using nlohmann::json;

class FleetBundleCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rules_dir_ = sb_.File("rules.d");
    ::mkdir(rules_dir_.c_str(), 0755);
    auto ledger = audit::AuditLedger::Open({sb_.File("audit.db")});
    ASSERT_TRUE(ledger.ok()) << ledger.status().message();
  }
  std::vector<std::string> Env() const {
    return DetectionEnv(sb_, sb_.File("events.db"), rules_dir_,
                        {"SENTINELD_FLEET__TRUSTED_KEYS=[" + signer_->PublicKeyHex() + "]"});
  }
  RunResult Cli(const std::vector<std::string>& args) const { return sb_.Cli(args, Env()); }
  int64_t Now() const { return NowMs() / 1000; }
  std::string WriteBundle(const std::string& name, const std::string& wire) const {
    const std::string path = sb_.File(name);
    testing::WriteFile(path, wire);
    return path;
  }
  std::string Signed(const fleet::Bundle& b) const { return fleet::SignBundle(*signer_, b, Now()); }
  std::string FleetDir() const { return sb_.File("fleet-rules"); }
  std::vector<json> AuditEntries(const std::string& action) const {
    RunResult r = Cli({"audit", "list", "--limit", "0", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> out;
    for (const auto& e : json::parse(r.out)) {
      if (e["action"] == action) out.push_back(e);
    }
    return out;
  }

  Sandbox sb_;
  std::string rules_dir_;
  std::unique_ptr<audit::Signer> signer_ = TestSigner(0x61);
};

json EventData(const json& entry) {
  const json& d = entry["event_data"];
  return d.is_string() ? json::parse(d.get<std::string>()) : d;
}

TEST_F(FleetBundleCliTest, SignedBundleIsInstalledListedAndAudited) {
  const std::string path = WriteBundle(
      "b.json", Signed({"bundle-1",
                        Now(),
                        {{"one.yaml", TestDrlRule("fleet-one")}, {"two.yaml", TestDrlRule("fleet-two")}}}));
  RunResult r = Cli({"rules", "import", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "bundle bundle-1 applied: 2 rule(s)")) << r.out;
  EXPECT_EQ(ListDir(FleetDir()), (std::set<std::string>{"one.yaml", "two.yaml"}));
  EXPECT_TRUE(ListDir(rules_dir_).empty());  // the bundle goes to the fleet directory only
  RunResult list = Cli({"rules", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::set<std::string> ids;
  for (const auto& row : json::parse(list.out)) ids.insert(row["id"].get<std::string>());
  EXPECT_TRUE(ids.count("fleet-one") && ids.count("fleet-two")) << list.out;
  auto entries = AuditEntries("bundle_imported");
  ASSERT_EQ(entries.size(), 1u);
  const json d = EventData(entries[0]);
  EXPECT_EQ(d["bundle_id"], "bundle-1");
  EXPECT_EQ(d["status"], "applied");
  EXPECT_EQ(d["key"], signer_->PublicKeyHex());
}

TEST_F(FleetBundleCliTest, OneBadRuleRefusesTheWholeBundleAndKeepsThePreviousSet) {
  ASSERT_EQ(Cli({"rules", "import",
                 WriteBundle("a.json", Signed({"bundle-a", Now(), {{"a.yaml", TestDrlRule("fleet-a")}}}))})
                .exit_code,
            0);
  const std::string bad =
      WriteBundle("b.json", Signed({"bundle-b",
                                    Now(),
                                    {{"b.yaml", TestDrlRule("fleet-b")},
                                     {"evil.yaml", TestDrlRule("fleet-evil", "DELETE FROM processes")}}}));
  RunResult r = Cli({"rules", "import", bad});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_TRUE(Contains(r.err, "evil.yaml")) << r.err;
  EXPECT_TRUE(Contains(r.err, "refused (bad_rule)")) << r.err;
  EXPECT_EQ(ListDir(FleetDir()), (std::set<std::string>{"a.yaml"}));
  auto refused = AuditEntries("bundle_refused");
  ASSERT_EQ(refused.size(), 1u);
  const json d = EventData(refused[0]);
  EXPECT_EQ(d["bundle_id"], "bundle-b");
  EXPECT_EQ(d["code"], "bad_rule");
  ASSERT_EQ(d["refused"].size(), 1u);
  EXPECT_EQ(d["refused"][0]["file"], "evil.yaml");
}

TEST_F(FleetBundleCliTest, PathTraversalInAFileNameIsRefused) {
  const std::string escape = sb_.File("escaped.yaml");
  const std::string path = WriteBundle(
      "t.json",
      Signed({"bundle-t",
              Now(),
              {{"../escaped.yaml", TestDrlRule("fleet-t")}, {"/tmp/abs.yaml", TestDrlRule("fleet-u")}}}));
  RunResult r = Cli({"rules", "import", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "not a plain rule file name")) << r.err;
  EXPECT_FALSE(testing::FileExists(escape));
  EXPECT_FALSE(std::filesystem::exists(FleetDir()));
}

TEST_F(FleetBundleCliTest, UntrustedExpiredTamperedAndReplayedBundlesAreRefused) {
  const fleet::Bundle b{"bundle-x", Now(), {{"x.yaml", TestDrlRule("fleet-x")}}};
  auto stranger = TestSigner(0x62);
  struct Case {
    std::string name, wire, code;
  };
  std::string tampered = Signed(b);
  tampered.replace(tampered.find("fleet-x"), 7, "fleet-y");
  const std::vector<Case> cases = {
      {"untrusted", fleet::SignBundle(*stranger, b, Now()), "untrusted_key"},
      {"expired", fleet::SignBundle(*signer_, b, Now() - 3600), "expired"},
      {"future", fleet::SignBundle(*signer_, b, Now() + 3600), "from_future"},
      {"tampered", tampered, "bad_signature"},
      {"query", fleet::SignEnvelope(*signer_, fleet::EnvelopeKind::kQuery, "{}", Now()), "malformed"},
  };
  for (const auto& c : cases) {
    RunResult r = Cli({"rules", "import", WriteBundle(c.name + ".json", c.wire)});
    EXPECT_EQ(r.exit_code, 2) << c.name << ": " << r.err;
    EXPECT_TRUE(Contains(r.err, "refused (" + c.code + ")")) << c.name << ": " << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(FleetDir()));
  // The same signed file twice: the second run (another process) finds its nonce.
  const std::string once = WriteBundle("once.json", Signed(b));
  ASSERT_EQ(Cli({"rules", "import", once}).exit_code, 0);
  RunResult again = Cli({"rules", "import", once});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_TRUE(Contains(again.err, "refused (replayed)")) << again.err;
  EXPECT_EQ(AuditEntries("bundle_refused").size(), cases.size() + 1);
}

TEST_F(FleetBundleCliTest, OversizedBundleIsRefusedAsOversized) {
  std::string wire = Signed(
      {"bundle-o", Now(), {{"o.yaml", TestDrlRule("fleet-o") + "# " + std::string(1 << 20, 'x') + "\n"}}});
  RunResult r = Cli({"rules", "import", WriteBundle("o.json", wire)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "refused (oversized)")) << r.err;
}

TEST_F(FleetBundleCliTest, WithoutTrustedKeysNothingIsInstalled) {
  const std::string path =
      WriteBundle("b.json", Signed({"bundle-k", Now(), {{"k.yaml", TestDrlRule("fleet-k")}}}));
  RunResult r = sb_.Cli({"rules", "import", path}, DetectionEnv(sb_, sb_.File("events.db"), rules_dir_));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "fleet.trusted_keys is empty")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(FleetDir()));
}

TEST_F(FleetBundleCliTest, PlainRuleFilesStillImportAsBefore) {
  testing::WriteFile(sb_.File("plain.yaml"), TestDrlRule("plain-rule"));
  RunResult r = Cli({"rules", "import", sb_.File("plain.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ListDir(rules_dir_), (std::set<std::string>{"plain-rule.yaml"}));
}

}  // namespace
}  // namespace sentinel::itest
