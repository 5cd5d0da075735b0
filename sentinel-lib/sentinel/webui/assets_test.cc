// The embedded page keeps to what its Content-Security-Policy and
// docs/web-ui.md promise: no inline script or style, nothing from elsewhere,
// and no API that parses text as HTML.
#include "sentinel/webui/assets.h"

#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include <gtest/gtest.h>

namespace sentinel::webui {
namespace {

std::string BodyOf(std::string_view path) {
  const Asset* a = FindAsset(path);
  return a == nullptr ? std::string() : std::string(a->body);
}

TEST(AssetsTest, ThePageItsScriptAndItsStyleAreEmbedded) {
  const Asset* index = FindAsset("/");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index, FindAsset("/index.html"));
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  ASSERT_NE(FindAsset("/app.js"), nullptr);
  EXPECT_EQ(FindAsset("/app.js")->content_type, "text/javascript; charset=utf-8");
  ASSERT_NE(FindAsset("/app.css"), nullptr);
  EXPECT_EQ(FindAsset("/app.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(FindAsset("/nothing.js"), nullptr);
  EXPECT_EQ(FindAsset("/../app.js"), nullptr);
  HttpResponse r = AssetResponse(*index);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, index->body);
  EXPECT_EQ(r.cache_control, "no-cache");
  EXPECT_NE(BodyOf("/index.html").find("<script src=\"/app.js\" defer></script>"), std::string::npos);
}

TEST(AssetsTest, EachServedFileIsItsSourceByteForByte) {
  // Semicolons, brackets, backslashes and quotes survive the embedding (cmake/EmbedWebUi.cmake).
  const std::string dir = std::string(SENTINEL_SOURCE_DIR) + "/sentinel-lib/sentinel/webui/ui";
  ASSERT_EQ(Assets().size(), 3u);
  for (const Asset& a : Assets()) {
    std::ifstream in(dir + std::string(a.path), std::ios::binary);
    ASSERT_TRUE(in) << a.path;
    const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(a.body, source) << a.path;
  }
}

TEST(AssetsTest, NoInlineScriptStyleOrHandler) {
  for (const Asset& a : Assets()) {
    if (a.path.size() < 5 || a.path.substr(a.path.size() - 5) != ".html") continue;
    const std::string html(a.body);
    SCOPED_TRACE(std::string(a.path));
    // Every <script> names its file and holds nothing.
    const std::regex script("<script([^>]*)>([^<]*)</script>", std::regex::icase);
    int scripts = 0;
    for (auto it = std::sregex_iterator(html.begin(), html.end(), script); it != std::sregex_iterator();
         ++it) {
      ++scripts;
      EXPECT_NE((*it)[1].str().find("src=\"/"), std::string::npos) << (*it)[0].str();
      EXPECT_EQ((*it)[2].str(), "") << (*it)[0].str();
    }
    EXPECT_EQ(scripts, 1);
    EXPECT_FALSE(std::regex_search(html, std::regex("<style", std::regex::icase)));
    EXPECT_FALSE(std::regex_search(html, std::regex("\\sstyle\\s*=", std::regex::icase)));
    EXPECT_FALSE(std::regex_search(html, std::regex("\\son[a-z]+\\s*=", std::regex::icase)));
    EXPECT_FALSE(std::regex_search(html, std::regex("javascript:", std::regex::icase)));
  }
}

TEST(AssetsTest, NothingIsFetchedFromElsewhere) {
  for (const Asset& a : Assets()) {
    const std::string body(a.body);
    SCOPED_TRACE(std::string(a.path));
    EXPECT_FALSE(
        std::regex_search(body, std::regex("(https?:)?//[a-z0-9.-]+\\.[a-z]{2,}/", std::regex::icase)));
    EXPECT_EQ(body.find("@import"), std::string::npos);
    EXPECT_EQ(body.find("url("), std::string::npos);
  }
}

TEST(AssetsTest, TheScriptNeverParsesTextAsHtml) {
  const std::string js = BodyOf("/app.js");
  ASSERT_FALSE(js.empty());
  for (const char* sink :
       {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
        "setAttribute('on", "srcdoc", "DOMParser", "createContextualFragment"}) {
    EXPECT_EQ(js.find(sink), std::string::npos) << sink;
  }
  // Values reach the page through text nodes.
  EXPECT_NE(js.find("document.createTextNode(visible(v))"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::webui
