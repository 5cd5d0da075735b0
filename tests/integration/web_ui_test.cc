// The agent's web UI (SPEC §16, docs/web-ui.md) through the real binaries and
// a real browser: procmond scans a store while a probe process runs whose
// argv carries HTML and script; `sentinelagent --once` raises real alerts on
// it (one names its process `<script>alert(1)</script>`); then the agent
// serves the store (--no-collector) on a free loopback port.
//   - HTTP: the security headers on every answer, 405 for other methods, 400
//     naming a bad parameter, 404, 403 for a foreign Host, JSON that carries
//     no markup, /metrics through promtool;
//   - headless Chromium (skipped with the reason when it is not installed):
//     the rendered DOM of the alert list, of an alert's process tree and of
//     health, with the probe present as text and nothing of it executed or
//     turned into elements, and screenshots of the list and of the tree that
//     are 1280x900 and not blank.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "sentinel/testing/net.h"
#include "tests/integration/browser.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kScriptProbe = "<script>alert(1)</script>";
constexpr const char* kArgProbe = "--x=<img src=x onerror=alert(2)>";
// In the probe's argv, with this test's pid: another run's probe (a concurrent run) never matches.
const std::string kMarker = "sentinel-web-probe-" + std::to_string(::getpid());

const char* const kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// Rules over the probe: the critical one names the process with the script probe.
std::string ProbeRule(const std::string& id, const std::string& severity, const std::string& name_expr) {
  return "id: " + id + "\nname: Web probe " + severity + "\nseverity: " + severity +
         "\ndescription: The probe's shell, <b>for</b> the web UI test.\ndedup_keys: [pid]\nquery: |\n"
         "  SELECT pid, start_time, " +
         name_expr + " AS name, exe_path, command_line FROM processes WHERE command_line LIKE '%" + kMarker +
         "%'\n";
}

class WebUiTest : public ::testing::Test {
 protected:
  // One store, alerts and agent for the whole suite: building them takes a scan and a detection run.
  static void SetUpTestSuite() { env_ = new Env(); }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }

  struct Env {
    Env();
    ~Env();
    Sandbox sb;
    std::string db;
    std::unique_ptr<Child> probe;
    pid_t probe_child = 0;  // the probe's `sleep`
    std::unique_ptr<Child> agent;
    int port = 0;
    int64_t critical_id = 0;
    std::string setup_error;
  };
  static Env* env_;

  void SetUp() override { ASSERT_EQ(env_->setup_error, "") << env_->setup_error; }
  std::unique_ptr<httplib::Client> Http() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", env_->port);
    c->set_connection_timeout(5);
    c->set_read_timeout(30);
    return c;
  }
  std::string Url(const std::string& path_and_fragment) const {
    return "http://127.0.0.1:" + std::to_string(env_->port) + path_and_fragment;
  }
  std::string AgentLog() const { return testing::ReadFile(env_->sb.File("agent.err")); }

  // Headless Chromium on `url` with `args` (--dump-dom or --screenshot=...): stdout.
  RunResult Chromium(const std::vector<std::string>& args, const std::string& url) const {
    static int run = 0;
    return RunChromium(env_->sb.File("chromium-" + std::to_string(++run)), args, url, env_->sb.Env());
  }
  std::string DumpDom(const std::string& url) const {
    RunResult r = Chromium({"--dump-dom"}, url);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
};

WebUiTest::Env* WebUiTest::env_ = nullptr;

