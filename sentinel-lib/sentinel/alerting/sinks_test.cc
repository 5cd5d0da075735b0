// The sinks against real peers started here, on loopback only: a raw
// UDP/TCP syslog reader (exact RFC 5424 / RFC 6587 bytes), rsyslogd with its
// own configuration, an HTTP receiver (cpp-httplib) that accepts, fails,
// refuses, hangs or answers garbage, an SMTP server (python3-aiosmtpd) and a
// port with nothing behind it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>

#include "sentinel/alerting/internal/formats.h"
#include "sentinel/alerting/ocsf.h"
#include "sentinel/alerting/sink.h"
#include "sentinel/alertstore/test_util.h"
#include "sentinel/models/severity.h"
#include "sentinel/testing/net.h"
#include "sentinel/testing/temp_dir.h"

extern char** environ;

namespace sentinel::alerting {
namespace {

using internal::Eventually;
using testing::FreePort;

Alert MakeAlert(int64_t id = 7, models::Severity sev = models::Severity::kHigh) {
  Alert a;
  a.id = id;
  a.alert_time = 1'700'000'000'123;
  a.rule_id = "proc-deleted-executable";
  a.title = "Process running from a deleted executable";
  a.description = "The binary was removed.";
  a.severity = sev;
  a.affected_processes =
      nlohmann::ordered_json::parse(R"j([{"pid":42,"name":"implant","exe_path":"/tmp/x (deleted)"}])j");
  a.process_count = 1;
  a.raw_data = R"({"pid":42})";
  return a;
}

// Issue 14's hostile process: ESC, C1 CSI (encoded and as a raw byte), NEL
// forging a second ALERT line, bidi override and isolate, line separator.
const std::string kHostileName =
    "a\x1b[2J\xc2\x9b"
    "31m\xc2\x85"
    "ALERT CRITICAL fake\xe2\x80\xae\xe2\x81\xa6\xe2\x80\xa8\x9b";
// The raw forms that must appear nowhere in output a person reads.
const std::vector<std::string> kRawDangers = {"\x1b",         "\xc2\x9b",     "\xc2\x85", "\xe2\x80\xae",
                                              "\xe2\x81\xa6", "\xe2\x80\xa8", "\x9b"};

void ExpectNoRawDanger(const std::string& out) {
  for (const std::string& raw : kRawDangers) {
    EXPECT_EQ(out.find(raw), std::string::npos)
        << "raw bytes of " << ::testing::PrintToString(raw) << " in " << ::testing::PrintToString(out);
  }
}

// An alert whose command line is `argv_bytes` long (an attacker's huge argv).
Alert HugeAlert(size_t argv_bytes, size_t processes = 1) {
  Alert a = MakeAlert();
  a.affected_processes = nlohmann::ordered_json::array();
  for (size_t i = 0; i < processes; ++i) {
    a.affected_processes.push_back(
        {{"pid", 42 + i}, {"name", "implant"}, {"cmdline", std::string(argv_bytes, 'A')}});
  }
  a.process_count = static_cast<int64_t>(processes);
  a.raw_data = nlohmann::ordered_json({{"cmdline", std::string(argv_bytes, 'B')}}).dump();
  return a;
}

struct Sent {
  Alert alert = MakeAlert();
  std::string json = alert.ToJson().dump();
  DeliveryResult To(AlertSink& sink, int attempt = 1) {
    return sink.Deliver({alert, json, attempt, std::to_string(alert.id) + ":" + sink.name()});
  }
};

SinkEnvironment Env(std::map<std::string, std::string> vars = {}) {
  SinkEnvironment env;
  env.getenv = [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  env.hostname = "testhost";
  return env;
}

std::unique_ptr<AlertSink> Build(const config::SinkConfig& cfg, const SinkEnvironment& env = Env()) {
  SinkRegistry registry;
  RegisterBuiltinSinks(registry);
  auto sink = registry.Build(cfg, env);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  return sink.ok() ? std::move(sink).value() : nullptr;
}

// A listening loopback socket of `type`; returns the fd, port in *port.
int Listen(int type, int* port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  if (type == SOCK_STREAM) ::listen(fd, 8);
  *port = ntohs(sa.sin_port);
  timeval tv{10, 0};  // a broken test fails instead of hanging
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// The one datagram waiting on `fd`, which is closed after; empty when none could be read.
std::string TakeDatagram(int fd) {
  char buf[65536];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string ReadN(int fd, size_t n) {
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

// One octet-counted frame: "LEN SP MSG".
std::string ReadFrame(int fd) {
  std::string len;
  char c;
  while (::recv(fd, &c, 1, 0) == 1 && c != ' ') len += c;
  if (len.empty()) return "";
  return ReadN(fd, std::stoul(len));
}

// A child process killed (SIGTERM, then SIGKILL) and reaped on destruction.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0) pid_ = -1;
  }
  ~Process() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// The remote port of a connected socket: for an accepted one, the sink's end.
int PeerPort(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return -1;
  return ntohs(sa.sin_port);
}

// The state (/proc/net/tcp "st" column) of the loopback TCP socket bound to
// local port `port`, or -1.
constexpr int kTcpCloseWait = 0x08;  // the peer has closed its side
int TcpState(int port) {
  std::istringstream lines(testing::ReadFile("/proc/net/tcp"));
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    const size_t colon = local.find(':');
    if (colon == std::string::npos || std::stoi(local.substr(colon + 1), nullptr, 16) != port) continue;
    return std::stoi(state, nullptr, 16);
  }
  return -1;
}

bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

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

// ---- format: ocsf

// An alert whose finding row describes its process fully (as a processes-table rule returns it).
Alert RichAlert() {
  Alert a = MakeAlert(9, models::Severity::kCritical);
  a.rule_version = 3;
  a.scan_id = 12;
  a.dedup_key = "abc";
  a.affected_processes = nlohmann::ordered_json::parse(
      R"j([{"pid":42,"name":"implant","exe_path":"/tmp/x (deleted)"},{"pid":43,"name":"sh","exe_path":null}])j");
  a.process_count = 2;
  a.raw_data = R"j({"pid":42,"ppid":1,"command_line":"[\"/tmp/x\",\"-c\",\"evil\"]","exe_hash":")j" +
               std::string(64, 'e') + R"j(","user_id":1000,"user_name":"bob","extra":"kept"})j";
  return a;
}

// The OCSF 1.1.0 Detection Finding's required attributes and their types, and ours.
void ExpectDetectionFinding(const nlohmann::json& f) {
  ASSERT_TRUE(f.is_object()) << f.dump();
  EXPECT_EQ(f["class_uid"], 2004);
  EXPECT_EQ(f["category_uid"], 2);
  EXPECT_EQ(f["activity_id"], 1);
  EXPECT_EQ(f["type_uid"], 200401);
  for (const char* key : {"severity_id", "time", "status_id"}) EXPECT_TRUE(f[key].is_number_integer()) << key;
  ASSERT_TRUE(f["finding_info"].is_object());
  for (const char* key : {"uid", "title", "desc"}) EXPECT_TRUE(f["finding_info"][key].is_string()) << key;
  EXPECT_TRUE(f["finding_info"]["types"].is_array());
  EXPECT_TRUE(f["finding_info"]["created_time"].is_number_integer());
  ASSERT_TRUE(f["metadata"].is_object());
  EXPECT_EQ(f["metadata"]["version"], "1.1.0");
  EXPECT_EQ(f["metadata"]["product"]["name"], "SentinelD");
  EXPECT_TRUE(f["metadata"]["product"]["vendor_name"].is_string());
  EXPECT_TRUE(f["metadata"]["product"]["version"].is_string());
  ASSERT_TRUE(f["evidences"].is_array());
  for (const auto& e : f["evidences"]) {
    ASSERT_TRUE(e["process"].is_object()) << e.dump();
    if (e["process"].contains("file")) {
      EXPECT_TRUE(e["process"]["file"]["name"].is_string());
      EXPECT_TRUE(e["process"]["file"]["type_id"].is_number_integer());
    }
  }
  EXPECT_TRUE(f["unmapped"].is_object());
}

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
