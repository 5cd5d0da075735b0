#include "sentinel/health/health.h"

#include <gtest/gtest.h>

#include "sentinel/base/features.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::health {
namespace {

// procmond answering is not enough (issue 14 item 6): while its scan or
// event batch writes fail it says so, and the collector is unhealthy with
// its problems; an "ok" answer stays healthy.
TEST(CheckCollector, ProcmondReportingFailingWritesIsUnhealthyWithItsProblems) {
  testing::TempDir tmp;
  config::Config cfg;
  cfg.database.path = tmp.File("events.db");
  nlohmann::json failing = {
      {"ok", true},
      {"result",
       {{"status", "unhealthy"},
        {"pid", 42},
        {"problems",
         {"scan batch writes failing (3 failed attempts): database or disk is full",
          "event batch writes failing (1 failed attempts): database or disk is full"}}}}};
  ComponentHealth h = CheckCollector(cfg, Result<nlohmann::json>(failing), 0);
  EXPECT_EQ(h.status, "unhealthy");
  EXPECT_NE(h.detail.find("scan batch writes failing (3 failed attempts): database or disk is full"),
            std::string::npos)
      << h.detail;
  EXPECT_NE(h.detail.find("event batch writes failing"), std::string::npos) << h.detail;

  nlohmann::json fine = {{"ok", true},
                         {"result", {{"status", "ok"}, {"pid", 42}, {"problems", nlohmann::json::array()}}}};
  EXPECT_EQ(CheckCollector(cfg, Result<nlohmann::json>(fine), 0).status, "ok");
}

// A report carries the build's features (docs/building.md); read back, the features a reply names
// replace them, in this build's order, and names this build does not know are dropped.
TEST(HealthJson, FeaturesTravelWithTheReport) {
  HealthReport r;
  r.source = "sentinelagent";
  ASSERT_EQ(r.features.size(), std::size(kFeatures));
  const nlohmann::ordered_json j = HealthToJson(r);
  ASSERT_TRUE(j["features"].is_object());
  for (const FeatureInfo& f : kFeatures) EXPECT_EQ(j["features"][std::string(f.name)], f.built) << f.name;

  nlohmann::json other = j;
  other["features"] = {{"sigma", !Built(Feature::kSigma)}, {"ebpf", true}, {"\x1b[2Jevil", true}};
  auto back = HealthFromJson(other);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->features, (std::vector<FeatureState>{{"ebpf", true}, {"sigma", !Built(Feature::kSigma)}}));
  // A reply without features (an older agent) keeps this build's.
  other.erase("features");
  EXPECT_EQ(HealthFromJson(other)->features, BuildFeatures());
}

}  // namespace
}  // namespace sentinel::health