WebUiTest::Env::Env() {
  const std::string rules = sb.File("rules.d");
  ::mkdir(rules.c_str(), 0755);
  testing::WriteFile(rules + "/critical.yaml",
                     ProbeRule("web-probe-critical", "critical", std::string("'") + kScriptProbe + "'"));
  testing::WriteFile(rules + "/medium.yaml", ProbeRule("web-probe-medium", "medium", "name"));
  testing::WriteFile(rules + "/low.yaml", ProbeRule("web-probe-low", "low", "name"));
  // The probe: a shell whose argv carries HTML and script, with a child, alive through the scan.
  probe = std::make_unique<Child>(
      std::vector<std::string>{"/bin/sh", "-c", "sleep 600; :", kScriptProbe, kArgProbe, kMarker},
      std::vector<std::string>{}, "", "", /*new_group=*/true);
  if (!WaitFor([&] { return !LiveChildren(probe->pid()).empty(); }, 30s)) {
    setup_error = "the probe's sleep did not start";
    return;
  }
  probe_child = LiveChildren(probe->pid()).front().first;
  db = sb.File("events.db");
  // Only the probe's rules: the built-in ones would alert on whatever else this host runs.
  const std::vector<std::string> env = DetectionEnv(
      sb, db, rules,
      {"SENTINELD_IPC__SOCKET_DIR=" + sb.File("run"), "SENTINELD_DETECTION__BUILTIN_RULES=false"});
  RunResult scan = sb.Procmond({"--once"}, env);
  if (scan.exit_code != 0) {
    setup_error = "procmond --once: " + scan.err;
    return;
  }
  RunResult once = sb.Agent({"--once", "--no-collector"}, env);
  if (once.exit_code != 0 || QueryInt(db, "SELECT COUNT(*) FROM alerts") != 3) {
    setup_error = "sentinelagent --once did not raise the 3 alerts: " + once.err;
    return;
  }
  critical_id = QueryInt(db, "SELECT id FROM alerts WHERE rule_id = 'web-probe-critical'").value_or(0);
  port = testing::FreePort();
  std::vector<std::string> agent_env = env;
  agent_env.push_back("SENTINELD_TELEMETRY__HTTP_LISTEN=127.0.0.1:" + std::to_string(port));
  agent_env.push_back("SENTINELD_DETECTION__INTERVAL_SECS=3600");
  agent = std::make_unique<Child>(std::vector<std::string>{AgentBin(), "--no-collector"},
                                  sb.ProcmondEnv(agent_env), sb.File("agent.out"), sb.File("agent.err"),
                                  /*new_group=*/true);
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(2);
  if (!WaitFor(
          [&] {
            auto r = http.Get("/api/info");
            return !agent->Running() || (r && r->status == 200);
          },
          60s) ||
      !agent->Running()) {
    setup_error = "the agent did not serve /api/info:\n" + testing::ReadFile(sb.File("agent.err"));
  }
}

WebUiTest::Env::~Env() {
  if (agent) {
    agent->Signal(SIGTERM);
    agent->Wait(30s);
  }
  // The probe's own process group: its sleep goes with the shell.
  if (probe) ::kill(-probe->pid(), SIGKILL);
}

void ExpectSecurityHeaders(const httplib::Result& r, const std::string& what) {
  ASSERT_TRUE(r) << what;
  EXPECT_EQ(r->get_header_value("Content-Security-Policy"), kCsp) << what;
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << what;
  EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer") << what;
  EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY") << what;
  EXPECT_FALSE(r->get_header_value("Cache-Control").empty()) << what;
  EXPECT_NE(r->get_header_value("Content-Type").find("; charset=utf-8"), std::string::npos)
      << what << ": " << r->get_header_value("Content-Type");
}

