#include "sentinel/webui/http.h"

#include <unistd.h>

#include <array>
#include <climits>
#include <string>

#include <gtest/gtest.h>

namespace sentinel::webui {
namespace {

bool HasHeader(const std::string& wire, const std::string& line) {
  const size_t end = wire.find("\r\n\r\n");
  return wire.substr(0, end).find("\r\n" + line + "\r\n") != std::string::npos;
}

TEST(HttpTest, SerializedAnswersCarryTheSecurityHeadersWhateverTheirStatus) {
  for (int code : {200, 400, 404, 405, 503}) {
    const std::string wire = SerializeResponse(TextResponse(code, "x\n"), false);
    EXPECT_EQ(wire.rfind("HTTP/1.1 " + std::to_string(code) + " ", 0), 0u) << wire;
    EXPECT_TRUE(HasHeader(wire, "Content-Security-Policy: " + std::string(kContentSecurityPolicy))) << wire;
    EXPECT_TRUE(HasHeader(wire, "X-Content-Type-Options: nosniff")) << wire;
    EXPECT_TRUE(HasHeader(wire, "Referrer-Policy: no-referrer")) << wire;
    EXPECT_TRUE(HasHeader(wire, "X-Frame-Options: DENY")) << wire;
    EXPECT_TRUE(HasHeader(wire, "Cache-Control: no-store")) << wire;
    EXPECT_TRUE(HasHeader(wire, "Content-Type: text/plain; charset=utf-8")) << wire;
    EXPECT_TRUE(HasHeader(wire, "Content-Length: 2")) << wire;
    EXPECT_EQ(wire.substr(wire.size() - 6), "\r\n\r\nx\n") << wire;
  }
}

TEST(HttpTest, HeadKeepsTheBodysLengthButNotTheBody) {
  HttpResponse r = TextResponse(200, "twelve bytes");
  const std::string wire = SerializeResponse(r, /*head_only=*/true);
  EXPECT_TRUE(HasHeader(wire, "Content-Length: 12")) << wire;
  EXPECT_EQ(wire.substr(wire.size() - 4), "\r\n\r\n") << wire;
}

TEST(HttpTest, JsonIsInertWhereverItLands) {
  nlohmann::ordered_json j;
  j["name"] = "<script>alert(1)</script> & \x1b[31m \xe2\x80\xae rtl";
  j["bad"] = std::string("\xff\xfe", 2);
  const std::string text = SafeJsonText(j);
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_EQ(text.find('>'), std::string::npos) << text;
  EXPECT_EQ(text.find('&'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find("\xe2\x80\xae"), std::string::npos) << text;
  EXPECT_NE(text.find("\\u003cscript\\u003e"), std::string::npos) << text;
  EXPECT_NE(text.find("\\u202e"), std::string::npos) << text;
  // The value is unchanged for a JSON reader (invalid bytes become U+FFFD).
  auto back = nlohmann::json::parse(text);
  EXPECT_EQ(back["name"], j["name"]);
  EXPECT_EQ(back["bad"], "\xef\xbf\xbd\xef\xbf\xbd");

  HttpResponse r = JsonError(400, "limit: bad", "limit");
  EXPECT_EQ(r.code, 400);
  EXPECT_EQ(r.content_type, "application/json; charset=utf-8");
  auto e = nlohmann::json::parse(r.body);
  EXPECT_EQ(e["error"], "limit: bad");
  EXPECT_EQ(e["parameter"], "limit");
}

TEST(HttpTest, QueryParamsDecodeAndCheckEachValue) {
  QueryParams p("q=a+b%2Fc&limit=20&since=2h&severity=high&empty=",
                {"q", "limit", "since", "severity", "empty"});
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p.Text("q", 100), "a b/c");
  EXPECT_EQ(p.Int("limit", 1, 500), 20);
  EXPECT_EQ(p.Time("since", 10'000'000), 10'000'000 - 2 * 3'600'000);
  EXPECT_EQ(p.OneOf("severity", {"low", "high"}), "high");
  EXPECT_EQ(p.Text("empty", 10), std::nullopt);  // an unset form field
  EXPECT_EQ(p.Text("absent", 10), std::nullopt);
  EXPECT_TRUE(p.ok());
}

// The first problem names its parameter.
ParamError ErrorOf(std::string_view raw, std::initializer_list<std::string_view> known,
                   void (*read)(QueryParams&) = nullptr) {
  QueryParams p(raw, known);
  if (read != nullptr && p.ok()) read(p);
  return p.ok() ? ParamError{} : p.error();
}

TEST(HttpTest, QueryParamsRefuseWhatTheyCannotTake) {
  EXPECT_EQ(ErrorOf("nope=1", {"q"}).parameter, "nope");
  EXPECT_EQ(ErrorOf("nope=1", {"q"}).message, "nope: unknown parameter");
  EXPECT_EQ(ErrorOf("q=1&q=2", {"q"}).message, "q: given more than once");
  EXPECT_EQ(ErrorOf("q=%zz", {"q"}).parameter, "q");
  EXPECT_EQ(ErrorOf("q=%4", {"q"}).parameter, "q");
  EXPECT_EQ(ErrorOf("q=%ff", {"q"}).parameter, "q");    // not UTF-8
  EXPECT_EQ(ErrorOf("q=a%0Ab", {"q"}).parameter, "q");  // a control character
  EXPECT_EQ(ErrorOf(std::string(QueryParams::kMaxQueryBytes + 1, 'a'), {"q"}).parameter, "query");
  EXPECT_EQ(ErrorOf("limit=0", {"limit"}, [](QueryParams& p) { (void)p.Int("limit", 1, 500); }).message,
            "limit: expected an integer from 1 to 500, got \"0\"");
  EXPECT_EQ(ErrorOf("limit=5x", {"limit"}, [](QueryParams& p) { (void)p.Int("limit", 1, 500); }).parameter,
            "limit");
  EXPECT_EQ(ErrorOf("since=yesterday", {"since"}, [](QueryParams& p) { (void)p.Time("since", 0); }).parameter,
            "since");
  EXPECT_EQ(ErrorOf("s=bad", {"s"},
                    [](QueryParams& p) {
                      (void)p.OneOf("s", {"low", "high"});
                    })
                .message,
            "s: expected one of low, high, got \"bad\"");
  EXPECT_EQ(ErrorOf("q=abcdef", {"q"}, [](QueryParams& p) { (void)p.Text("q", 5); }).message,
            "q: longer than 5 bytes");
}

TEST(HttpTest, HostCheckAdmitsThisMachineOnly) {
  std::array<char, HOST_NAME_MAX + 1> name{};
  ASSERT_EQ(::gethostname(name.data(), name.size() - 1), 0);
  for (std::string ok : {"", "127.0.0.1:9464", "127.0.0.1", "[::1]:9464", "localhost:9464", "LOCALHOST",
                         "app.localhost:1", "10.1.2.3:80", "localhost.:9464"}) {
    EXPECT_TRUE(IsAllowedHost(ok)) << ok;
  }
  EXPECT_TRUE(IsAllowedHost(std::string(name.data()) + ":9464"));
  EXPECT_TRUE(IsAllowedHost("console.example.org:9465", {"console.example.org"}));
  for (std::string bad : {"evil.example.com", "evil.example.com:9464", "127.0.0.1.evil.com",
                          "localhost.evil.com", "[::1", ":9464"}) {
    EXPECT_FALSE(IsAllowedHost(bad)) << bad;
  }
}

}  // namespace
}  // namespace sentinel::webui
