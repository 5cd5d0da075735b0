// Shared by the sink tests (sinks_test.cc, and webhook_sink_test.cc / email_sink_test.cc in a
// build with those sinks): alerts to deliver, hostile names, a sink built through the registry,
// loopback sockets and child processes.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/alerting/sink.h"
#include "sentinel/alertstore/test_util.h"
#include "sentinel/models/severity.h"
#include "sentinel/testing/net.h"
#include "sentinel/testing/temp_dir.h"

extern char** environ;

namespace sentinel::alerting::sinktest {

inline Alert MakeAlert(int64_t id = 7, models::Severity sev = models::Severity::kHigh) {
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
inline const std::string kHostileName =
    "a\x1b[2J\xc2\x9b"
    "31m\xc2\x85"
    "ALERT CRITICAL fake\xe2\x80\xae\xe2\x81\xa6\xe2\x80\xa8\x9b";
// The raw forms that must appear nowhere in output a person reads.
inline const std::vector<std::string> kRawDangers = {
    "\x1b", "\xc2\x9b", "\xc2\x85", "\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x80\xa8", "\x9b"};

inline void ExpectNoRawDanger(const std::string& out) {
  for (const std::string& raw : kRawDangers) {
    EXPECT_EQ(out.find(raw), std::string::npos)
        << "raw bytes of " << ::testing::PrintToString(raw) << " in " << ::testing::PrintToString(out);
  }
}

// An alert whose command line is `argv_bytes` long (an attacker's huge argv).
inline Alert HugeAlert(size_t argv_bytes, size_t processes = 1) {
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

inline SinkEnvironment Env(std::map<std::string, std::string> vars = {}) {
  SinkEnvironment env;
  env.getenv = [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  env.hostname = "testhost";
  return env;
}

inline std::unique_ptr<AlertSink> Build(const config::SinkConfig& cfg, const SinkEnvironment& env = Env()) {
  SinkRegistry registry;
  RegisterBuiltinSinks(registry);
  auto sink = registry.Build(cfg, env);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  return sink.ok() ? std::move(sink).value() : nullptr;
}

// A listening loopback socket of `type`; returns the fd, port in *port.
inline int Listen(int type, int* port) {
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
inline std::string TakeDatagram(int fd) {
  char buf[65536];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

inline std::string ReadN(int fd, size_t n) {
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
inline std::string ReadFrame(int fd) {
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
inline int PeerPort(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return -1;
  return ntohs(sa.sin_port);
}

// The state (/proc/net/tcp "st" column) of the loopback TCP socket bound to
// local port `port`, or -1.
inline constexpr int kTcpCloseWait = 0x08;  // the peer has closed its side
inline int TcpState(int port) {
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

inline bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

inline Alert RichAlert() {
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
inline void ExpectDetectionFinding(const nlohmann::json& f) {
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

}  // namespace sentinel::alerting::sinktest
