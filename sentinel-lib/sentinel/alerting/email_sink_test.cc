// The email sink (the email feature, SENTINEL_SINK_EMAIL) against a real SMTP server
// (python3-aiosmtpd) on loopback, and a port with nothing behind it.
#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

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

class SmtpPeer {
 public:
  explicit SmtpPeer(const testing::TempDir& dir) : port_(FreePort(SOCK_STREAM)), maildir_(dir.File("mail")) {
    ::mkdir(maildir_.c_str(), 0700);
    const std::string script = dir.File("smtpd.py");
    testing::WriteFile(
        script,
        "import sys, time, pathlib\n"
        "from aiosmtpd.controller import Controller\n"
        "class Save:\n"
        "    n = 0\n"
        "    async def handle_DATA(self, server, session, envelope):\n"
        "        Save.n += 1\n"
        "        d = pathlib.Path(sys.argv[2])\n"
        "        (d / f'{Save.n}.tmp').write_bytes(\n"
        "            ('FROM ' + envelope.mail_from + '\\n' + 'RCPT ' + ','.join(envelope.rcpt_tos) +\n"
        "             '\\n\\n').encode() + envelope.original_content)\n"
        "        (d / f'{Save.n}.tmp').rename(d / f'{Save.n}.eml')\n"
        "        return '250 OK'\n"
        "c = Controller(Save(), hostname='127.0.0.1', port=int(sys.argv[1]))\n"
        "c.start()\n"
        "while True: time.sleep(1)\n");
    proc_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/python3", script, std::to_string(port_), maildir_});
    ready_ = Eventually([this] { return Accepts(port_); });
  }
  bool ready() const { return ready_; }
  std::string Url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> Messages() const {
    std::vector<std::string> out;
    for (int i = 1; testing::FileExists(maildir_ + "/" + std::to_string(i) + ".eml"); ++i) {
      out.push_back(testing::ReadFile(maildir_ + "/" + std::to_string(i) + ".eml"));
    }
    return out;
  }

 private:
  int port_;
  std::string maildir_;
  std::unique_ptr<Process> proc_;
  bool ready_ = false;
};

config::SinkConfig Mail(const std::string& url) {
  config::SinkConfig c;
  c.name = "oncall";
  c.type = "email";
  c.smtp_url = url;
  c.from = "SentinelD <sentinel@example.org>";
  c.to = {"soc@example.org", "Second <two@example.org>"};
  c.timeout_ms = 5000;
  return c;
}

TEST(EmailSinkTest, DeliversToARealSmtpServer) {
  if (!testing::FileExists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 (python3-aiosmtpd) missing";
  testing::TempDir dir;
  SmtpPeer smtp(dir);
  ASSERT_TRUE(smtp.ready()) << "aiosmtpd did not start (is python3-aiosmtpd installed?)";
  auto sink = Build(Mail(smtp.Url()));
  Sent s;
  DeliveryResult r = s.To(*sink);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(Eventually([&] { return smtp.Messages().size() == 1; }));
  const std::string m = smtp.Messages()[0];
  EXPECT_NE(m.find("FROM sentinel@example.org\nRCPT soc@example.org,two@example.org\n"), std::string::npos)
      << m;
  EXPECT_NE(
      m.find("Subject: [SentinelD] HIGH proc-deleted-executable: Process running from a deleted executable "
             "(alert #7)"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("X-Sentinel-Alert-Id: 7"), std::string::npos);
  EXPECT_NE(m.find("Rule:        proc-deleted-executable"), std::string::npos) << m;
}

TEST(EmailSinkTest, OversizedHostileAlertFitsAndIsEscaped) {
  if (!testing::FileExists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 (python3-aiosmtpd) missing";
  testing::TempDir dir;
  SmtpPeer smtp(dir);
  ASSERT_TRUE(smtp.ready()) << "aiosmtpd did not start (is python3-aiosmtpd installed?)";
  config::SinkConfig c = Mail(smtp.Url());
  c.max_message_bytes = 16384;
  auto sink = Build(c);
  Sent s;
  s.alert = HugeAlert(200'000, 30);
  s.alert.title = "title " + kHostileName + std::string(3000, 'T');
  s.alert.affected_processes[0]["name"] = kHostileName;
  s.json = s.alert.ToJson().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  DeliveryResult r = s.To(*sink);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(Eventually([&] { return smtp.Messages().size() == 1; }));
  const std::string m = smtp.Messages()[0];
  const std::string data = m.substr(m.find("\n\n") + 2);
  EXPECT_LE(data.size(), 16384u + 64) << "the SMTP server may add a header or two";
  size_t line_start = 0;
  for (size_t nl = data.find('\n'); nl != std::string::npos; nl = data.find('\n', line_start)) {
    EXPECT_LE(nl - line_start, 998u) << "line at " << line_start;
    line_start = nl + 1;
  }
  const std::string mail = internal::BuildEmail(s.alert, s.json, c.from, c.to, 0, "h", "oncall", 16384);
  EXPECT_LE(mail.size(), 16384u);
  EXPECT_NE(mail.find("... and 10 more"), std::string::npos);
  // The decoded body and subject carry escapes, not the raw code points.
  const std::string subject = internal::EmailSubject(s.alert);
  EXPECT_LE(subject.size(), 260u);
  ExpectNoRawDanger(subject);
  EXPECT_NE(subject.find("\\u0085ALERT CRITICAL fake"), std::string::npos) << subject;
  EXPECT_NE(mail.find("a\\x1b[2J\\u009b31m\\u0085ALERT CRITICAL fake"), std::string::npos);
}

TEST(EmailSinkTest, ErrorsNeverShowTheSmtpUrlsCredentials) {
  const int closed = FreePort(SOCK_STREAM);
  auto sink = Build(Mail("smtp://bob:SMTPSECRET@127.0.0.1:" + std::to_string(closed)));
  Sent s;
  DeliveryResult r = s.To(*sink);
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.message().find("SMTPSECRET"), std::string::npos) << r.status.message();
  EXPECT_EQ(r.status.message().find("bob"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("SMTP smtp://127.0.0.1:" + std::to_string(closed) + "/\xE2\x80\xA6: "),
            std::string::npos)
      << r.status.message();
}

TEST(EmailSinkTest, StarttlsWhenAskedIsNeverSkipped) {
  if (!testing::FileExists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 (python3-aiosmtpd) missing";
  testing::TempDir dir;
  SmtpPeer smtp(dir);
  ASSERT_TRUE(smtp.ready());
  config::SinkConfig c = Mail(smtp.Url());
  c.starttls = true;  // the server offers no STARTTLS: refuse to send in clear
  auto sink = Build(c);
  Sent s;
  EXPECT_FALSE(s.To(*sink).status.ok());
  EXPECT_TRUE(smtp.Messages().empty());
}

TEST(EmailSinkTest, NoServerIsAFailedAttempt) {
  auto sink = Build(Mail("smtp://127.0.0.1:" + std::to_string(FreePort(SOCK_STREAM))));
  Sent s;
  DeliveryResult r = s.To(*sink);
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("SMTP smtp://127.0.0.1:"), std::string::npos) << r.status.message();
}

}  // namespace
}  // namespace sentinel::alerting