TEST_F(WebUiTest, EveryAnswerCarriesTheHeadersAndTheApiChecksWhatItIsGiven) {
  auto http = Http();
  const std::string id = std::to_string(env_->critical_id);
  const std::pair<std::string, int> gets[] = {
      {"/", 200},
      {"/index.html", 200},
      {"/app.js", 200},
      {"/app.css", 200},
      {"/api/info", 200},
      {"/api/health", 200},
      {"/api/alerts", 200},
      {"/api/alerts/" + id, 200},
      {"/api/alerts/" + id + "/tree", 200},
      {"/metrics", 200},
      {"/api/alerts?limit=0", 400},
      {"/api/alerts?severity=urgent", 400},
      {"/api/alerts?since=someday", 400},
      {"/api/alerts?colour=red", 400},
      {"/api/alerts/abc", 400},
      {"/api/alerts/999999", 404},
      {"/api/alerts/" + id + "/nothing", 404},
      {"/api/nothing", 404},
      {"/nothing", 404},
      {"/../etc/passwd", 404},
  };
  for (const auto& [path, code] : gets) {
    auto r = http->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, code) << path << "\n" << r->body;
    ExpectSecurityHeaders(r, "GET " + path);
  }
  EXPECT_EQ(http->Get("/")->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(http->Get("/app.js")->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(http->Get("/api/alerts")->get_header_value("Content-Type"), "application/json; charset=utf-8");
  EXPECT_EQ(http->Get("/api/alerts")->get_header_value("Cache-Control"), "no-store");

  // A bad parameter is a JSON error that names it.
  for (const auto& [query, param] :
       std::vector<std::pair<std::string, std::string>>{{"limit=0", "limit"},
                                                        {"limit=501", "limit"},
                                                        {"severity=urgent", "severity"},
                                                        {"since=someday", "since"},
                                                        {"colour=red", "colour"},
                                                        {"rule=Not%20A%20Rule", "rule"}}) {
    auto r = http->Get("/api/alerts?" + query);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << query;
    auto j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_EQ(j.value("parameter", ""), param) << r->body;
    EXPECT_EQ(j.value("error", "").rfind(param + ": ", 0), 0u) << r->body;
  }

  // Only GET and HEAD.
  ExpectSecurityHeaders(http->Post("/api/alerts", "", "text/plain"), "POST");
  EXPECT_EQ(http->Post("/api/alerts", "", "text/plain")->status, 405);
  EXPECT_EQ(http->Post("/api/alerts", "", "text/plain")->get_header_value("Allow"), "GET, HEAD");
  EXPECT_EQ(http->Put("/", "", "text/plain")->status, 405);
  EXPECT_EQ(http->Delete("/api/alerts/" + id)->status, 405);
  EXPECT_EQ(http->Options("/")->status, 405);
  auto head = http->Head("/");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  ExpectSecurityHeaders(head, "HEAD /");

  // Another name for 127.0.0.1 (DNS rebinding) reads nothing; scrapers may use any name.
  auto foreign = http->Get("/api/alerts", {{"Host", "evil.example.com:" + std::to_string(env_->port)}});
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->status, 403) << foreign->body;
  ExpectSecurityHeaders(foreign, "foreign Host");
  EXPECT_EQ(http->Get("/", {{"Host", "evil.example.com"}})->status, 403);
  EXPECT_EQ(http->Get("/metrics", {{"Host", "prometheus-target.example"}})->status, 200);
  EXPECT_EQ(http->Get("/api/alerts", {{"Host", "localhost:" + std::to_string(env_->port)}})->status, 200);

  // /metrics still passes promtool.
  ASSERT_TRUE(testing::FileExists("/usr/bin/promtool"))
      << "promtool not installed (scripts/install-deps.sh installs Debian's prometheus)";
  const std::string metrics = http->Get("/metrics")->body;
  RunResult check = testing::Run({"/usr/bin/promtool", "check", "metrics"}, {}, metrics);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST_F(WebUiTest, TheApiFiltersAndItsJsonCarriesNoMarkup) {
  auto http = Http();
  auto ids_of = [&](const std::string& query) {
    auto r = http->Get("/api/alerts" + query);
    std::vector<std::string> rules;
    if (!r || r->status != 200) return rules;
    const json page = json::parse(r->body);
    for (const auto& a : page["alerts"]) rules.push_back(a["rule_id"]);
    return rules;
  };
  EXPECT_EQ(ids_of("").size(), 3u);
  EXPECT_EQ(ids_of("?severity=critical"), std::vector<std::string>{"web-probe-critical"});
  EXPECT_EQ(ids_of("?severity=medium").size(), 2u);
  EXPECT_EQ(ids_of("?rule=web-probe-low"), std::vector<std::string>{"web-probe-low"});
  EXPECT_EQ(ids_of("?q=%3Cscript%3E"), std::vector<std::string>{"web-probe-critical"});
  EXPECT_EQ(ids_of("?status=closed").size(), 0u);
  EXPECT_EQ(ids_of("?status=open").size(), 3u);
  EXPECT_EQ(ids_of("?since=1h&until=2099-01-01").size(), 3u);
  EXPECT_EQ(ids_of("?until=2h").size(), 0u);
  auto page = json::parse(http->Get("/api/alerts?limit=2")->body);
  EXPECT_EQ(page["alerts"].size(), 2u);
  EXPECT_EQ(page["more"], true);
  auto rest = json::parse(http->Get("/api/alerts?limit=2&offset=2")->body);
  EXPECT_EQ(rest["alerts"].size(), 1u);
  EXPECT_EQ(rest["more"], false);

  // The alert of the script probe: exact values for a JSON reader, no markup in the bytes.
  auto one = http->Get("/api/alerts/" + std::to_string(env_->critical_id));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->body.find('<'), std::string::npos) << one->body;
  EXPECT_EQ(one->body.find('>'), std::string::npos) << one->body;
  auto alert = json::parse(one->body);
  EXPECT_EQ(alert["affected_processes"][0]["name"], kScriptProbe) << alert.dump(2);
  EXPECT_EQ(alert["affected_processes"][0]["pid"], env_->probe->pid());

  // Its tree: the probe is the target, its sleep a child, the test process an ancestor.
  auto tree_r = http->Get("/api/alerts/" + std::to_string(env_->critical_id) + "/tree");
  ASSERT_TRUE(tree_r);
  ASSERT_EQ(tree_r->status, 200) << tree_r->body;
  EXPECT_EQ(tree_r->body.find('<'), std::string::npos);
  auto tree = json::parse(tree_r->body);
  EXPECT_EQ(tree["target"]["pid"], env_->probe->pid()) << tree.dump(2);
  const std::string text = tree.dump();
  EXPECT_NE(text.find(kArgProbe), std::string::npos) << "the probe's argv, exact";
  EXPECT_NE(text.find("\"pid\":" + std::to_string(::getpid())), std::string::npos)
      << "this test is an ancestor";
  EXPECT_NE(text.find("\"pid\":" + std::to_string(env_->probe_child)), std::string::npos)
      << "sleep is a child";
}

