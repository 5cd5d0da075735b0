// A full disk for real (issue 14 item 6): the data directory is a small
// tmpfs mounted by the test (needs root), the real procmond and agent run on
// it, and a filler file keeps it full. Then:
//   - health is unhealthy, naming the failing scan batch writes (collector)
//     and alert record writes (agent);
//   - alerts still reach the stdout sink (printed with id 0) and are counted
//     as unrecorded in /metrics;
//   - SIGTERM stops procmond while its writer retries, and the scans it
//     could not write are counted and logged once;
// and once space is freed, everything is healthy again.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/testing/net.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using namespace std::chrono_literals;

// A tmpfs of `size` mounted on `dir`, detached again on destruction.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& size) : dir_(dir) {
    ::mkdir(dir.c_str(), 0755);
    const std::string opts = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_code_ = errno;
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  int error_code() const { return error_code_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  int error_code_ = 0;
  std::string error_;
};

// Keeps the file system of `path` full: appends to it until ENOSPC, again
// every 100 ms (SQLite may free space, e.g. truncating a WAL), until stopped.
class Filler {
 public:
  explicit Filler(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    FillOnce();
    thread_ = std::thread([this] {
      while (!stop_.stopped()) {
        FillOnce();
        stop_.WaitFor(100ms);
      }
    });
  }
  ~Filler() { Free(); }
  bool hit_enospc() const { return enospc_; }
  void Free() {
    stop_.Stop();
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(path_.c_str());
  }

 private:
  void FillOnce() {
    static const std::string chunk(64 * 1024, 'f');
    if (fd_ < 0) return;
    ::lseek(fd_, 0, SEEK_END);
    while (true) {
      ssize_t n = ::write(fd_, chunk.data(), chunk.size());
      if (n > 0) continue;
      if (n < 0 && errno == ENOSPC) enospc_ = true;
      // A partial last page: fill it byte by byte is not needed, 4 KiB steps are.
      while (::write(fd_, chunk.data(), 4096) > 0) {
      }
      return;
    }
  }

  std::string path_;
  int fd_ = -1;
  StopSignal stop_;
  std::atomic<bool> enospc_{false};
  std::thread thread_;
};

