// The webhook sink (the webhook feature, SENTINEL_SINK_WEBHOOK) against an HTTP receiver
// (cpp-httplib) on loopback that accepts, fails, refuses, hangs or answers garbage.
#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>

#include "sentinel/alerting/internal/formats.h"
#include "sentinel/alerting/ocsf.h"
#include "sentinel/alerting/sink.h"
#include "sentinel/alerting/sinks_test_util.h"
#include "sentinel/alertstore/test_util.h"
#include "sentinel/models/severity.h"
#include "sentinel/testing/net.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::alerting {
namespace {

using namespace sinktest;  // NOLINT(google-build-using-namespace): the sink tests' helpers
using internal::Eventually;
using testing::FreePort;

// ---------------------------------------------------------------------------------------------
// webhook

class HttpPeer {
 public:
  HttpPeer() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu_);
        last_ = req;
        ++requests_;
      }
      if (hang_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hang_ms_.load()));
      res.status = status_;
      res.set_content("{\"error\":\"nope\"}\x01", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Stop() before the loop runs would be lost (and the join would hang).
    EXPECT_TRUE(Eventually([this] { return server_.is_running(); }));
  }
  ~HttpPeer() {
    hang_ms_ = 0;
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  httplib::Request Last() {
    std::lock_guard lock(mu_);
    return last_;
  }
  int Requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::atomic<int> status_{200};
  std::atomic<int> hang_ms_{0};

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  httplib::Request last_;
  int requests_ = 0;
};

config::SinkConfig Hook(const std::string& url) {
  config::SinkConfig c;
  c.name = "hook";
  c.type = "webhook";
  c.url = url;
  c.timeout_ms = 2000;
  return c;
}

TEST(WebhookSinkTest, HmacSha256MatchesRfc4231) {
  EXPECT_EQ(*internal::HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Makes every OpenSSL fetch in this process fail while alive (no provider has the property), the
// way a FIPS-only or broken OpenSSL configuration makes HMAC() return NULL.
class OpenSslFetchesFail {
 public:
  OpenSslFetchesFail() {
    ok_ = EVP_set_default_properties(nullptr, "sentinel.test.no_such_property=yes") == 1;
  }
  ~OpenSslFetchesFail() { EVP_set_default_properties(nullptr, ""); }
  OpenSslFetchesFail(const OpenSslFetchesFail&) = delete;
  OpenSslFetchesFail& operator=(const OpenSslFetchesFail&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_ = false;
};

// HMAC()'s NULL return was ignored: the request went out with "sha256=" and no MAC (issue 14,
// item 11). Now the attempt fails, saying why, and nothing is sent.
TEST(WebhookSinkTest, HmacFailureFailsTheAttemptAndSendsNothing) {
  HttpPeer peer;
  config::SinkConfig c = Hook(peer.Url());
  c.hmac_secret_env = "HOOK_SECRET";
  auto sink = Build(c, Env({{"HOOK_SECRET", "s3cret"}}));
  Sent s;
  DeliveryResult r;
  {
    OpenSslFetchesFail broken;
    ASSERT_TRUE(broken.ok());
    Result<std::string> mac = internal::HmacSha256Hex("s3cret", s.json);
    ASSERT_FALSE(mac.ok()) << "HMAC still works with every fetch failing; the test proves nothing";
    EXPECT_TRUE(mac.status().message().starts_with("HMAC-SHA256 of the body failed: "))
        << mac.status().message();
    r = s.To(*sink);
  }
  ASSERT_FALSE(r.status.ok());
  EXPECT_TRUE(r.status.message().starts_with("signing the body: HMAC-SHA256 of the body failed: "))
      << r.status.message();
  EXPECT_EQ(peer.Requests(), 0) << "an unsigned request was sent";
  // With OpenSSL working again the same sink signs and delivers.
  r = s.To(*sink, 2);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(peer.Last().get_header_value("X-Sentinel-Signature"),
            "sha256=" + *internal::HmacSha256Hex("s3cret", s.json));
}

TEST(WebhookSinkTest, PostsTheAlertJsonWithHeadersAndSignature) {
  HttpPeer peer;
  config::SinkConfig c = Hook(peer.Url());
  c.headers = {{"Authorization", "Bearer t0ken"}};
  c.hmac_secret_env = "HOOK_SECRET";
  auto sink = Build(c, Env({{"HOOK_SECRET", "s3cret"}}));
  Sent s;
  DeliveryResult r = s.To(*sink, 2);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.http_status, 200);
  httplib::Request req = peer.Last();
  EXPECT_EQ(req.body, s.json);
  EXPECT_EQ(req.get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(req.get_header_value("Authorization"), "Bearer t0ken");
  EXPECT_EQ(req.get_header_value("X-Sentinel-Alert-Id"), "7");
  EXPECT_EQ(req.get_header_value("X-Sentinel-Delivery-Id"), "7:hook");
  EXPECT_EQ(req.get_header_value("X-Sentinel-Attempt"), "2");
  EXPECT_EQ(req.get_header_value("X-Sentinel-Signature"),
            "sha256=" + *internal::HmacSha256Hex("s3cret", s.json));
}

TEST(WebhookSinkTest, SecretFromAFileAndMissingSecretsRefused) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("key"), "filekey\n");
  HttpPeer peer;
  config::SinkConfig c = Hook(peer.Url());
  c.hmac_secret_file = dir.File("key");
  c.signature_header = "X-Sig";
  auto sink = Build(c);
  Sent s;
  ASSERT_TRUE(s.To(*sink).status.ok());
  EXPECT_EQ(peer.Last().get_header_value("X-Sig"), "sha256=" + *internal::HmacSha256Hex("filekey", s.json));

  SinkRegistry registry;
  RegisterBuiltinSinks(registry);
  config::SinkConfig unset = Hook(peer.Url());
  unset.hmac_secret_env = "NOT_SET_ANYWHERE";
  auto refused = registry.Build(unset, Env());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("NOT_SET_ANYWHERE"), std::string::npos);
  config::SinkConfig nofile = Hook(peer.Url());
  nofile.hmac_secret_file = dir.File("absent");
  EXPECT_FALSE(registry.Build(nofile, Env()).ok());
}

