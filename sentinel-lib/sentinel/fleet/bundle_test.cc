#include "sentinel/fleet/bundle.h"
#include "sentinel/fleet/fleet_test_util.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "sentinel/testing/fake_clock.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::fleet {
namespace {

using testing::TestDrlRule;
using testing::TestSigner;

namespace fs = std::filesystem;
using testing::FakeClock;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

std::string SigmaRule() {
  return "title: Fleet sigma probe\n"
         "id: 6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\n"
         "status: test\n"
         "logsource:\n    product: linux\n    category: process_creation\n"
         "detection:\n    selection:\n        Image|endswith: '/fleet-probe'\n    condition: selection\n"
         "level: medium\n";
}

std::set<std::string> ListDir(const fs::path& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.insert(e.path().filename().string());
  return out;
}

TEST(BundleTest, PlainFileNames) {
  for (const char* ok : {"x.yaml", "a-b_c.1.yml", "UPPER.yaml"}) EXPECT_TRUE(IsPlainRuleFileName(ok)) << ok;
  for (const char* bad :
       {"", ".yaml", ".yml", "../x.yaml", "/etc/x.yaml", "a/b.yaml", ".hidden.yaml", "x.txt", "x.yaml\n",
        "..", "x y.yaml", "x.yaml/", "a\\b.yaml", "x.yaml.sh", "..yaml"}) {
    EXPECT_FALSE(IsPlainRuleFileName(bad)) << bad;
  }
  EXPECT_FALSE(IsPlainRuleFileName(std::string(200, 'a') + ".yaml"));
  EXPECT_FALSE(IsPlainRuleFileName(std::string("x\0.yaml", 7)));
}

TEST(BundleTest, PayloadRoundTrip) {
  Bundle b{"9a8b-1", 1764820000, {{"a.yaml", TestDrlRule("a")}, {"b.yml", SigmaRule()}}};
  auto p = ParseBundlePayload(BundlePayloadJson(b));
  ASSERT_TRUE(p.ok()) << p.refusal().message;
  EXPECT_EQ(p->bundle_id, b.bundle_id);
  EXPECT_EQ(p->created_at, b.created_at);
  ASSERT_EQ(p->rules.size(), 2u);
  EXPECT_EQ(p->rules[1].file, "b.yml");
  EXPECT_EQ(p->rules[1].content, SigmaRule());
}

TEST(BundleTest, MalformedPayloads) {
  for (const char* bad : {"x", "[]", R"({"created_at":1,"rules":[{"file":"a.yaml","content":""}]})",
                          R"({"bundle_id":"a/b","created_at":1,"rules":[{"file":"a.yaml","content":""}]})",
                          R"({"bundle_id":"a","rules":[{"file":"a.yaml","content":""}]})",
                          R"({"bundle_id":"a","created_at":1,"rules":[]})",
                          R"({"bundle_id":"a","created_at":1,"rules":[{"file":"a.yaml"}]})",
                          R"({"bundle_id":"a","created_at":1,"rules":["a.yaml"]})"}) {
    auto p = ParseBundlePayload(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.refusal().code_name(), "malformed") << bad;
  }
}

TEST(BundleTest, PackReadsTheRuleFilesOfADirectory) {
  TempDir dir;
  WriteFile(dir.File("a.yaml"), TestDrlRule("a"));
  WriteFile(dir.File("b.yml"), SigmaRule());
  WriteFile(dir.File("notes.txt"), "not a rule");
  auto b = PackBundleDir(dir.path(), 123);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->created_at, 123);
  EXPECT_EQ(b->bundle_id.size(), 36u);
  ASSERT_EQ(b->rules.size(), 2u);
  EXPECT_EQ(b->rules[0].file, "a.yaml");
  EXPECT_EQ(b->rules[0].content, TestDrlRule("a"));
  TempDir empty;
  EXPECT_FALSE(PackBundleDir(empty.path(), 1).ok());
}

TEST(BundleTest, ValidateAcceptsDrlAndSigma) {
  Bundle b{"b1", 1, {{"a.yaml", TestDrlRule("fleet-a")}, {"s.yml", SigmaRule()}}};
  auto check = ValidateBundle(b, {});
  ASSERT_TRUE(check.ok()) << check.status().message();
  EXPECT_TRUE(check->ok()) << check->refused.front().error;
  ASSERT_EQ(check->rules.size(), 2u);
  EXPECT_EQ(check->rules[0].id, "fleet-a");
}