TEST_F(WebUiTest, ABrowserShowsAlertsTreeAndHealthWithTheProbeAsText) {
  if (ChromiumPath().empty()) {
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh installs it): no browser to drive";
  }
  // The alert list.
  const std::string list = DumpDom(Url("/"));
  EXPECT_NE(list.find("data-state=\"ready\""), std::string::npos) << list;
  EXPECT_EQ(CountOf(list, "class=\"alert-row\""), 3u) << list;
  EXPECT_NE(list.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << "the probe, as text\n"
                                                                                   << list;
  EXPECT_EQ(list.find(kScriptProbe), std::string::npos) << "the probe became markup\n" << list;
  EXPECT_EQ(CountOf(list, "<script"), 1u) << "only the page's own script element\n" << list;
  EXPECT_NE(list.find("<title>SentinelD — alerts</title>"), std::string::npos) << list;

  // Filters from the fragment.
  const std::string critical = DumpDom(Url("/#severity=critical"));
  EXPECT_EQ(CountOf(critical, "class=\"alert-row\""), 1u) << critical;

  // One alert and its process tree, drawn as nested lists.
  const std::string id = std::to_string(env_->critical_id);
  const std::string tree = DumpDom(Url("/#alert=" + id));
  EXPECT_NE(tree.find("data-view=\"alert-view\""), std::string::npos) << tree;
  EXPECT_NE(tree.find("data-state=\"ready\""), std::string::npos) << tree;
  EXPECT_NE(tree.find("<ul class=\"tree\">"), std::string::npos) << tree;
  EXPECT_NE(tree.find("class=\"node target\" data-pid=\"" + std::to_string(env_->probe->pid()) + "\""),
            std::string::npos)
      << tree;
  EXPECT_NE(tree.find("data-pid=\"" + std::to_string(env_->probe_child) + "\""), std::string::npos) << tree;
  EXPECT_NE(tree.find("data-pid=\"" + std::to_string(::getpid()) + "\""), std::string::npos) << tree;
  EXPECT_GE(CountOf(tree, "class=\"node"), 3u) << tree;
  EXPECT_NE(tree.find("<code class=\"arg\">--x=&lt;img src=x onerror=alert(2)&gt;</code>"), std::string::npos)
      << tree;
  EXPECT_NE(tree.find("class=\"node-alert\" href=\"#alert=" + id + "\""), std::string::npos) << tree;
  EXPECT_EQ(tree.find("<img"), std::string::npos) << "the argv probe became an element\n" << tree;
  EXPECT_EQ(tree.find(kScriptProbe), std::string::npos) << tree;
  EXPECT_EQ(CountOf(tree, "<script"), 1u) << tree;
  EXPECT_NE(tree.find("<title>SentinelD — alert #" + id + "</title>"), std::string::npos) << tree;
  EXPECT_NE(tree.find("shell, &lt;b&gt;for&lt;/b&gt; the web UI test."), std::string::npos)
      << "the rule's description, as text\n"
      << tree;

  for (const std::string& page : {list, tree}) {
    EXPECT_EQ(page.find(">null<"), std::string::npos) << "a missing value shown as null\n" << page;
    EXPECT_EQ(page.find("undefined"), std::string::npos) << page;
  }

  // Health and metrics.
  const std::string health = DumpDom(Url("/#view=health"));
  for (const char* c : {"collector", "agent", "database", "audit"}) {
    EXPECT_NE(health.find(std::string("class=\"component\" data-name=\"") + c + "\""), std::string::npos)
        << c << "\n"
        << health;
  }
  EXPECT_NE(health.find("sentinel_alerts_stored"), std::string::npos) << health;
  EXPECT_NE(health.find("id=\"glance\""), std::string::npos);
  EXPECT_NE(health.find("class=\"glance-item"), std::string::npos) << health;
}