TEST(WebhookSinkTest, ServerErrorsRetryClientErrorsAreFinal) {
  HttpPeer peer;
  auto sink = Build(Hook(peer.Url()));
  Sent s;
  peer.status_ = 503;
  DeliveryResult r = s.To(*sink);
  EXPECT_FALSE(r.status.ok());
  EXPECT_FALSE(r.permanent);
  EXPECT_EQ(r.http_status, 503);
  EXPECT_NE(r.status.message().find("HTTP 503: {\"error\":\"nope\"}."), std::string::npos)
      << r.status.message();
  peer.status_ = 429;
  EXPECT_FALSE(s.To(*sink).permanent);
  peer.status_ = 400;
  r = s.To(*sink);
  EXPECT_TRUE(r.permanent);
  EXPECT_EQ(r.http_status, 400);
  peer.status_ = 302;
  EXPECT_TRUE(s.To(*sink).permanent);  // redirects are not followed
  peer.status_ = 204;
  EXPECT_TRUE(s.To(*sink).status.ok());
}

// Issue 14: webhook URLs carry tokens; errors land in alert_deliveries, the
// dead-letter queue, logs and the audit ledger.
TEST(WebhookSinkTest, ErrorsNeverShowTheUrlsCredentialsPathOrQuery) {
  const int closed = FreePort(SOCK_STREAM);
  const std::string url = "http://alice:PASSWORDSECRET@127.0.0.1:" + std::to_string(closed) +
                          "/services/T000/B000/PATHSECRET?token=QUERYSECRET";
  auto sink = Build(Hook(url));
  Sent s;
  DeliveryResult r = s.To(*sink);
  ASSERT_FALSE(r.status.ok());
  const std::string msg = r.status.message();
  for (std::string_view secret : {"PASSWORDSECRET", "PATHSECRET", "QUERYSECRET", "alice", "services"}) {
    EXPECT_EQ(msg.find(secret), std::string::npos) << secret << " in " << msg;
  }
  EXPECT_NE(msg.find("POST http://127.0.0.1:" + std::to_string(closed) + "/\xE2\x80\xA6: "),
            std::string::npos)
      << msg;
  // An HTTP error names the endpoint the same way.
  HttpPeer peer;
  peer.status_ = 500;
  auto failing = Build(Hook(peer.Url() + "?token=QUERYSECRET"));
  r = s.To(*failing);
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.message().find("QUERYSECRET"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find(": HTTP 500"), std::string::npos) << r.status.message();
}