TEST(FullDiskTest, HealthNamesFailingWritesAlertsStillReachStdoutAndSigtermIsHonoured) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: mounts a tmpfs for the data directory";
  Sandbox sb;
  const std::string data = sb.File("data");
  TmpfsMount mount(data, "24m");
  if (!mount.mounted() && mount.error_code() == EPERM) {
    GTEST_SKIP() << "cannot mount a tmpfs here (root without CAP_SYS_ADMIN, e.g. a container): "
                 << mount.error();
  }
  ASSERT_TRUE(mount.mounted()) << "mount -t tmpfs on " << data << ": " << mount.error();
  // The data directory belongs to the user the daemons drop to, as on an install.
  const passwd* pw = ::getpwnam(kServiceUser);
  ASSERT_NE(pw, nullptr) << "no user " << kServiceUser;
  ASSERT_EQ(::chown(data.c_str(), pw->pw_uid, pw->pw_gid), 0) << std::strerror(errno);
  ::mkdir(sb.File("rules.d").c_str(), 0755);
  // A rule that fires every cycle with a new dedup key.
  testing::WriteFile(sb.File("rules.d") + "/tick.yaml",
                     "id: every-cycle\nname: Every cycle\nseverity: high\ndedup_keys: [t]\n"
                     "query: SELECT 1 AS pid, 'tick' AS name, '/x' AS exe_path, :now_ms AS t\n");
  const int port = testing::FreePort();
  const std::string db = data + "/events.db";
  std::vector<std::string> env{"SENTINELD_DATABASE__PATH=" + db,
                               "SENTINELD_DATABASE__AUDIT_PATH=" + data + "/audit.db",
                               "SENTINELD_DETECTION__BUILTIN_RULES=false",
                               "SENTINELD_DETECTION__RULES_DIRS=[" + sb.File("rules.d") + "]",
                               "SENTINELD_DETECTION__INTERVAL_SECS=1",
                               "SENTINELD_COLLECTION__INTERVAL_SECS=1",
                               "SENTINELD_TELEMETRY__LOG_FORMAT=text",
                               "SENTINELD_TELEMETRY__HTTP_LISTEN=127.0.0.1:" + std::to_string(port),
                               "SENTINELD_IPC__SOCKET_DIR=" + sb.File("run")};
  const std::string cfg = sb.File("config.yaml");
  testing::WriteFile(cfg, "alerting:\n  sinks:\n    - {name: console, type: stdout, format: json}\n");
  auto procmond = std::make_unique<Child>(std::vector<std::string>{ProcmondBin(), "--config", cfg},
                                          sb.ProcmondEnv(env), "", sb.File("procmond.err"), true);
  Child agent({AgentBin(), "--config", cfg, "--no-collector"}, sb.ProcmondEnv(env), sb.File("agent.out"),
              sb.File("agent.err"), true);
  auto log = [&] {
    return "\nagent:\n" + testing::ReadFile(sb.File("agent.err")) + "\nprocmond:\n" +
           testing::ReadFile(sb.File("procmond.err"));
  };
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(30);
  http.set_read_timeout(60);
  nlohmann::json health;
  int health_status = 0;
  std::string metrics;
  auto scrape = [&] {
    auto h = http.Get("/health");
    auto m = http.Get("/metrics");
    if (!h || !m) return false;
    health_status = h->status;
    health = nlohmann::json::parse(h->body, nullptr, false);
    metrics = m->body;
    return true;
  };

  // Healthy, with scans and alerts stored.
  ASSERT_TRUE(WaitFor(
      [&] {
        return !agent.Running() || !procmond->Running() ||
               (scrape() && health_status == 200 &&
                TryQueryInt(db, "SELECT COUNT(*) FROM alerts").value_or(0) >= 1);
      },
      120s))
      << health.dump(2) << log();
  ASSERT_TRUE(agent.Running() && procmond->Running()) << log();

  // Fill the disk and keep it full.
  Filler filler(data + "/filler");
  ASSERT_TRUE(filler.hit_enospc());
  ASSERT_TRUE(WaitFor(
      [&] {
        if (!scrape()) return false;
        const std::string agent_detail = HealthComponent(health, "agent").value("detail", "");
        const std::string collector_detail = HealthComponent(health, "collector").value("detail", "");
        return health_status == 503 && Contains(agent_detail, "alert record writes failing") &&
               Contains(collector_detail, "scan batch writes failing") &&
               MetricSample(metrics, "sentinel_alerts_unrecorded_total").value_or(0) >= 1 &&
               MetricSample(metrics,
                            "sentinel_unrecorded_deliveries_total{sink=\"console\",outcome=\"success\"}")
                       .value_or(0) >= 1;
      },
      180s))
      << health.dump(2) << "\n"
      << metrics << log();
  EXPECT_EQ(HealthComponent(health, "agent").value("status", ""), "unhealthy");
  EXPECT_EQ(HealthComponent(health, "collector").value("status", ""), "unhealthy");
  EXPECT_GE(MetricSample(metrics, "sentinel_store_write_failures_total{path=\"alert_records\"}").value_or(0),
            1)
      << metrics;
  EXPECT_GE(MetricSample(metrics, "sentinel_procmond_scan_write_failures_total").value_or(0), 1) << metrics;
  // The stdout sink printed an alert the store never recorded (id 0).
  bool printed = false;
  for (const auto& line : SplitLines(testing::ReadFile(sb.File("agent.out")))) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("id", -1) == 0 && j.value("rule_id", "") == "every-cycle") printed = true;
  }
  EXPECT_TRUE(printed) << testing::ReadFile(sb.File("agent.out"));
  EXPECT_TRUE(Contains(testing::ReadFile(sb.File("agent.err")), "delivering it from memory")) << log();

  // SIGTERM while procmond's writer retries and its main loop waits for
  // queue room (scans every 1 s, two queued at most, the sixth failed
  // attempt comes after ~6 s of backoff): it stops (a generous wait, not a
  // timing assertion) and says once how many scans were lost.
  ASSERT_TRUE(WaitFor(
      [&] {
        return scrape() &&
               MetricSample(metrics, "sentinel_procmond_scan_write_failures_total").value_or(0) >= 6;
      },
      120s))
      << metrics << log();
  procmond->Signal(SIGTERM);
  auto rc = procmond->Wait(60s);
  ASSERT_TRUE(rc.has_value()) << "procmond ignored SIGTERM on a full disk" << log();
  EXPECT_EQ(*rc, 1) << "scans were lost: a runtime failure" << log();
  const std::string perr = testing::ReadFile(sb.File("procmond.err"));
  EXPECT_TRUE(Contains(perr, "scans lost at shutdown")) << perr;
  const size_t at = perr.find("scans_lost=");
  ASSERT_NE(at, std::string::npos) << perr;
  EXPECT_GE(std::stoi(perr.substr(at + 11)), 2) << "the queued scans and the one waiting for room\n" << perr;
  size_t logged = 0;
  for (const auto& line : SplitLines(perr))
    logged += Contains(line, "ERROR procmond: scans lost at shutdown") ? 1 : 0;
  EXPECT_EQ(logged, 1u) << perr;

  // Space again: a new procmond writes, the agent records, health is ok.
  filler.Free();
  procmond = std::make_unique<Child>(std::vector<std::string>{ProcmondBin(), "--config", cfg},
                                     sb.ProcmondEnv(env), "", sb.File("procmond2.err"), true);
  ASSERT_TRUE(WaitFor([&] { return !agent.Running() || (scrape() && health_status == 200); }, 180s))
      << health.dump(2) << log() << testing::ReadFile(sb.File("procmond2.err"));
  EXPECT_EQ(MetricSample(metrics, "sentinel_store_writes_failing{path=\"alert_records\"}"), 0.0) << metrics;

  agent.Signal(SIGTERM);
  procmond->Signal(SIGTERM);
  EXPECT_TRUE(agent.Wait(60s).has_value());
  EXPECT_TRUE(procmond->Wait(60s).has_value());
}

}  // namespace
}  // namespace sentinel::itest