TEST_F(WebUiTest, ScreenshotsOfTheListAndOfATreeAreNotBlank) {
  if (ChromiumPath().empty()) {
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh installs it): no browser to drive";
  }
  const std::string blank_png = env_->sb.File("blank.png");
  RunResult blank = Chromium({"--screenshot=" + blank_png, "--window-size=1280,900"}, "about:blank");
  ASSERT_EQ(blank.exit_code, 0) << blank.err;
  const PngInfo empty = ReadPng(blank_png);
  ASSERT_EQ(empty.error, "");
  for (const auto& [name, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"list.png", "/"}, {"tree.png", "/#alert=" + std::to_string(env_->critical_id)}}) {
    const std::string png = env_->sb.File(name);
    RunResult r = Chromium({"--screenshot=" + png, "--window-size=1280,900"}, Url(fragment));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const PngInfo info = ReadPng(png);
    ASSERT_EQ(info.error, "") << name;
    EXPECT_EQ(info.width, 1280u) << name;
    EXPECT_EQ(info.height, 900u) << name;
    // Text, badges and borders: many colours where a blank page has one or two.
    EXPECT_GT(info.colours, 50u) << name << ": " << info.colours << " colours; a blank page has "
                                 << empty.colours;
    EXPECT_GT(info.colours, empty.colours * 10) << name;
  }
  EXPECT_NE(testing::ReadFile(env_->sb.File("list.png")), testing::ReadFile(env_->sb.File("tree.png")));
  // For a person to look at: SENTINEL_SCREENSHOT_DIR=/some/dir keeps a copy of both.
  if (const char* keep = std::getenv("SENTINEL_SCREENSHOT_DIR"); keep != nullptr && *keep != '\0') {
    for (const char* name : {"list.png", "tree.png"}) {
      testing::WriteFile(std::string(keep) + "/web-ui-" + name, testing::ReadFile(env_->sb.File(name)));
    }
  }
}

}  // namespace
}  // namespace sentinel::itest