TEST(WebhookSinkTest, OversizedAlertIsCutToMaxMessageBytesAndSignedAsSent) {
  HttpPeer peer;
  config::SinkConfig c = Hook(peer.Url());
  c.max_message_bytes = 4096;
  c.hmac_secret_env = "HOOK_KEY";
  auto sink = Build(c, Env({{"HOOK_KEY", "k3y"}}));
  Sent s;
  s.alert = HugeAlert(70'000);
  s.json = s.alert.ToJson().dump();
  DeliveryResult r = s.To(*sink);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  const httplib::Request last = peer.Last();
  EXPECT_LE(last.body.size(), 4096u);
  EXPECT_EQ(nlohmann::json::parse(last.body)["truncated"], true);
  EXPECT_EQ(last.get_header_value("X-Sentinel-Signature"),
            "sha256=" + *internal::HmacSha256Hex("k3y", last.body));
}

TEST(WebhookSinkTest, AHangingPeerTimesOut) {
  HttpPeer peer;
  peer.hang_ms_ = 1200;
  config::SinkConfig c = Hook(peer.Url());
  c.timeout_ms = 200;
  auto sink = Build(c);
  Sent s;
  DeliveryResult r = s.To(*sink);
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded) << r.status.ToString();
  EXPECT_FALSE(r.http_status.has_value());
}

TEST(WebhookSinkTest, CancelCutsAnAttemptShortAsUnknown) {
  HttpPeer peer;
  peer.hang_ms_ = 1500;
  auto sink = Build(Hook(peer.Url()));
  Sent s;
  std::thread canceller([&] {
    Eventually([&] { return peer.Requests() > 0; });
    sink->Cancel();
  });
  DeliveryResult r = s.To(*sink);
  canceller.join();
  EXPECT_TRUE(r.outcome_unknown);
  EXPECT_FALSE(r.status.ok());
}

TEST(WebhookSinkTest, GarbageAndSilenceAreFailedAttempts) {
  int port = 0;
  int lfd = Listen(SOCK_STREAM, &port);
  std::thread peer([lfd] {
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0) return;
    char buf[8192];
    ::recv(c, buf, sizeof buf, 0);
    const char garbage[] = "\x16\x03\x01 this is not HTTP\r\n\r\n";
    ::send(c, garbage, sizeof garbage - 1, MSG_NOSIGNAL);
    ::close(c);
  });
  auto sink = Build(Hook("http://127.0.0.1:" + std::to_string(port) + "/hook"));
  Sent s;
  DeliveryResult r = s.To(*sink);
  peer.join();
  ::close(lfd);
  EXPECT_FALSE(r.status.ok());
  EXPECT_FALSE(r.permanent);

  auto dead = Build(Hook("http://127.0.0.1:" + std::to_string(FreePort(SOCK_STREAM)) + "/hook"));
  r = s.To(*dead);
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("POST http://127.0.0.1:"), std::string::npos) << r.status.message();
}

TEST(WebhookSinkTest, TlsVerificationIsOnByDefault) {
  // A plain-HTTP peer behind an https:// URL cannot complete a handshake.
  HttpPeer peer;
  std::string url = peer.Url();
  url.replace(0, 4, "https");
  config::SinkConfig c = Hook(url);
  EXPECT_TRUE(c.tls_verify);
  auto sink = Build(c);
  Sent s;
  EXPECT_FALSE(s.To(*sink).status.ok());
}

// ---------------------------------------------------------------------------------------------
// email

TEST(WebhookSinkTest, OcsfFormatPostsADetectionFinding) {
  HttpPeer peer;
  config::SinkConfig c = Hook(peer.Url());
  c.format = "ocsf";
  auto sink = Build(c);
  ASSERT_TRUE(sink);
  Sent s;
  ASSERT_TRUE(s.To(*sink).status.ok());
  const nlohmann::json f = nlohmann::json::parse(peer.Last().body);
  ExpectDetectionFinding(f);
  EXPECT_EQ(f["finding_info"]["uid"], "7");
  EXPECT_EQ(f["device"]["hostname"], "testhost");
  // json (the default) still posts the native alert.
  auto native = Build(Hook(peer.Url()));
  ASSERT_TRUE(s.To(*native).status.ok());
  EXPECT_EQ(peer.Last().body, s.json);
}

}  // namespace
}  // namespace sentinel::alerting