TEST(BundleTest, ValidateRefusesEachBadFileAndNamesIt) {
  auto builtin = detection::BuiltinRules();
  ASSERT_TRUE(builtin.ok());
  const std::string taken = builtin->front().id;
  Bundle b{"b1",
           1,
           {{"good.yaml", TestDrlRule("fleet-good")},
            {"../escape.yaml", TestDrlRule("fleet-escape")},
            {"/etc/abs.yaml", TestDrlRule("fleet-abs")},
            {"writes.yaml", TestDrlRule("fleet-writes", "DELETE FROM processes")},
            {"attach.yaml", TestDrlRule("fleet-attach", "SELECT * FROM pragma_table_info('processes')")},
            {"notyaml.yaml", "{{{{"},
            {"dup-id.yaml", TestDrlRule("fleet-good")},
            {"good.yaml", TestDrlRule("fleet-good-2")},
            {"taken.yaml", TestDrlRule(taken)}}};
  auto check = ValidateBundle(b, *builtin);
  ASSERT_TRUE(check.ok()) << check.status().message();
  EXPECT_FALSE(check->ok());
  std::set<std::string> refused;
  for (const auto& r : check->refused) {
    refused.insert(r.file);
    EXPECT_FALSE(r.error.empty()) << r.file;
  }
  EXPECT_EQ(refused, (std::set<std::string>{"../escape.yaml", "/etc/abs.yaml", "writes.yaml", "attach.yaml",
                                            "notyaml.yaml", "dup-id.yaml", "good.yaml", "taken.yaml"}));
  ASSERT_EQ(check->rules.size(), 1u);
  EXPECT_EQ(check->rules[0].id, "fleet-good");
}

class InstallTest : public ::testing::Test {
 protected:
  fs::path Dir() const { return fs::path(root_.path()) / "fleet-rules"; }
  TempDir root_;
};

