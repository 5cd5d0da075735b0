// The console's web UI (SPEC §16 "the console serves the same across hosts",
// docs/web-ui.md): the real `sentinelfleet serve` with console.http_listen on
// a free loopback port, fed by a real NATS JetStream server with alerts of two
// hosts (one carrying HTML and script in its title and process name) and
// their heartbeats. Its HTTP answers, a taken port, and what headless
// Chromium renders: alerts of every host with the host column and filter,
// the hosts with their heartbeat health, an alert whose tree is named as
// being on its host. Skipped with the reason when nats-server (or, for the
// browser, chromium) is not installed.
#include <signal.h>

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/base/time.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/testing/nats_cluster.h"
#include "sentinel/testing/net.h"
#include "tests/fleet/fleet_harness.h"
#include "tests/integration/browser.h"
#include "tests/integration/harness.h"

namespace sentinel::fleettest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::NatsCluster;

constexpr const char* kTitleProbe = "<script>alert(1)</script>";
constexpr const char* kNameProbe = "<img src=x onerror=alert(2)>";

std::string HostileAlert(int64_t id) {
  return json{{"id", id},
              {"alert_time", NowMs()},
              {"rule_id", "web-probe"},
              {"title", kTitleProbe},
              {"description", "a <b>bold</b> claim"},
              {"severity", "critical"},
              {"status", "open"},
              {"process_count", 1},
              {"affected_processes", {{{"pid", 4242}, {"name", kNameProbe}, {"exe_path", "/tmp/x"}}}}}
      .dump();
}

class ConsoleWebTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
    auto cluster = NatsCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status().message();
    cluster_ = std::move(*cluster);
    console_ = std::make_unique<Console>(cluster_->urls());
    port_ = testing::FreePort();
    {
      std::ofstream cfg(console_->config(), std::ios::app);  // the console: section is the file's last
      cfg << "  http_listen: \"127.0.0.1:" << port_ << "\"\n";
    }
    auto init = console_->Run({"init"});
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    client_ = TestClient(cluster_->urls());
    ASSERT_NE(client_, nullptr);
    serve_ = std::make_unique<itest::Child>(console_->Argv({"serve"}), console_->Env(),
                                            console_->File("serve.log"), console_->File("serve.log"), true);
    for (const auto& [host, id, body] : std::vector<std::tuple<std::string, int64_t, std::string>>{
             {"h1", 1, HostileAlert(1)},
             {"h1", 2, AlertJson(2, "second alert of h1", "rule-two")},
             {"h2", 7, AlertJson(7, "alert of h2", "rule-two")}}) {
      auto ack = client_->JsPublish(fleet::AlertSubject(host), body, host + ":" + std::to_string(id), 5000);
      ASSERT_TRUE(ack.ok()) << ack.status().message();
    }
    PutHeartbeat(*client_, "h1", "<b>web-1</b>");
    PutHeartbeat(*client_, "h2", "db-1");
    http_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    http_->set_connection_timeout(2);
    ASSERT_TRUE(itest::WaitFor(
        [&] {
          auto a = http_->Get("/api/alerts");
          auto h = http_->Get("/api/hosts");
          return a && a->status == 200 && json::parse(a->body)["alerts"].size() == 3 && h &&
                 h->status == 200 && json::parse(h->body)["hosts"].size() == 2;
        },
        60s))
        << testing::ReadFile(console_->File("serve.log"));
  }
  void TearDown() override {
    if (serve_) {
      serve_->Signal(SIGTERM);
      serve_->Wait(30s);
    }
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string DumpDom(const std::string& url) {
    testing::RunResult r = itest::RunChromium(console_->File("chromium-" + std::to_string(++runs_)),
                                              {"--dump-dom"}, url, console_->Env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
  int64_t ConsoleIdOf(const std::string& host, const std::string& alert_id) {
    const json page = json::parse(http_->Get("/api/alerts?host=" + host)->body);
    for (const auto& a : page["alerts"]) {
      if (a["alert_id"] == alert_id) return a["id"];
    }
    return 0;
  }

  std::unique_ptr<NatsCluster> cluster_;
  std::unique_ptr<Console> console_;
  std::unique_ptr<fleet::NatsClient> client_;
  std::unique_ptr<itest::Child> serve_;
  std::unique_ptr<httplib::Client> http_;
  int port_ = 0;
  int runs_ = 0;
};

TEST_F(ConsoleWebTest, ServesEveryHostsAlertsItsHostsAndItsHealth) {
  auto info = http_->Get("/api/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["mode"], "console");
  EXPECT_EQ(info->get_header_value("Content-Security-Policy").rfind("default-src 'none'; ", 0), 0u);
  EXPECT_EQ(info->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(http_->Get("/")->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(http_->Post("/api/alerts", "", "text/plain")->status, 405);

  // Filters, the host among them.
  auto rules_of = [&](const std::string& query) {
    std::vector<std::string> out;
    auto r = http_->Get("/api/alerts" + query);
    if (!r || r->status != 200) return out;
    const json page = json::parse(r->body);
    for (const auto& a : page["alerts"])
      out.push_back(a["host_id"].get<std::string>() + "/" + a["rule_id"].get<std::string>());
    return out;
  };
  EXPECT_EQ(rules_of("?host=h2"), std::vector<std::string>{"h2/rule-two"});
  EXPECT_EQ(rules_of("?host=h1").size(), 2u);
  EXPECT_EQ(rules_of("?severity=critical"), std::vector<std::string>{"h1/web-probe"});
  EXPECT_EQ(rules_of("?q=onerror"), std::vector<std::string>{"h1/web-probe"});
  EXPECT_EQ(rules_of("?rule=rule-two").size(), 2u);
  EXPECT_EQ(rules_of("?status=open").size(), 3u);
  auto bad_host = http_->Get("/api/alerts?host=h1.evil");
  ASSERT_TRUE(bad_host);
  EXPECT_EQ(bad_host->status, 400);
  EXPECT_EQ(json::parse(bad_host->body)["parameter"], "host");

  // The hostile alert: exact for a JSON reader, no markup in the bytes.
  const int64_t id = ConsoleIdOf("h1", "1");
  ASSERT_GT(id, 0);
  auto one = http_->Get("/api/alerts/" + std::to_string(id));
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(one->body.find('<'), std::string::npos) << one->body;
  const json alert = json::parse(one->body);
  EXPECT_EQ(alert["host_id"], "h1");
  EXPECT_EQ(alert["alert"]["title"], kTitleProbe);
  EXPECT_EQ(alert["alert"]["affected_processes"][0]["name"], kNameProbe);
  auto tree = http_->Get("/api/alerts/" + std::to_string(id) + "/tree");
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->status, 404);
  EXPECT_NE(json::parse(tree->body)["error"].get<std::string>().find("sentinelcli alerts show 1 --tree"),
            std::string::npos)
      << tree->body;

  // Hosts and the console's own health.
  const json hosts = json::parse(http_->Get("/api/hosts")->body)["hosts"];
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0]["host_id"], "h1");
  EXPECT_EQ(hosts[0]["hostname"], "<b>web-1</b>");
  EXPECT_EQ(hosts[0]["health"], "ok");
  EXPECT_EQ(hosts[0]["stale"], false);
  auto health = http_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
  const json h = json::parse(health->body);
  EXPECT_EQ(h["status"], "healthy") << h.dump(2);
  EXPECT_EQ(h["components"][0]["name"], "store");
  EXPECT_EQ(h["components"][1]["name"], "ingest");
  EXPECT_EQ(http_->Get("/api/hosts", {{"Host", "evil.example.com"}})->status, 403);

  // A second serve on the same address stops at once, naming the key (exit 1: the host's state).
  testing::RunResult second = console_->Run({"serve"});
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_NE(second.err.find("console.http_listen: cannot listen on 127.0.0.1:" + std::to_string(port_)),
            std::string::npos)
      << second.err;
}

TEST_F(ConsoleWebTest, ABrowserShowsAlertsAcrossHostsAndTheHosts) {
  if (itest::ChromiumPath().empty()) {
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh installs it): no browser to drive";
  }
  const std::string list = DumpDom(Url("/"));
  EXPECT_NE(list.find("data-state=\"ready\""), std::string::npos) << list;
  EXPECT_EQ(itest::CountOf(list, "class=\"alert-row\""), 3u) << list;
  EXPECT_EQ(itest::CountOf(list, "<td class=\"host\">h1</td>"), 2u) << list;
  EXPECT_NE(list.find("id=\"host-filter\">"), std::string::npos) << "the host filter is shown\n" << list;
  EXPECT_NE(list.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << list;
  EXPECT_NE(list.find("&lt;img src=x onerror=alert(2)&gt;"), std::string::npos) << list;
  EXPECT_EQ(list.find("<img"), std::string::npos) << list;
  EXPECT_EQ(itest::CountOf(list, "<script"), 1u) << list;

  const std::string h2 = DumpDom(Url("/#host=h2"));
  EXPECT_EQ(itest::CountOf(h2, "class=\"alert-row\""), 1u) << h2;

  const std::string hosts = DumpDom(Url("/#view=hosts"));
  EXPECT_NE(hosts.find("class=\"host-row\" data-host=\"h1\""), std::string::npos) << hosts;
  EXPECT_NE(hosts.find("class=\"host-row\" data-host=\"h2\""), std::string::npos) << hosts;
  EXPECT_NE(hosts.find("&lt;b&gt;web-1&lt;/b&gt;"), std::string::npos) << hosts;
  EXPECT_EQ(hosts.find("<b>"), std::string::npos) << hosts;

  const int64_t id = ConsoleIdOf("h1", "1");
  const std::string one = DumpDom(Url("/#alert=" + std::to_string(id)));
  EXPECT_NE(one.find("data-state=\"ready\""), std::string::npos) << one;
  EXPECT_NE(one.find("class=\"tree-note\""), std::string::npos) << one;
  EXPECT_NE(one.find("sentinelcli alerts show 1 --tree"), std::string::npos) << one;
  EXPECT_NE(one.find("class=\"proc-row\""), std::string::npos) << one;
  EXPECT_NE(one.find("a &lt;b&gt;bold&lt;/b&gt; claim"), std::string::npos) << one;
  EXPECT_EQ(one.find("<img"), std::string::npos) << one;
  for (const std::string& page : {list, hosts, one}) {
    EXPECT_EQ(page.find(">null<"), std::string::npos) << "a missing value shown as null\n" << page;
    EXPECT_EQ(page.find("undefined"), std::string::npos) << page;
  }

  // For a person to look at: SENTINEL_SCREENSHOT_DIR=/some/dir keeps screenshots of the views.
  if (const char* keep = std::getenv("SENTINEL_SCREENSHOT_DIR"); keep != nullptr && *keep != '\0') {
    for (const auto& [name, path] : std::vector<std::pair<std::string, std::string>>{
             {"console-list.png", "/"},
             {"console-hosts.png", "/#view=hosts"},
             {"console-alert.png", "/#alert=" + std::to_string(id)}}) {
      itest::RunChromium(console_->File("chromium-" + std::to_string(++runs_)),
                         {"--screenshot=" + std::string(keep) + "/web-ui-" + name, "--window-size=1280,900"},
                         Url(path), console_->Env());
    }
  }
}

}  // namespace
}  // namespace sentinel::fleettest
