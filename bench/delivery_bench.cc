// delivery_bench: 1,000 alerts through five sinks, one of them dead, versus
// the same without the dead sink (issue 5). What is measured is the time
// from queueing the alerts until every healthy sink has delivered all of
// them: a dead sink must not slow the others down (target: at most 2x).
// Also reported: when the dead sink's deliveries were all dead-lettered, and
// the process's peak RSS.
//
// Sinks: stdout (to /dev/null), file (JSON lines, fsync batch), syslog over
// UDP to a reader thread, a webhook to a cpp-httplib receiver, and in the
// first scenario a webhook to a loopback port nobody listens on.
//
// Usage: delivery_bench [--alerts N] [--runs R]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "bench/bench_util.h"
#include "sentinel/alerting/dispatcher.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"
#include "sentinel/testing/net.h"

namespace {

using namespace sentinel;
using bench::Ms;
using bench::UpperMedian;
using testing::FreePort;

struct Peers {
  httplib::Server http;
  int http_port = 0;
  std::thread http_thread;
  int udp_fd = -1;
  int udp_port = 0;
  std::atomic<bool> stop{false};
  std::atomic<long> datagrams{0};
  std::thread udp_thread;

  Peers() {
    http.Post("/hook", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    http_port = http.bind_to_any_port("127.0.0.1");
    http_thread = std::thread([this] { http.listen_after_bind(); });
    while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    udp_fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(udp_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    socklen_t len = sizeof sa;
    ::getsockname(udp_fd, reinterpret_cast<sockaddr*>(&sa), &len);
    udp_port = ntohs(sa.sin_port);
    int big = 8 << 20;
    ::setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    timeval tv{0, 100000};
    ::setsockopt(udp_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    udp_thread = std::thread([this] {
      char buf[65536];
      while (!stop) {
        if (::recv(udp_fd, buf, sizeof buf, 0) > 0) ++datagrams;
      }
    });
  }
  ~Peers() {
    stop = true;
    udp_thread.join();
    ::close(udp_fd);
    http.stop();
    http_thread.join();
  }
};

struct RunResult {
  double healthy_ms = 0;  // every healthy sink delivered everything
  double dead_ms = 0;     // the dead sink's deliveries all dead-lettered (scenario with it)
};

RunResult RunOnce(Peers& peers, int alerts, bool with_dead, int run) {
  char tmpl[] = "/tmp/delivery_bench_XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  const std::string db_path = dir + "/events.db";
  auto store = storage::EventStore::Open({db_path, storage::OpenMode::kReadWrite, 5000});
  if (!store.ok()) {
    std::fprintf(stderr, "delivery_bench: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  alerting::SinkRegistry registry;
  alerting::RegisterBuiltinSinks(registry);
  alerting::SinkEnvironment env = alerting::SinkEnvironment::Process();
  env.stdout_fd = devnull;
  std::vector<config::SinkConfig> configs = {
      {.name = "console", .type = "stdout", .format = "json"},
      {.name = "disk", .type = "file", .format = "json", .path = dir + "/alerts.jsonl"},
      {.name = "siem", .type = "syslog", .address = "udp://127.0.0.1:" + std::to_string(peers.udp_port)},
      {.name = "soar",
       .type = "webhook",
       .url = "http://127.0.0.1:" + std::to_string(peers.http_port) + "/hook"},
  };
  if (with_dead) {
    configs.push_back({.name = "dead",
                       .type = "webhook",
                       .url = "http://127.0.0.1:" + std::to_string(FreePort(SOCK_STREAM)) + "/hook",
                       .timeout_ms = 1000});
  }
  std::vector<alerting::SinkBinding> sinks;
  for (const auto& c : configs) {
    auto sink = registry.Build(c, env);
    if (!sink.ok()) {
      std::fprintf(stderr, "delivery_bench: %s\n", sink.status().ToString().c_str());
      std::exit(1);
    }
    sinks.push_back({std::move(sink).value(), std::nullopt});
  }
  alerting::DispatcherOptions opts;
  opts.database_path = db_path;
  opts.retry = {.max_attempts = 3, .initial_backoff_ms = 50, .max_backoff_ms = 200};
  opts.circuit_breaker = {.failure_threshold = 5, .open_secs = 1};
  alerting::Dispatcher d(opts, std::move(sinks));
  if (Status st = d.Start(); !st.ok()) {
    std::fprintf(stderr, "delivery_bench: %s\n", st.ToString().c_str());
    std::exit(1);
  }
  // The alerts are committed after Start, as a detection cycle would, and queued at t0.
  Status s = (*store)->db().Exec(
      "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + std::to_string(alerts) +
      ") INSERT INTO alerts(alert_time, rule_id, title, severity, affected_processes, process_count, "
      "raw_data, "
      "dedup_key) SELECT 1700000000000 + i, 'bench-rule', 'Benchmark alert', 'high', "
      "'[{\"pid\":' || i || ',\"name\":\"bench\",\"exe_path\":\"/usr/bin/bench\"}]', 1, '{\"pid\":' || i || "
      "'}', "
      "hex(randomblob(16)) FROM k");
  if (!s.ok()) {
    std::fprintf(stderr, "delivery_bench: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto queued = d.EnqueueNewAlerts();
  if (!queued.ok()) std::exit(1);
  RunResult r;
  bool healthy_done = false;
  while (true) {
    alerting::DeliveryMetrics m = d.Metrics();
    bool healthy = true, dead = true;
    for (const auto& sm : m.sinks) {
      if (sm.name == "dead") {
        dead = sm.dead_lettered == static_cast<uint64_t>(alerts);
      } else {
        healthy = healthy && sm.delivered == static_cast<uint64_t>(alerts);
      }
    }
    const double ms = Ms(std::chrono::steady_clock::now() - t0);
    if (healthy && !healthy_done) {
      healthy_done = true;
      r.healthy_ms = ms;
    }
    if (healthy_done && dead) {
      r.dead_ms = with_dead ? ms : 0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  d.Stop();
  ::close(devnull);
  std::filesystem::remove_all(dir);
  std::fprintf(
      stderr, "run %d %-12s healthy sinks done in %8.1f ms%s\n", run, with_dead ? "with dead" : "without",
      r.healthy_ms,
      with_dead ? (", dead sink drained to DLQ in " + std::to_string(r.dead_ms) + " ms").c_str() : "");
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int alerts = 1000, runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--alerts") alerts = std::atoi(argv[i + 1]);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
  }
  if (alerts < 1 || runs < 1) {
    std::fprintf(stderr, "usage: delivery_bench [--alerts N] [--runs R]\n");
    return 2;
  }
  telemetry::InitLogging("delivery_bench", telemetry::LogLevel::kError, telemetry::LogFormat::kText);
  Peers peers;
  std::vector<double> with, without, drained;
  for (int r = 0; r < runs; ++r) {
    // Interleaved, so drift (page cache, other load) hits both alike.
    RunResult a = RunOnce(peers, alerts, /*with_dead=*/true, r);
    with.push_back(a.healthy_ms);
    drained.push_back(a.dead_ms);
    without.push_back(RunOnce(peers, alerts, /*with_dead=*/false, r).healthy_ms);
  }
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const double m_with = UpperMedian(with), m_without = UpperMedian(without);
  std::printf("alerts=%d runs=%d\n", alerts, runs);
  std::printf("median healthy-sink completion, 4 healthy + 1 dead sink: %.1f ms\n", m_with);
  std::printf("median healthy-sink completion, 4 healthy sinks only:    %.1f ms\n", m_without);
  std::printf("ratio (target <= 2.0): %.2f\n", m_without > 0 ? m_with / m_without : 0.0);
  std::printf("median time until the dead sink's %d deliveries were all dead-lettered: %.1f ms\n", alerts,
              UpperMedian(drained));
  std::printf("peak RSS: %ld KiB\n", ru.ru_maxrss);
  return 0;
}
