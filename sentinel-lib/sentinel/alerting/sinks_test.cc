// The sinks every build has against real peers started here, on loopback
// only: a raw UDP/TCP syslog reader (exact RFC 5424 / RFC 6587 bytes),
// rsyslogd with its own configuration, and a port with nothing behind it;
// the message formats of every sink; the registry. The webhook and email
// sinks are webhook_sink_test.cc and email_sink_test.cc (built with them).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "sentinel/alerting/internal/formats.h"
#include "sentinel/alerting/ocsf.h"
#include "sentinel/alerting/sink.h"
#include "sentinel/alerting/sinks_test_util.h"
#include "sentinel/alertstore/test_util.h"
#include "sentinel/base/features.h"
#include "sentinel/models/severity.h"
#include "sentinel/testing/net.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::alerting {
namespace {

using namespace sinktest;  // NOLINT(google-build-using-namespace): the sink tests' helpers

using internal::Eventually;
using testing::FreePort;

// ---------------------------------------------------------------------------------------------
// stdout and file

TEST(StdoutSinkTest, TextLineKeepsTheConsoleFormat) {
  Alert a = MakeAlert();
  a.affected_processes[0]["name"] = "evil\x1b[31m";
  const std::string line = AlertTextLine(a);
  EXPECT_EQ(line,
            "2023-11-14T22:13:20.123Z ALERT HIGH proc-deleted-executable #7: Process running from a deleted "
            "executable | pid 42 evil\\x1b[31m (/tmp/x (deleted))");
}

TEST(StdoutSinkTest, TextLineEscapesC1NelBidiAndSeparators) {
  Alert a = MakeAlert();
  a.affected_processes[0]["name"] = kHostileName;
  a.affected_processes[0]["exe_path"] = "/tmp/\xe2\x81\xa6x";
  const std::string line = AlertTextLine(a);
  EXPECT_EQ(line,
            "2023-11-14T22:13:20.123Z ALERT HIGH proc-deleted-executable #7: Process running from a deleted "
            "executable | pid 42 a\\x1b[2J\\u009b31m\\u0085ALERT CRITICAL fake\\u202e\\u2066\\u2028\\x9b "
            "(/tmp/\\u2066x)");
  ExpectNoRawDanger(line);
}

// On a terminal (SinkEnvironment::stdout_color) the escaped line is wrapped
// in its severity's colour; the only escape codes are those two.
TEST(StdoutSinkTest, TextLineIsColouredBySeverityOnlyWhenAsked) {
  Alert a = MakeAlert();
  a.affected_processes[0]["name"] = kHostileName;
  const std::string plain = AlertTextLine(a);
  EXPECT_EQ(AlertTextLine(a, true), "\x1b[31m" + plain + "\x1b[0m");
  const std::pair<models::Severity, std::string> colours[] = {{models::Severity::kLow, "\x1b[36m"},
                                                              {models::Severity::kMedium, "\x1b[33m"},
                                                              {models::Severity::kHigh, "\x1b[31m"},
                                                              {models::Severity::kCritical, "\x1b[1;31m"}};
  for (const auto& [severity, sgr] : colours) {
    a.severity = severity;
    const std::string line = AlertTextLine(a, true);
    EXPECT_EQ(line, sgr + AlertTextLine(a) + "\x1b[0m") << models::SeverityName(severity);
    ExpectNoRawDanger(line.substr(sgr.size(), line.size() - sgr.size() - 4));
  }

  testing::TempDir dir;
  const std::string out = dir.File("out");
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  SinkEnvironment env = Env();
  env.stdout_fd = fd;
  env.stdout_color = true;
  auto text = Build({.name = "t", .type = "stdout", .format = "text"}, env);
  auto json = Build({.name = "j", .type = "stdout", .format = "json"}, env);
  Sent s;
  EXPECT_TRUE(s.To(*text).status.ok());
  EXPECT_TRUE(s.To(*json).status.ok());  // JSON is data: never coloured
  ::close(fd);
  EXPECT_EQ(testing::ReadFile(out), AlertTextLine(s.alert, true) + "\n" + s.json + "\n");
}

TEST(StdoutSinkTest, JsonFormatEscapesUnsafeCodePointsAndKeepsTheValue) {
  testing::TempDir dir;
  const std::string out = dir.File("out");
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  SinkEnvironment env = Env();
  env.stdout_fd = fd;
  auto json = Build({.name = "j", .type = "stdout", .format = "json"}, env);
  Sent s;
  s.alert.affected_processes[0]["name"] = kHostileName;
  s.json = s.alert.ToJson().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  EXPECT_TRUE(s.To(*json).status.ok());
  ::close(fd);
  const std::string got = testing::ReadFile(out);
  ExpectNoRawDanger(got);
  EXPECT_EQ(got.find('\n'), got.size() - 1);
  EXPECT_NE(got.find("\\u0085ALERT CRITICAL fake\\u202e"), std::string::npos) << got;
  auto parsed = nlohmann::ordered_json::parse(got);
  EXPECT_EQ(parsed["affected_processes"][0]["name"],
            "a\x1b[2J\xc2\x9b"
            "31m\xc2\x85"
            "ALERT CRITICAL fake\xe2\x80\xae\xe2\x81\xa6\xe2\x80\xa8\xef\xbf\xbd");
}

TEST(StdoutSinkTest, WritesTextOrJsonToItsFd) {
  testing::TempDir dir;
  const std::string out = dir.File("out");
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  SinkEnvironment env = Env();
  env.stdout_fd = fd;
  auto text = Build({.name = "t", .type = "stdout", .format = "text"}, env);
  auto json = Build({.name = "j", .type = "stdout", .format = "json"}, env);
  Sent s;
  EXPECT_TRUE(s.To(*text).status.ok());
  EXPECT_TRUE(s.To(*json).status.ok());
  ::close(fd);
  EXPECT_EQ(testing::ReadFile(out), AlertTextLine(s.alert) + "\n" + s.json + "\n");
  // A closed descriptor is a failed attempt, not a crash.
  env.stdout_fd = fd;
  auto broken = Build({.name = "b", .type = "stdout"}, env);
  EXPECT_FALSE(s.To(*broken).status.ok());
}

TEST(FileSinkTest, AppendsJsonLinesAndRotatesBySize) {
  testing::TempDir dir;
  const std::string path = dir.File("alerts.jsonl");
  Sent s;
  const int64_t line = static_cast<int64_t>(s.json.size()) + 1;
  auto sink = Build({.name = "f",
                     .type = "file",
                     .format = "json",
                     .path = path,
                     .fsync = "always",
                     .rotate_bytes = line * 2,
                     .rotate_keep = 2});
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(s.To(*sink).status.ok());
  ASSERT_TRUE(sink->Flush().ok());
  // 7 lines, two per file: alerts.jsonl holds 1, .1 and .2 hold 2 each, the oldest 2 rotated away.
  EXPECT_EQ(testing::ReadFile(path), s.json + "\n");
  EXPECT_EQ(testing::ReadFile(path + ".1"), s.json + "\n" + s.json + "\n");
  EXPECT_EQ(testing::ReadFile(path + ".2"), s.json + "\n" + s.json + "\n");
  EXPECT_FALSE(testing::FileExists(path + ".3"));
  EXPECT_EQ(nlohmann::json::parse(testing::ReadFile(path))["id"], 7);
}

TEST(FileSinkTest, NoticesAFileMovedAwayAndReportsUnwritablePaths) {
  testing::TempDir dir;
  const std::string path = dir.File("alerts.jsonl");
  Sent s;
  auto sink = Build({.name = "f", .type = "file", .format = "json", .path = path, .fsync = "batch"});
  ASSERT_TRUE(s.To(*sink).status.ok());
  ASSERT_EQ(::rename(path.c_str(), (path + ".old").c_str()), 0);  // logrotate
  ASSERT_TRUE(s.To(*sink).status.ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(testing::ReadFile(path), s.json + "\n");
  auto nowhere =
      Build({.name = "n", .type = "file", .format = "json", .path = dir.File("missing/dir/a.jsonl")});
  DeliveryResult r = s.To(*nowhere);
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("missing/dir"), std::string::npos) << r.status.message();
}

// Issue 14: the alert file's directory may be writable by others; a link
// (symbolic or hard) planted at the path is refused, its target untouched.
TEST(FileSinkTest, RefusesALinkAtThePath) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("target"), "precious\n");
  const std::string path = dir.File("alerts.jsonl");
  Sent s;
  auto sink = Build({.name = "f", .type = "file", .format = "json", .path = path, .fsync = "batch"});
  for (const bool hard : {false, true}) {
    SCOPED_TRACE(hard ? "hard link" : "symbolic link");
    ::unlink(path.c_str());
    ASSERT_EQ(hard ? ::link(dir.File("target").c_str(), path.c_str())
                   : ::symlink(dir.File("target").c_str(), path.c_str()),
              0);
    DeliveryResult r = s.To(*sink);
    ASSERT_FALSE(r.status.ok());
    EXPECT_NE(r.status.message().find("refusing " + path), std::string::npos) << r.status.message();
    EXPECT_EQ(testing::ReadFile(dir.File("target")), "precious\n");
  }
}

