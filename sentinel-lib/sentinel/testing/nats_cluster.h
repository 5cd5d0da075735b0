// NatsCluster: real nats-server processes with JetStream for tests (SPEC §14, PLAN19). Start(3)
// forms a cluster on 127.0.0.1 (free client, route and monitoring ports, one store directory per
// node in the cluster's own temporary directory) and returns once a JetStream meta leader is
// elected; Start(1) is a cheap single server. Each server runs in its own process group and is
// only ever signalled through that group (never by name). Test-only; not thread-safe.
//
// Tests that need it skip when the server is missing:
//   if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::testing {

inline constexpr const char* kNatsServerPath = "/usr/sbin/nats-server";

class NatsCluster {
 public:
  // Why NATS tests cannot run here (nats-server not installed), or nullopt.
  static std::optional<std::string> SkipReason();

  // Starts `nodes` servers (1 = standalone JetStream, more = one cluster) and waits (at most
  // timeout_ms) until every node answers and, for a cluster, a meta leader exists. `extra_conf`
  // is appended to every node's configuration (e.g. an authorization block). On failure nothing is
  // left running and the error carries the end of each node's log.
  static Result<std::unique_ptr<NatsCluster>> Start(int nodes = 3, const std::string& extra_conf = "",
                                                    int64_t timeout_ms = 20000);

  ~NatsCluster();  // StopAll()
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  int size() const { return static_cast<int>(nodes_.size()); }
  // nats://127.0.0.1:PORT of every node / of node i (also of stopped nodes: they come back there).
  std::vector<std::string> urls() const;
  std::string url(int i) const;
  int client_port(int i) const;
  bool running(int i) const;
  pid_t pid(int i) const;  // 0 when not running
  const std::string& conf_path(int i) const;
  const std::string& log_path(int i) const;
  std::string dir() const { return dir_.path(); }

  // SIGKILL to node i's process group, then reaps it.
  Status Kill(int i);
  // SIGTERM to node i's process group; SIGKILL if it has not exited within 10 s.
  Status Stop(int i);
  // Starts node i again (same configuration, ports and store) and waits until it accepts
  // connections and, when a majority of the nodes is running (a quorum), a meta leader exists.
  Status Restart(int i, int64_t timeout_ms = 20000);
  // Stops every running node.
  void StopAll();

  // The meta leader's server name ("n1".."nN") as a running node reports it; "" when none.
  std::string MetaLeader() const;
  // Waits until a running node reports a meta leader (standalone: until the node is healthy).
  Status WaitForMetaLeader(int64_t timeout_ms) const;

 private:
  struct Node {
    std::string name;
    int client_port = 0, route_port = 0, http_port = 0;
    std::string conf, log;
    pid_t pid = 0;
  };
  NatsCluster() = default;
  Status Launch(Node& node);
  Status WaitHealthy(const Node& node, int64_t timeout_ms) const;
  Status WaitUp(const Node& node, int64_t timeout_ms) const;
  template <class Pred>
  Status WaitUntil(const Node& node, int64_t timeout_ms, const std::string& what, Pred pred) const;
  std::string Logs() const;

  TempDir dir_;
  std::vector<Node> nodes_;
};

}  // namespace sentinel::testing
