#include "sentinel/testing/nats_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "sentinel/testing/net.h"

namespace sentinel::testing {
namespace {

using Steady = std::chrono::steady_clock;

// The body of GET http://127.0.0.1:port/path, or "" when the server did not answer in 1 s.
std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buf[8192];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The meta leader a node's /jsz reports, "" when none or the node does not answer.
std::string LeaderOf(int http_port) {
  const nlohmann::json jsz = nlohmann::json::parse(HttpGet(http_port, "/jsz"), nullptr, false);
  if (!jsz.is_object() || !jsz.contains("meta_cluster")) return "";
  const nlohmann::json& meta = jsz["meta_cluster"];
  return meta.is_object() && meta.contains("leader") && meta["leader"].is_string()
             ? meta["leader"].get<std::string>()
             : "";
}

bool Healthy(int http_port) {
  const nlohmann::json h = nlohmann::json::parse(HttpGet(http_port, "/healthz"), nullptr, false);
  return h.is_object() && h.value("status", "") == "ok";
}

std::string Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

std::string NodeConf(const std::string& name, int client, int http, int route, const std::string& store,
                     const std::vector<int>& routes, const std::string& extra) {
  std::string conf = "server_name: " + name + "\nlisten: 127.0.0.1:" + std::to_string(client) +
                     "\nhttp: 127.0.0.1:" + std::to_string(http) + "\njetstream {\n  store_dir: \"" + store +
                     "\"\n  max_memory_store: 268435456\n  max_file_store: 4294967296\n}\n";
  if (!routes.empty()) {
    conf +=
        "cluster {\n  name: sentinel-test\n  listen: 127.0.0.1:" + std::to_string(route) + "\n  routes: [";
    for (size_t i = 0; i < routes.size(); ++i) {
      conf += (i ? ", " : "") + std::string("nats-route://127.0.0.1:") + std::to_string(routes[i]);
    }
    conf += "]\n}\n";
  }
  return conf + extra + "\n";
}

// Waits up to `timeout` for pid to exit; true when reaped.
bool ReapWithin(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (Steady::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::optional<std::string> NatsCluster::SkipReason() {
  if (::access(kNatsServerPath, X_OK) != 0) {
    return std::string(kNatsServerPath) +
           " is not installed (Debian package nats-server); NATS tests skipped";
  }
  return std::nullopt;
}

Result<std::unique_ptr<NatsCluster>> NatsCluster::Start(int nodes, const std::string& extra_conf,
                                                        int64_t timeout_ms) {
  if (auto why = SkipReason()) return FailedPreconditionError(*why);
  if (nodes < 1) return InvalidArgumentError("NatsCluster: at least one node, got " + std::to_string(nodes));
  std::unique_ptr<NatsCluster> c(new NatsCluster());
  std::vector<int> routes;
  // FreePort() closes the port it found, so two calls can return the same
  // one (seen: n1 and n2 both given one client port, n2 then failed to
  // bind): every port of the cluster is distinct.
  std::set<int> taken;
  auto distinct_port = [&taken] {
    int port = FreePort();
    while (!taken.insert(port).second) port = FreePort();
    return port;
  };
  for (int i = 0; i < nodes; ++i) {
    Node n;
    n.name = "n" + std::to_string(i + 1);
    n.client_port = distinct_port();
    n.route_port = distinct_port();
    n.http_port = distinct_port();
    n.conf = c->dir_.File(n.name + ".conf");
    n.log = c->dir_.File(n.name + ".log");
    if (nodes > 1) routes.push_back(n.route_port);
    c->nodes_.push_back(std::move(n));
  }
  for (Node& n : c->nodes_) {
    WriteFile(n.conf, NodeConf(n.name, n.client_port, n.http_port, n.route_port, c->dir_.File(n.name), routes,
                               extra_conf));
    if (Status s = c->Launch(n); !s.ok()) return s;
  }
  for (const Node& n : c->nodes_) RETURN_IF_ERROR(c->WaitHealthy(n, timeout_ms));
  RETURN_IF_ERROR(c->WaitForMetaLeader(timeout_ms));
  return c;
}

NatsCluster::~NatsCluster() {
  StopAll();
}

Status NatsCluster::Launch(Node& n) {
  std::vector<std::string> args = {kNatsServerPath, "-c", n.conf};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int log_fd = ::open(n.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return InternalError("NatsCluster: cannot open " + n.log + ": " + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return InternalError(std::string("NatsCluster: fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also in the parent: signals by group work before the child ran
  ::close(log_fd);
  n.pid = pid;
  return Status::Ok();
}

template <class Pred>
Status NatsCluster::WaitUntil(const Node& n, int64_t timeout_ms, const std::string& what, Pred pred) const {
  const auto deadline = Steady::now() + std::chrono::milliseconds(timeout_ms);
  while (Steady::now() < deadline) {
    if (pred()) return Status::Ok();
    int status = 0;
    if (n.pid != 0 && ::waitpid(n.pid, &status, WNOHANG) == n.pid) {
      return UnavailableError("nats-server " + n.name + " exited during start-up; logs:\n" + Logs());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return DeadlineExceededError("nats-server " + n.name + " not " + what + " within " +
                               std::to_string(timeout_ms) + " ms; logs:\n" + Logs());
}

Status NatsCluster::WaitUp(const Node& n, int64_t timeout_ms) const {
  return WaitUntil(n, timeout_ms, "accepting connections",
                   [&n] { return !HttpGet(n.http_port, "/varz").empty(); });
}

Status NatsCluster::WaitHealthy(const Node& n, int64_t timeout_ms) const {
  return WaitUntil(n, timeout_ms, "healthy", [&n] { return Healthy(n.http_port); });
}

std::vector<std::string> NatsCluster::urls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}

std::string NatsCluster::url(int i) const {
  return "nats://127.0.0.1:" + std::to_string(nodes_.at(static_cast<size_t>(i)).client_port);
}

int NatsCluster::client_port(int i) const {
  return nodes_.at(static_cast<size_t>(i)).client_port;
}

bool NatsCluster::running(int i) const {
  return nodes_.at(static_cast<size_t>(i)).pid != 0;
}

pid_t NatsCluster::pid(int i) const {
  return nodes_.at(static_cast<size_t>(i)).pid;
}

const std::string& NatsCluster::conf_path(int i) const {
  return nodes_.at(static_cast<size_t>(i)).conf;
}

const std::string& NatsCluster::log_path(int i) const {
  return nodes_.at(static_cast<size_t>(i)).log;
}

Status NatsCluster::Kill(int i) {
  Node& n = nodes_.at(static_cast<size_t>(i));
  if (n.pid == 0) return FailedPreconditionError("nats-server " + n.name + " is not running");
  ::kill(-n.pid, SIGKILL);
  ReapWithin(n.pid, std::chrono::seconds(10));
  n.pid = 0;
  return Status::Ok();
}

Status NatsCluster::Stop(int i) {
  Node& n = nodes_.at(static_cast<size_t>(i));
  if (n.pid == 0) return Status::Ok();
  ::kill(-n.pid, SIGTERM);
  if (!ReapWithin(n.pid, std::chrono::seconds(10))) {
    ::kill(-n.pid, SIGKILL);
    ReapWithin(n.pid, std::chrono::seconds(10));
  }
  n.pid = 0;
  return Status::Ok();
}

Status NatsCluster::Restart(int i, int64_t timeout_ms) {
  Node& n = nodes_.at(static_cast<size_t>(i));
  if (n.pid != 0) RETURN_IF_ERROR(Stop(i));
  RETURN_IF_ERROR(Launch(n));
  RETURN_IF_ERROR(WaitUp(n, timeout_ms));
  int running = 0;
  for (const Node& other : nodes_) running += other.pid != 0 ? 1 : 0;
  return 2 * running > size() ? WaitForMetaLeader(timeout_ms) : Status::Ok();
}

void NatsCluster::StopAll() {
  for (int i = 0; i < size(); ++i) (void)Stop(i);
}

std::string NatsCluster::MetaLeader() const {
  for (const Node& n : nodes_) {
    if (n.pid == 0) continue;
    std::string leader = LeaderOf(n.http_port);
    if (!leader.empty()) return leader;
  }
  return "";
}

Status NatsCluster::WaitForMetaLeader(int64_t timeout_ms) const {
  if (size() == 1)
    return nodes_[0].pid == 0 ? FailedPreconditionError("nats-server n1 is not running")
                              : WaitHealthy(nodes_[0], timeout_ms);
  const auto deadline = Steady::now() + std::chrono::milliseconds(timeout_ms);
  while (Steady::now() < deadline) {
    if (!MetaLeader().empty()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return DeadlineExceededError("no JetStream meta leader within " + std::to_string(timeout_ms) +
                               " ms; logs:\n" + Logs());
}

std::string NatsCluster::Logs() const {
  std::string out;
  for (const Node& n : nodes_) out += "--- " + n.name + " (" + n.log + "):\n" + Tail(n.log, 2000);
  return out;
}

}  // namespace sentinel::testing