TEST_F(InstallTest, InstallReplacesTheWholeSet) {
  ASSERT_TRUE(
      InstallBundle({"b1", 1, {{"a.yaml", TestDrlRule("a")}, {"b.yaml", TestDrlRule("b")}}}, Dir()).ok());
  EXPECT_EQ(ListDir(Dir()), (std::set<std::string>{"a.yaml", "b.yaml"}));
  struct stat st {};
  ASSERT_EQ(::stat((Dir() / "a.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(::stat(Dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_TRUE(InstallBundle({"b2", 2, {{"c.yaml", TestDrlRule("c")}}}, Dir()).ok());
  EXPECT_EQ(ListDir(Dir()), (std::set<std::string>{"c.yaml"}));
  EXPECT_EQ(ReadFile((Dir() / "c.yaml").string()), TestDrlRule("c"));
  // Nothing left beside it: no staging or old directories.
  EXPECT_EQ(ListDir(root_.path()), (std::set<std::string>{"fleet-rules"}));
}

TEST_F(InstallTest, FailedInstallKeepsThePreviousSet) {
  ASSERT_TRUE(InstallBundle({"b1", 1, {{"a.yaml", TestDrlRule("a")}}}, Dir()).ok());
  // The second file cannot be written (same name): the swap never happens.
  Status s = InstallBundle({"b2", 2, {{"c.yaml", TestDrlRule("c")}, {"c.yaml", TestDrlRule("d")}}}, Dir());
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(ListDir(Dir()), (std::set<std::string>{"a.yaml"}));
  EXPECT_EQ(ListDir(root_.path()), (std::set<std::string>{"fleet-rules"}));
}

TEST_F(InstallTest, InstallRefusesPathsOutsideTheDirectory) {
  EXPECT_FALSE(InstallBundle({"b1", 1, {{"../x.yaml", TestDrlRule("x")}}}, Dir()).ok());
  EXPECT_FALSE(fs::exists(fs::path(root_.path()) / "x.yaml"));
  EXPECT_EQ(ListDir(root_.path()), (std::set<std::string>{}));
}

TEST_F(InstallTest, InstallRefusesASymlinkInPlaceOfTheDirectory) {
  TempDir elsewhere;
  fs::create_directory_symlink(elsewhere.path(), Dir());
  EXPECT_FALSE(InstallBundle({"b1", 1, {{"a.yaml", TestDrlRule("a")}}}, Dir()).ok());
  EXPECT_TRUE(ListDir(elsewhere.path()).empty());
}

class ApplyTest : public InstallTest {
 protected:
  void SetUp() override {
    auto store = ReplayStore::Open(root_.File("nonces"));
    ASSERT_TRUE(store.ok());
    replay_ = std::move(*store);
    verifier_ = std::make_unique<EnvelopeVerifier>(std::vector<std::string>{signer_->PublicKeyHex()},
                                                   replay_.get(), clock_);
  }
  BundleApplyResult Apply(const std::string& wire) {
    return ApplyBundleEnvelope(wire, *verifier_, others_, Dir(), clock_.NowMs() / 1000);
  }
  std::string Sign(const Bundle& b) { return SignBundle(*signer_, b, clock_.NowMs() / 1000); }

  FakeClock clock_;
  std::unique_ptr<audit::Signer> signer_ = TestSigner(0x44);
  std::unique_ptr<ReplayStore> replay_;
  std::unique_ptr<EnvelopeVerifier> verifier_;
  std::vector<detection::Rule> others_;
};

TEST_F(ApplyTest, GoodBundleIsAppliedAndReported) {
  auto r = Apply(Sign({"b-1", 1, {{"a.yaml", TestDrlRule("fleet-a")}, {"s.yml", SigmaRule()}}}));
  EXPECT_TRUE(r.error.ok());
  EXPECT_EQ(r.status.status, "applied") << r.status.message;
  EXPECT_EQ(r.status.loaded, 2);
  EXPECT_EQ(r.key, signer_->PublicKeyHex());
  EXPECT_EQ(ListDir(Dir()), (std::set<std::string>{"a.yaml", "s.yml"}));
  auto loaded = detection::LoadRuleSet(false, {Dir().string()});
  EXPECT_EQ(loaded.rules.size(), 2u);
  EXPECT_TRUE(loaded.problems.empty());
  nlohmann::json j = r.status.ToJson();
  EXPECT_EQ(j["bundle_id"], "b-1");
  EXPECT_EQ(j["status"], "applied");
  EXPECT_EQ(j["loaded"], 2);
  EXPECT_TRUE(j["refused"].empty());
  auto back = BundleStatus::FromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->bundle_id, "b-1");
}

TEST_F(ApplyTest, OneBadRuleRefusesTheWholeBundleAndKeepsThePreviousSet) {
  ASSERT_EQ(Apply(Sign({"b-1", 1, {{"a.yaml", TestDrlRule("fleet-a")}}})).status.status, "applied");
  auto r = Apply(Sign({"b-2",
                       2,
                       {{"b.yaml", TestDrlRule("fleet-b")},
                        {"bad.yaml", TestDrlRule("fleet-bad", "DROP TABLE processes")}}}));
  EXPECT_EQ(r.status.status, "refused");
  EXPECT_EQ(r.status.refusal_code, "bad_rule");
  EXPECT_EQ(r.status.bundle_id, "b-2");
  ASSERT_EQ(r.status.refused.size(), 1u);
  EXPECT_EQ(r.status.refused[0].file, "bad.yaml");
  EXPECT_EQ(ListDir(Dir()), (std::set<std::string>{"a.yaml"}));
  EXPECT_EQ(ReadFile((Dir() / "a.yaml").string()), TestDrlRule("fleet-a"));
}

TEST_F(ApplyTest, TraversalNamesAreRefusedAndNothingIsWrittenOutside) {
  auto r = Apply(
      Sign({"b-3", 3, {{"../evil.yaml", TestDrlRule("fleet-evil")}, {"ok.yaml", TestDrlRule("fleet-ok")}}}));
  EXPECT_EQ(r.status.refusal_code, "bad_rule");
  EXPECT_FALSE(fs::exists(Dir()));
  EXPECT_FALSE(fs::exists(fs::path(root_.path()) / "evil.yaml"));
}

TEST_F(ApplyTest, EnvelopeRefusalsReachTheStatus) {
  auto stranger = TestSigner(0x55);
  auto r =
      Apply(SignBundle(*stranger, {"b-4", 4, {{"a.yaml", TestDrlRule("fleet-a")}}}, clock_.NowMs() / 1000));
  EXPECT_EQ(r.status.status, "refused");
  EXPECT_EQ(r.status.refusal_code, "untrusted_key");
  EXPECT_FALSE(r.nonce.empty());
  const std::string wire = Sign({"b-5", 5, {{"a.yaml", TestDrlRule("fleet-a")}}});
  ASSERT_EQ(Apply(wire).status.status, "applied");
  EXPECT_EQ(Apply(wire).status.refusal_code, "replayed");
  // A query envelope is not a bundle.
  auto q = Apply(SignEnvelope(*signer_, EnvelopeKind::kQuery, "{}", clock_.NowMs() / 1000));
  EXPECT_EQ(q.status.refusal_code, "malformed");
  EXPECT_EQ(ListDir(Dir()), (std::set<std::string>{"a.yaml"}));
}

TEST(BundleStatusTest, HeartbeatFormIsBounded) {
  BundleStatus s;
  s.bundle_id = "b";
  s.status = "refused";
  s.refusal_code = "bad_rule";
  s.message = std::string(100'000, 'm');
  for (int i = 0; i < 1000; ++i)
    s.refused.push_back({"f" + std::to_string(i) + ".yaml", std::string(5000, 'e')});
  const nlohmann::json j = s.ToHeartbeatJson();
  EXPECT_LT(j.dump().size(), 16u * 1024);
  EXPECT_EQ(j["refused_count"], 1000);
  EXPECT_EQ(j["refused"].size(), BundleStatus::kHeartbeatRefused);
  EXPECT_EQ(j["refused"][0]["file"], "f0.yaml");
  EXPECT_EQ(s.ToJson()["refused"].size(), 1000u);  // the full form (state file, audit)
}

TEST_F(ApplyTest, ClashWithALocalRuleIsABadRule) {
  others_ = {detection::Rule{}};
  others_[0].id = "fleet-a";
  others_[0].source_path = "/etc/sentineld/rules.d/fleet-a.yaml";
  auto r = Apply(Sign({"b-6", 6, {{"a.yaml", TestDrlRule("fleet-a")}}}));
  EXPECT_EQ(r.status.refusal_code, "bad_rule");
  ASSERT_EQ(r.status.refused.size(), 1u);
  EXPECT_NE(r.status.refused[0].error.find("/etc/sentineld/rules.d/fleet-a.yaml"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::fleet
