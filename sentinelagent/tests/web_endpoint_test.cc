// The agent's web answers (web_endpoint.h) over a real event store: the
// alert list's filters and pages, one alert, a store that is missing and
// then appears, the Host check, and telemetry.web_ui: false.
#include "sentinelagent/web_endpoint.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/alertstore/test_util.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::agent {
namespace {

using nlohmann::json;

webui::HttpRequest Get(std::string path, std::string query = "", std::string host = "127.0.0.1:9464") {
  return webui::HttpRequest{"GET", std::move(path), std::move(query), std::move(host)};
}

class AgentWebTest : public ::testing::Test {
 protected:
  AgentWebTest() : ops_(cfg_, "test") { cfg_.database.path = store_.path(); }
  std::unique_ptr<AgentWeb> Web(bool ui = true) {
    config::TelemetryConfig t;
    t.web_ui = ui;
    return std::make_unique<AgentWeb>(ops_, cfg_.database, t, "test");
  }
  static json Body(const webui::HttpResponse& r) { return json::parse(r.body); }

  config::Config cfg_;
  alerting::internal::TempEventStore store_;
  AgentOps ops_;
};

TEST_F(AgentWebTest, ListsFiltersAndPagesTheAlerts) {
  store_.InsertAlerts(3, "low");
  store_.InsertAlerts(2, "critical");
  ASSERT_TRUE(store_.db()
                  .Exec("UPDATE alerts SET affected_processes = '[{\"pid\":9,\"name\":\"<b>x</b>\"}]', "
                        "status = 'closed' WHERE id = 5")
                  .ok());
  auto web = Web();
  webui::HttpResponse all = web->Answer(Get("/api/alerts"));
  ASSERT_EQ(all.code, 200) << all.body;
  EXPECT_EQ(all.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(Body(all)["alerts"].size(), 5u);
  EXPECT_EQ(Body(all)["more"], false);
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts", "severity=high")))["alerts"].size(), 2u);
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts", "status=closed")))["alerts"][0]["id"], 5);
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts", "q=%3Cb%3E")))["alerts"].size(), 1u);
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts", "q=50%25")))["alerts"].size(), 0u) << "% is literal";
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts", "rule=test-rule")))["alerts"].size(), 5u);
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts", "rule=other")))["alerts"].size(), 0u);
  const json first = Body(web->Answer(Get("/api/alerts", "limit=2")));
  EXPECT_EQ(first["alerts"].size(), 2u);
  EXPECT_EQ(first["more"], true);
  const json last = Body(web->Answer(Get("/api/alerts", "limit=2&offset=4")));
  EXPECT_EQ(last["alerts"].size(), 1u);
  EXPECT_EQ(last["more"], false);
  EXPECT_EQ(last["offset"], 4);

  webui::HttpResponse one = web->Answer(Get("/api/alerts/5"));
  ASSERT_EQ(one.code, 200);
  EXPECT_EQ(one.body.find('<'), std::string::npos) << one.body;
  EXPECT_EQ(Body(one)["affected_processes"][0]["name"], "<b>x</b>");
  EXPECT_EQ(web->Answer(Get("/api/alerts/6")).code, 404);
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts/0")))["parameter"], "id");
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts/5", "x=1")))["parameter"], "x");
  EXPECT_EQ(Body(web->Answer(Get("/api/alerts", "offset=-1")))["parameter"], "offset");
}

TEST_F(AgentWebTest, AMissingStoreIs503UntilItExists) {
  testing::TempDir elsewhere;
  config::DatabaseConfig missing = cfg_.database;
  missing.path = elsewhere.File("events.db");
  AgentWeb web(ops_, missing, config::TelemetryConfig{}, "test");
  webui::HttpResponse r = web.Answer(Get("/api/alerts"));
  EXPECT_EQ(r.code, 503) << r.body;
  EXPECT_NE(Body(r)["error"].get<std::string>().find("event store unavailable"), std::string::npos) << r.body;
  // The store appears (the agent creates it): the next request opens it.
  auto created = storage::EventStore::Open({missing.path, storage::OpenMode::kReadWrite, 5000});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(web.Answer(Get("/api/alerts")).code, 200);
}

TEST_F(AgentWebTest, TheUiAnswersThisMachinesNamesAndCanBeTurnedOff) {
  auto web = Web();
  EXPECT_EQ(web->Answer(Get("/")).code, 200);
  EXPECT_EQ(web->Answer(Get("/")).content_type, "text/html; charset=utf-8");
  EXPECT_EQ(web->Answer(Get("/api/info")).code, 200);
  EXPECT_EQ(Body(web->Answer(Get("/api/info")))["mode"], "agent");
  EXPECT_EQ(web->Answer(Get("/", "", "rebound.example.com:9464")).code, 403);
  EXPECT_EQ(web->Answer(Get("/api/alerts", "", "rebound.example.com")).code, 403);
  EXPECT_EQ(web->Answer(Get("/nothing")).code, 404);
  EXPECT_EQ(web->Answer(Get("/api/nothing")).code, 404);

  auto off = Web(/*ui=*/false);
  for (const char* path : {"/", "/index.html", "/app.js", "/api/info", "/api/alerts", "/api/alerts/1"}) {
    EXPECT_EQ(off->Answer(Get(path)).code, 404) << path;
  }
}

}  // namespace
}  // namespace sentinel::agent