// ---------------------------------------------------------------------------------------------
// syslog

TEST(SyslogFormatTest, Rfc5424Message) {
  Alert a = MakeAlert();
  a.rule_id = "odd\"rule]";
  const std::string msg = internal::FormatRfc5424(a, "{}", 4, "host name", 99);
  EXPECT_EQ(msg,
            "<35>1 2023-11-14T22:13:20.123Z host_name sentineld 99 alert "
            "[alert@32473 id=\"7\" rule=\"odd\\\"rule\\]\" severity=\"high\"] \xEF\xBB\xBF{}");
  EXPECT_EQ(internal::OctetCounted("abc"), "3 abc");
  EXPECT_EQ(internal::SyslogFacilityCode("local7"), 23);
  EXPECT_EQ(internal::SyslogSeverityCode(models::Severity::kCritical), 2);
}

TEST(FitAlertJsonTest, SmallAlertsAreUnchanged) {
  Sent s;
  EXPECT_EQ(internal::FitAlertJson(s.json, 8192), s.json);
}

TEST(FitAlertJsonTest, HugeArgvIsCutToFitMarkedAndStaysValidJson) {
  const Alert a = HugeAlert(70'000);
  const std::string json = a.ToJson().dump();
  ASSERT_GT(json.size(), 140'000u);
  for (size_t max : {size_t{1024}, size_t{8192}, size_t{65000}}) {
    const std::string fit = internal::FitAlertJson(json, max);
    EXPECT_LE(fit.size(), max);
    auto j = nlohmann::ordered_json::parse(fit);  // throws (fails the test) if invalid
    EXPECT_EQ(j["truncated"], true);
    EXPECT_EQ(j["id"], 7);
    EXPECT_EQ(j["rule_id"], "proc-deleted-executable");
    EXPECT_EQ(j["severity"], "high");
    EXPECT_EQ(j["process_count"], 1);
    const std::string cmdline = j["affected_processes"][0]["cmdline"];
    EXPECT_EQ(cmdline.substr(0, 64), std::string(64, 'A'));
    EXPECT_NE(cmdline.find("\xE2\x80\xA6[truncated "), std::string::npos) << cmdline;
    if (max == 65000) {
      EXPECT_GT(fit.size(), 60'000u) << "keeps as much as fits";
    }
  }
}

TEST(FitAlertJsonTest, ManyProcessesAndMultibyteTextStillFit) {
  Alert a = HugeAlert(3000, 500);
  a.title = std::string(5000, '\x01') + "\xe6\x97\xa5\xe6\x9c\xac";  // escapes grow: \u0001 is 6 bytes
  const std::string json = a.ToJson().dump();
  for (size_t max : {size_t{1024}, size_t{8192}}) {
    const std::string fit = internal::FitAlertJson(json, max);
    EXPECT_LE(fit.size(), max);
    auto j = nlohmann::ordered_json::parse(fit);
    EXPECT_EQ(j["truncated"], true);
    EXPECT_EQ(j["id"], 7);
    EXPECT_EQ(j["process_count"], 500);
  }
}

// Issue 14: an argv over 64 KiB made the alert too large for a datagram; it
// was dead-lettered as permanent and retrying failed the same way.
TEST(SyslogSinkTest, OversizedAlertIsCutToFitNotDeadLettered) {
  for (const std::string& proto : {std::string("udp"), std::string("tcp")}) {
    SCOPED_TRACE(proto);
    int port = 0;
    const bool udp = proto == "udp";
    int fd = Listen(udp ? SOCK_DGRAM : SOCK_STREAM, &port);
    auto sink = Build({.name = "s",
                       .type = "syslog",
                       .address = proto + "://127.0.0.1:" + std::to_string(port),
                       .facility = "local0"});
    Sent s;
    s.alert = HugeAlert(70'000);
    s.json = s.alert.ToJson().dump();
    DeliveryResult r = s.To(*sink);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_FALSE(r.permanent);
    std::string got;
    if (udp) {
      std::vector<char> buf(70'000);
      ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      ASSERT_GT(n, 0);
      got.assign(buf.data(), static_cast<size_t>(n));
    } else {
      int conn = ::accept(fd, nullptr, nullptr);
      timeval tv{10, 0};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      got = ReadFrame(conn);
      ::close(conn);
    }
    ::close(fd);
    EXPECT_LE(got.size(), internal::kDefaultSyslogMessageBytes);
    const size_t bom = got.find("\xEF\xBB\xBF");
    ASSERT_NE(bom, std::string::npos);
    auto j = nlohmann::ordered_json::parse(got.substr(bom + 3));
    EXPECT_EQ(j["truncated"], true);
    EXPECT_EQ(j["id"], 7);
  }
}

TEST(SyslogSinkTest, HostileNamesAreEscapedInTheMessage) {
  int port = 0;
  int fd = Listen(SOCK_DGRAM, &port);
  auto sink = Build({.name = "s", .type = "syslog", .address = "udp://127.0.0.1:" + std::to_string(port)});
  Sent s;
  s.alert.affected_processes[0]["name"] = kHostileName;
  s.json = s.alert.ToJson().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  ASSERT_TRUE(s.To(*sink).status.ok());
  const std::string got = TakeDatagram(fd);
  ASSERT_FALSE(got.empty());
  ExpectNoRawDanger(got);
  EXPECT_NE(got.find("\\u0085ALERT CRITICAL fake\\u202e\\u2066\\u2028"), std::string::npos) << got;
  EXPECT_EQ(nlohmann::ordered_json::parse(got.substr(got.find("\xEF\xBB\xBF") + 3)),
            nlohmann::ordered_json::parse(s.json));
}

TEST(SyslogSinkTest, MaxMessageBytesIsHonouredAndItsFloorChecked) {
  int port = 0;
  int fd = Listen(SOCK_DGRAM, &port);
  auto sink = Build({.name = "s",
                     .type = "syslog",
                     .address = "udp://127.0.0.1:" + std::to_string(port),
                     .max_message_bytes = 2048});
  Sent s;
  s.alert = HugeAlert(10'000);
  s.json = s.alert.ToJson().dump();
  ASSERT_TRUE(s.To(*sink).status.ok());
  const size_t n = TakeDatagram(fd).size();
  EXPECT_GT(n, 1500u);
  EXPECT_LE(n, 2048u);
  SinkRegistry registry;
  RegisterBuiltinSinks(registry);
  auto bad = registry.Build(
      {.name = "s", .type = "syslog", .address = "udp://127.0.0.1:514", .max_message_bytes = 100}, Env());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "sink \"s\": max_message_bytes: expected 0 (the default) or at least 1024, got 100");
}

TEST(SyslogSinkTest, UdpSendsOneDatagramPerAlert) {
  int port = 0;
  int fd = Listen(SOCK_DGRAM, &port);
  auto sink = Build({.name = "s",
                     .type = "syslog",
                     .address = "udp://127.0.0.1:" + std::to_string(port),
                     .facility = "local0"});
  Sent s;
  ASSERT_TRUE(s.To(*sink).status.ok());
  const std::string got = TakeDatagram(fd);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got, internal::FormatRfc5424(s.alert, s.json, 16, "testhost", ::getpid()));
  EXPECT_EQ(got.substr(0, 6), "<131>1");  // local0 (16) * 8 + err (3)
}

TEST(SyslogSinkTest, TcpFramesByOctetCountAndReconnectsAfterThePeerCloses) {
  int port = 0;
  int lfd = Listen(SOCK_STREAM, &port);
  auto sink = Build({.name = "s",
                     .type = "syslog",
                     .address = "tcp://127.0.0.1:" + std::to_string(port),
                     .timeout_ms = 2000});
  Sent s;
  const std::string expected = internal::FormatRfc5424(s.alert, s.json, 4, "testhost", ::getpid());
  ASSERT_TRUE(s.To(*sink).status.ok());
  int c1 = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(c1, 0);
  EXPECT_EQ(ReadFrame(c1), expected);
  ASSERT_TRUE(s.To(*sink).status.ok());  // same connection
  EXPECT_EQ(ReadFrame(c1), expected);
  const int sink_port = PeerPort(c1);
  ::close(c1);  // the receiver goes away ...
  ASSERT_TRUE(Eventually([&] { return TcpState(sink_port) == kTcpCloseWait; }))
      << "the sink's end never saw the receiver's FIN";
  ASSERT_TRUE(s.To(*sink).status.ok());  // ... and the next alert goes to a new connection
  int c2 = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(c2, 0);
  EXPECT_EQ(ReadFrame(c2), expected);
  ::close(c2);
  ::close(lfd);
}

TEST(SyslogSinkTest, NothingListeningIsAFailedAttempt) {
  auto sink = Build({.name = "s",
                     .type = "syslog",
                     .address = "tcp://127.0.0.1:" + std::to_string(FreePort(SOCK_STREAM)),
                     .timeout_ms = 1000});
  Sent s;
  DeliveryResult r = s.To(*sink);
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("connecting to 127.0.0.1"), std::string::npos) << r.status.message();
}

TEST(SyslogSinkTest, UnixDatagramSocketLikeDevLog) {
  testing::TempDir dir;
  const std::string path = dir.File("log.sock");
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  auto sink = Build({.name = "s", .type = "syslog", .address = "unix://" + path, .facility = "auth"});
  Sent s;
  ASSERT_TRUE(s.To(*sink).status.ok());
  EXPECT_EQ(TakeDatagram(fd), internal::FormatRfc5424(s.alert, s.json, 4, "testhost", ::getpid()));
}

TEST(SyslogSinkTest, RsyslogdReceivesOverUdpAndTcp) {
  if (!testing::FileExists("/usr/sbin/rsyslogd")) GTEST_SKIP() << "/usr/sbin/rsyslogd is not installed";
  testing::TempDir dir;
  const int udp = FreePort(SOCK_DGRAM);
  const int tcp = FreePort(SOCK_STREAM);
  const std::string out = dir.File("received.log");
  testing::WriteFile(
      dir.File("rsyslog.conf"),
      "global(workDirectory=\"" + dir.path() +
          "\")\n"
          "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"" +
          std::to_string(udp) +
          "\")\n"
          "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"" +
          std::to_string(tcp) +
          "\")\n"
          "template(name=\"t\" type=\"string\" string=\"%syslogfacility-text%.%syslogseverity-text% "
          "%hostname% %app-name% %msgid% %structured-data% %msg%\\n\")\n"
          "*.* action(type=\"omfile\" file=\"" +
          out + "\" template=\"t\")\n");
  Process rsyslogd(
      {"/usr/sbin/rsyslogd", "-n", "-f", dir.File("rsyslog.conf"), "-i", dir.File("rsyslogd.pid")});
  ASSERT_TRUE(rsyslogd.started());
  ASSERT_TRUE(Eventually([&] { return Accepts(tcp); })) << "rsyslogd did not start";
  Sent s;
  s.alert.id = 101;
  s.json = s.alert.ToJson().dump();
  auto via_udp = Build({.name = "u", .type = "syslog", .address = "udp://127.0.0.1:" + std::to_string(udp)});
  ASSERT_TRUE(s.To(*via_udp).status.ok());
  s.alert.id = 102;
  s.alert.severity = models::Severity::kCritical;
  s.json = s.alert.ToJson().dump();
  auto via_tcp = Build({.name = "t", .type = "syslog", .address = "tcp://127.0.0.1:" + std::to_string(tcp)});
  ASSERT_TRUE(s.To(*via_tcp).status.ok());
  ASSERT_TRUE(Eventually([&] {
    return testing::FileExists(out) && testing::ReadFile(out).find("id=\"102\"") != std::string::npos &&
           testing::ReadFile(out).find("id=\"101\"") != std::string::npos;
  })) << (testing::FileExists(out) ? testing::ReadFile(out) : "(no output)");
  const std::string got = testing::ReadFile(out);
  EXPECT_NE(got.find("auth.err testhost sentineld alert [alert@32473 id=\"101\""), std::string::npos) << got;
  EXPECT_NE(got.find("auth.crit testhost sentineld alert [alert@32473 id=\"102\""), std::string::npos) << got;
  EXPECT_NE(got.find("\"rule_id\":\"proc-deleted-executable\""), std::string::npos) << got;
}

TEST(SyslogSinkTest, RsyslogdReceivesAnOversizedAlertOverUdpAsValidJson) {
  if (!testing::FileExists("/usr/sbin/rsyslogd")) GTEST_SKIP() << "/usr/sbin/rsyslogd is not installed";
  testing::TempDir dir;
  const int udp = FreePort(SOCK_DGRAM);
  const int tcp = FreePort(SOCK_STREAM);  // only to know when rsyslogd is up
  const std::string out = dir.File("received.log");
  testing::WriteFile(dir.File("rsyslog.conf"),
                     "global(workDirectory=\"" + dir.path() +
                         "\")\n"
                         "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"" +
                         std::to_string(udp) +
                         "\")\n"
                         "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"" +
                         std::to_string(tcp) +
                         "\")\n"
                         "template(name=\"t\" type=\"string\" string=\"%msg%\\n\")\n"
                         "*.* action(type=\"omfile\" file=\"" +
                         out + "\" template=\"t\")\n");
  Process rsyslogd(
      {"/usr/sbin/rsyslogd", "-n", "-f", dir.File("rsyslog.conf"), "-i", dir.File("rsyslogd.pid")});
  ASSERT_TRUE(rsyslogd.started());
  ASSERT_TRUE(Eventually([&] { return Accepts(tcp); })) << "rsyslogd did not start";
  Sent s;
  s.alert = HugeAlert(70'000);
  s.alert.id = 303;
  s.json = s.alert.ToJson().dump();
  auto sink = Build({.name = "u", .type = "syslog", .address = "udp://127.0.0.1:" + std::to_string(udp)});
  DeliveryResult r = s.To(*sink);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(Eventually([&] {
    return testing::FileExists(out) && testing::ReadFile(out).find("\"id\":303") != std::string::npos;
  })) << (testing::FileExists(out) ? testing::ReadFile(out) : "(no output)");
  std::string got = testing::ReadFile(out);
  const size_t start = got.find('{');
  ASSERT_NE(start, std::string::npos) << got;
  got = got.substr(start, got.rfind('}') - start + 1);
  // rsyslog's default maxMessageSize (8096 bytes) would cut a longer message into invalid JSON;
  // the sink's default keeps within it.
  auto j = nlohmann::ordered_json::parse(got);
  EXPECT_EQ(j["truncated"], true);
  EXPECT_EQ(j["id"], 303);
}

TEST(EmailFormatTest, ReadableSubjectAndQuotedPrintableBody) {
  Alert a = MakeAlert();
  const std::string mail = internal::BuildEmail(a, a.ToJson().dump(), "SentinelD <sentinel@example.org>",
                                                {"soc@example.org"}, 1'700'000'000'000, "testhost", "oncall");
  EXPECT_NE(mail.find("Subject: [SentinelD] HIGH proc-deleted-executable: Process running from a deleted "
                      "executable (alert #7)\r\n"),
            std::string::npos)
      << mail;
  EXPECT_NE(mail.find("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"), std::string::npos);
  EXPECT_NE(mail.find("To: soc@example.org\r\n"), std::string::npos);
  EXPECT_NE(mail.find("Content-Transfer-Encoding: quoted-printable\r\n\r\n"), std::string::npos);
  EXPECT_NE(mail.find("  - pid 42  implant  /tmp/x (deleted)\r\n"), std::string::npos) << mail;
  for (const std::string& line : {std::string("a=b"), std::string(".starts with a dot")}) {
    const std::string qp = internal::QuotedPrintable(line);
    EXPECT_EQ(qp.find('\n'), std::string::npos);
    EXPECT_NE(qp[0], '.');
  }
  EXPECT_EQ(internal::QuotedPrintable(std::string(100, 'x')).find("=\r\n"), 75u);
  EXPECT_EQ(internal::EnvelopeAddress("SentinelD <s@e.org>"), "<s@e.org>");
  EXPECT_EQ(internal::EnvelopeAddress("s@e.org"), "<s@e.org>");
}

TEST(EmailFormatTest, Base64IsRfc4648) {
  // RFC 4648 §10 test vectors.
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : vectors) EXPECT_EQ(internal::Base64Encode(in), out) << in;
  EXPECT_EQ(internal::Base64Encode(std::string("\x00\xfb\xff", 3)), "APv/");
  // Past one internal chunk (49152 bytes): padding only at the very end.
  const std::string big(49153, 'a');
  const std::string enc = internal::Base64Encode(big);
  EXPECT_EQ(enc.size(), 4u * ((big.size() + 2) / 3));
  EXPECT_EQ(enc.find('='), enc.size() - 2);
  EXPECT_EQ(enc.substr(0, 8), "YWFhYWFh");
}

// ---- format: ocsf

// An alert whose finding row describes its process fully (as a processes-table rule returns it).
TEST(OcsfTest, DetectionFindingMapsTheAlert) {
  const Alert a = RichAlert();
  const nlohmann::json f = nlohmann::json::parse(OcsfJsonText(a, {"web-1.example", "web-1"}));
  ExpectDetectionFinding(f);
  EXPECT_EQ(f["severity_id"], 5);
  EXPECT_EQ(f["severity"], "Critical");
  EXPECT_EQ(f["time"], a.alert_time);
  EXPECT_EQ(f["finding_info"]["uid"], "web-1:9");
  EXPECT_EQ(f["finding_info"]["title"], a.title);
  EXPECT_EQ(f["finding_info"]["desc"], a.description);
  EXPECT_EQ(f["finding_info"]["types"], nlohmann::json::array({"proc-deleted-executable"}));
  EXPECT_EQ(f["finding_info"]["created_time"], a.alert_time);
  EXPECT_EQ(f["finding_info"]["analytic"]["uid"], "proc-deleted-executable");
  EXPECT_EQ(f["device"]["hostname"], "web-1.example");
  EXPECT_EQ(f["device"]["uid"], "web-1");
  ASSERT_EQ(f["evidences"].size(), 2u);
  const nlohmann::json& p = f["evidences"][0]["process"];
  EXPECT_EQ(p["pid"], 42);
  EXPECT_EQ(p["name"], "implant");
  EXPECT_EQ(p["cmd_line"], "/tmp/x -c evil");
  EXPECT_EQ(p["file"]["path"], "/tmp/x (deleted)");
  EXPECT_EQ(p["file"]["name"], "x (deleted)");
  EXPECT_EQ(p["file"]["hashes"][0]["algorithm_id"], 3);
  EXPECT_EQ(p["file"]["hashes"][0]["value"], std::string(64, 'e'));
  EXPECT_EQ(p["user"]["uid"], "1000");
  EXPECT_EQ(p["user"]["name"], "bob");
  EXPECT_EQ(p["parent_process"]["pid"], 1);
  // The second process is not the row's: only what the alert knows of it.
  const nlohmann::json& q = f["evidences"][1]["process"];
  EXPECT_EQ(q["pid"], 43);
  EXPECT_FALSE(q.contains("file"));
  EXPECT_FALSE(q.contains("cmd_line"));
  EXPECT_EQ(f["unmapped"]["rule_id"], "proc-deleted-executable");
  EXPECT_EQ(f["unmapped"]["rule_version"], 3);
  EXPECT_EQ(f["unmapped"]["scan_id"], 12);
  EXPECT_EQ(f["unmapped"]["raw_data"]["extra"], "kept");
  // Outside a fleet the finding uid is the alert id.
  EXPECT_EQ(ToOcsfDetectionFinding(a, {"h", ""})["finding_info"]["uid"], "9");
  EXPECT_EQ(OcsfSeverityId(models::Severity::kLow), 2);
  EXPECT_EQ(OcsfSeverityId(models::Severity::kMedium), 3);
  EXPECT_EQ(OcsfSeverityId(models::Severity::kHigh), 4);
}

TEST(OcsfTest, HostileProcessDataStaysValidJson) {
  Alert a = RichAlert();
  a.affected_processes[0]["name"] = kHostileName + "\xff\xfe";
  a.raw_data = "not json \xff";
  const std::string text = OcsfJsonText(a, {"h", ""});
  const nlohmann::json f = nlohmann::json::parse(text);  // invalid UTF-8 replaced, not thrown
  ExpectDetectionFinding(f);
  EXPECT_EQ(f["unmapped"]["raw_data"].get<std::string>().substr(0, 8), "not json");
}

TEST(FileSinkTest, OcsfFormatWritesOneDetectionFindingPerLine) {
  testing::TempDir dir;
  const std::string path = dir.File("alerts.ocsf.jsonl");
  SinkEnvironment env = Env();
  env.host_id = "host-7";
  env.fleet.servers = {"nats://127.0.0.1:1"};
  auto sink = Build({.name = "f", .type = "file", .format = "ocsf", .path = path, .fsync = "always"}, env);
  ASSERT_TRUE(sink);
  Sent s;
  s.alert = RichAlert();
  s.alert.affected_processes[0]["name"] = kHostileName;
  s.json = s.alert.ToJson().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  ASSERT_TRUE(s.To(*sink).status.ok());
  s.alert.id = 10;
  ASSERT_TRUE(s.To(*sink).status.ok());
  const std::string text = testing::ReadFile(path);
  ExpectNoRawDanger(text);
  std::istringstream lines(text);
  std::vector<nlohmann::json> found;
  for (std::string line; std::getline(lines, line);) found.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(found.size(), 2u);
  for (const auto& f : found) ExpectDetectionFinding(f);
  EXPECT_EQ(found[0]["finding_info"]["uid"], "host-7:9");
  EXPECT_EQ(found[1]["finding_info"]["uid"], "host-7:10");
  // The name's text is kept (escaped in the file, invalid UTF-8 replaced).
  EXPECT_NE(found[0]["evidences"][0]["process"]["name"].get<std::string>().find("ALERT CRITICAL fake"),
            std::string::npos);
}

// A sink type whose feature the build left out is registered with a factory that refuses it,
// naming the CMake option; one the build has is built by its own factory (which may refuse the
// empty settings here for its own reasons, never as a missing feature).
TEST(SinkRegistryTest, TypesLeftOutOfTheBuildAreRefusedNamingTheirOption) {
  SinkRegistry registry;
  RegisterBuiltinSinks(registry);
  const std::pair<std::string, Feature> kFeatureSinks[] = {
      {"webhook", Feature::kWebhook}, {"email", Feature::kEmail}, {"nats", Feature::kFleet}};
  for (const auto& [type, feature] : kFeatureSinks) {
    SCOPED_TRACE(type);
    ASSERT_TRUE(registry.Knows(type));
    auto sink = registry.Build({.name = "x", .type = type}, Env());
    if (Built(feature)) {
      if (!sink.ok()) {
        EXPECT_NE(sink.status().code(), StatusCode::kUnimplemented) << sink.status().ToString();
      }
    } else {
      ASSERT_FALSE(sink.ok());
      EXPECT_EQ(sink.status().code(), StatusCode::kUnimplemented);
      EXPECT_NE(sink.status().message().find(std::string(FeatureOf(feature).option) + "=ON"),
                std::string::npos)
          << sink.status().message();
    }
  }
}

TEST(EffectiveSinksTest, TheFleetAddsANatsSinkWhenAlertsAreForwarded) {
  config::Config cfg;
  EXPECT_EQ(EffectiveSinks(cfg), cfg.alerting.sinks) << "fleet off: the configured sinks only";
  cfg.fleet.servers = {"nats://127.0.0.1:4222"};
  std::vector<config::SinkConfig> sinks = EffectiveSinks(cfg);
  ASSERT_EQ(sinks.size(), cfg.alerting.sinks.size() + 1);
  EXPECT_EQ(sinks.back().name, "fleet");
  EXPECT_EQ(sinks.back().type, "nats");
  EXPECT_EQ(sinks.back().format, "json");
  cfg.alerting.sinks.push_back({.name = "fleet", .type = "file", .format = "json", .path = "/x"});
  EXPECT_EQ(EffectiveSinks(cfg).back().name, "fleet-nats");
  cfg.fleet.forward = {"scans"};
  EXPECT_EQ(EffectiveSinks(cfg), cfg.alerting.sinks) << "alerts not forwarded";
  cfg.fleet.forward = {"alerts"};
  cfg.alerting.sinks.push_back({.name = "mine", .type = "nats", .format = "ocsf"});
  EXPECT_EQ(EffectiveSinks(cfg), cfg.alerting.sinks) << "an explicit nats sink is the fleet's";
}

}  // namespace
}  // namespace sentinel::alerting
