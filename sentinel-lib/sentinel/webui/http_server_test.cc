// The endpoint on a real loopback socket: what the server answers itself
// (400, 405, 431, HEAD) and what it hands the handler.
#include "sentinel/webui/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include <gtest/gtest.h>

#include "sentinel/base/files.h"

namespace sentinel::webui {
namespace {

// Sends `request` and reads until the server closes.
std::string Exchange(int port, const std::string& request) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return "connect failed";
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string Header(const std::string& wire, const std::string& name) {
  const std::string head = wire.substr(0, wire.find("\r\n\r\n") + 2);
  const size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "<absent>";
  const size_t start = at + 4 + name.size();
  return head.substr(start, head.find("\r\n", start) - start);
}

std::string Body(const std::string& wire) {
  const size_t end = wire.find("\r\n\r\n");
  return end == std::string::npos ? "" : wire.substr(end + 4);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HttpServer>("test.http_listen", [this](const HttpRequest& req) {
      calls_++;
      last_ = req;
      if (req.path == "/missing") return TextResponse(404, "not found\n");
      return JsonResponse(200, {{"path", req.path}});
    });
    ASSERT_TRUE(server_->Bind("127.0.0.1:0").ok());
    port_ = server_->port();
    ASSERT_GT(port_, 0);
    server_->Start();
  }
  void TearDown() override { server_->Stop(); }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::atomic<int> calls_{0};
  HttpRequest last_;
};

TEST_F(HttpServerTest, TheHandlerGetsPathQueryAndHost) {
  const std::string wire =
      Exchange(port_, "GET /api/alerts?limit=5&q=a%20b HTTP/1.1\r\nhOsT: 127.0.0.1:1\r\n\r\n");
  EXPECT_EQ(wire.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << wire;
  EXPECT_EQ(last_.method, "GET");
  EXPECT_EQ(last_.path, "/api/alerts");
  EXPECT_EQ(last_.query, "limit=5&q=a%20b");
  EXPECT_EQ(last_.host, "127.0.0.1:1");
  EXPECT_EQ(Header(wire, "Content-Type"), "application/json; charset=utf-8");
  EXPECT_EQ(Body(wire), "{\"path\":\"/api/alerts\"}\n");
}

TEST_F(HttpServerTest, EveryAnswerCarriesTheSecurityHeaders) {
  const std::string requests[] = {
      "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",                         // the handler's 200
      "GET /missing HTTP/1.1\r\n\r\n",                                     // the handler's 404
      "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",                      // the server's 405
      "BROKEN\r\n\r\n",                                                    // the server's 400
      "GET /" + std::string(kMaxRequestBytes, 'a') + " HTTP/1.1\r\n\r\n",  // the server's 431
  };
  const int codes[] = {200, 404, 405, 400, 431};
  for (size_t i = 0; i < std::size(requests); ++i) {
    const std::string wire = Exchange(port_, requests[i]);
    SCOPED_TRACE(wire.substr(0, 200));
    EXPECT_EQ(wire.rfind("HTTP/1.1 " + std::to_string(codes[i]) + " ", 0), 0u);
    EXPECT_EQ(Header(wire, "Content-Security-Policy"), kContentSecurityPolicy);
    EXPECT_EQ(Header(wire, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(Header(wire, "Referrer-Policy"), "no-referrer");
    EXPECT_EQ(Header(wire, "X-Frame-Options"), "DENY");
    EXPECT_EQ(Header(wire, "Cache-Control"), "no-store");
    EXPECT_NE(Header(wire, "Content-Type").find("; charset=utf-8"), std::string::npos);
    EXPECT_EQ(Header(wire, "Connection"), "close");
  }
}

TEST_F(HttpServerTest, OnlyGetAndHeadReachTheHandler) {
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}) {
    const std::string wire = Exchange(port_, std::string(method) + " /api/alerts HTTP/1.1\r\n\r\n");
    EXPECT_EQ(wire.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << method << "\n" << wire;
    EXPECT_EQ(Header(wire, "Allow"), "GET, HEAD") << method;
  }
  EXPECT_EQ(calls_.load(), 0);
  const std::string get = Exchange(port_, "GET /x HTTP/1.1\r\n\r\n");
  const std::string head = Exchange(port_, "HEAD /x HTTP/1.1\r\n\r\n");
  EXPECT_EQ(calls_.load(), 2);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_EQ(Header(head, "Content-Length"), std::to_string(Body(get).size()));
  EXPECT_EQ(Body(head), "") << "HEAD answers without the body";
  EXPECT_FALSE(Body(get).empty());
}

TEST_F(HttpServerTest, ATakenPortIsUnavailableNamingTheKey) {
  HttpServer second("console.http_listen", [](const HttpRequest&) { return TextResponse(200, ""); });
  Status s = second.Bind("127.0.0.1:" + std::to_string(port_));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("console.http_listen: cannot listen on 127.0.0.1:"), std::string::npos)
      << s.message();
  Status bad = second.Bind("127.0.0.1:99999");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("console.http_listen"), std::string::npos) << bad.message();
}

}  // namespace
}  // namespace sentinel::webui
