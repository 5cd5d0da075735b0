// exec_storm_bench: how many processes that live for a millisecond does each
// way of watching them record?
//
// A storm of N short-lived processes (default 20,000: `spawners` processes,
// each posix_spawn()ing /bin/true with a unique token argument and reaping
// it, as fast as the machine goes) is watched, one contender per storm, by:
//   ebpf     procmond with collection.realtime_source: ebpf
//   netlink  procmond with collection.realtime_source: netlink
//   poll1s   a reader of every /proc/PID/cmdline once a second
//   auditd   Debian's auditd logging execve (-a always,exit -S execve), started
//            by the benchmark with a temporary configuration and log, stopped after
// For each: % of the storm's processes recorded, % with the exact argv, and
// the CPU the watcher spent (utime+stime from /proc/PID/stat) per exec.
// procmond and auditd run with their own data in a temp dir; only the
// processes the benchmark started are stopped, by pid.
//
// Usage: exec_storm_bench [--procs N] [--spawners S] [--procmond PATH]
//                         [--only ebpf,netlink,poll1s,auditd]
// Needs root. Not a test; figures go to docs/benchmarks.md.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "sentinel/storage/sqlite.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using sentinel::bench::AuditdSession;
using sentinel::bench::CpuSeconds;
using sentinel::bench::ReadAll;
using sentinel::bench::Spawn;
using sentinel::bench::WaitForText;

std::string Token(const std::string& run, int spawner, int i) {
  return "sentinel-storm-" + run + "-" + std::to_string(spawner) + "-" + std::to_string(i);
}

// The storm: `spawners` forked processes, each spawning and reaping its share.
// Returns the storm's wall time in seconds.
double Storm(const std::string& run, int procs, int spawners) {
  auto t0 = Clock::now();
  std::vector<pid_t> kids;
  for (int s = 0; s < spawners; ++s) {
    pid_t k = fork();
    if (k == 0) {
      const int share = procs / spawners + (s < procs % spawners ? 1 : 0);
      char truebin[] = "/bin/true";
      for (int i = 0; i < share; ++i) {
        std::string tok = Token(run, s, i);
        char* argv[] = {truebin, tok.data(), nullptr};
        pid_t p = -1;
        if (posix_spawn(&p, truebin, nullptr, nullptr, argv, environ) == 0) waitpid(p, nullptr, 0);
      }
      _exit(0);
    }
    kids.push_back(k);
  }
  for (pid_t k : kids) waitpid(k, nullptr, 0);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Outcome {
  std::string name;
  bool ran = false;
  std::string note;
  int seen = 0, exact = 0;
  double cpu_s = 0, storm_s = 0;
  int64_t lost = -1;
  int64_t events = -1;  // exec events the watcher received (all processes, not only the storm's)
};

// Every token of `run` found in `argv` lists: (seen, exact).
void CountTokens(const std::string& run, int procs, int spawners, const std::map<std::string, bool>& found,
                 Outcome* o) {
  (void)procs;
  (void)spawners;
  for (const auto& [tok, exact] : found) {
    if (tok.rfind("sentinel-storm-" + run + "-", 0) != 0) continue;
    o->seen++;
    if (exact) o->exact++;
  }
}

Outcome RunProcmond(const std::string& source, const std::string& procmond, const std::string& tmp, int procs,
                    int spawners) {
  Outcome o;
  o.name = source;
  const std::string dir = tmp + "/" + source;
  fs::create_directories(dir);
  const std::string err = dir + "/procmond.err", db = dir + "/events.db";
  pid_t pid = Spawn(
      {procmond},
      {"HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "SENTINELD_DATABASE__PATH=" + db,
       "SENTINELD_DATABASE__AUDIT_PATH=" + dir + "/audit.db", "SENTINELD_COLLECTION__INTERVAL_SECS=3600",
       "SENTINELD_COLLECTION__REALTIME_SOURCE=" + source, "SENTINELD_IPC__SOCKET_DIR=" + dir + "/ipc",
       "SENTINELD_TELEMETRY__LOG_FORMAT=text", "SENTINELD_PRIVILEGES__USER=nobody"},
      err);
  if (pid <= 0 || !WaitForText(err, "real-time event source started", 60) ||
      !WaitForText(err, "scan written", 120)) {
    o.note = "procmond did not start: " + ReadAll(err).substr(0, 300);
    if (pid > 0) kill(pid, SIGKILL), waitpid(pid, nullptr, 0);
    return o;
  }
  o.ran = true;
  const double cpu0 = CpuSeconds(pid);
  o.storm_s = Storm(source, procs, spawners);
  // Wait until the stored count stops growing (the writer flushes every 200 ms).
  const std::string like = "'%sentinel-storm-" + source + "-%'";
  int64_t last = -1;
  for (int i = 0; i < 120; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto rdb = sentinel::storage::Database::Open(db, sentinel::storage::OpenMode::kReadOnly);
    if (!rdb.ok()) continue;
    auto n = (*rdb)->QueryInt(
        "SELECT COUNT(*) FROM process_events WHERE event_type='exec' AND command_line LIKE " + like);
    int64_t now = n.ok() ? n->value_or(0) : -1;
    if (now == last && now >= 0) break;
    last = now;
  }
  o.cpu_s = CpuSeconds(pid) - cpu0;
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  const std::string log = ReadAll(err);
  if (size_t p = log.find(" lost="); p != std::string::npos) o.lost = std::atoll(log.c_str() + p + 6);
  if (size_t p = log.find(" received_exec="); p != std::string::npos)
    o.events = std::atoll(log.c_str() + p + 15);
  std::map<std::string, bool> found;
  auto rdb = sentinel::storage::Database::Open(db, sentinel::storage::OpenMode::kReadOnly);
  if (rdb.ok()) {
    auto st = (*rdb)->Prepare(
        "SELECT command_line FROM process_events WHERE event_type='exec' AND command_line LIKE " + like +
        " OR (event_type='exec' AND command_line IS NULL AND exe_path LIKE '%true')");
    if (st.ok()) {
      while (true) {
        auto row = st->Step();
        if (!row.ok() || !*row) break;
        if (st->ColumnTextView(0).empty()) continue;
        auto j = nlohmann::json::parse(std::string(st->ColumnTextView(0)), nullptr, false);
        if (!j.is_array() || j.size() < 2 || !j[1].is_string()) continue;
        const std::string tok = j[1].get<std::string>();
        found[tok] = found[tok] || (j.size() == 2 && j[0] == "/bin/true");
      }
    }
  }
  CountTokens(source, procs, spawners, found, &o);
  return o;
}

Outcome RunPoll(int procs, int spawners) {
  Outcome o;
  o.name = "poll1s";
  o.ran = true;
  std::atomic<bool> stop{false};
  std::map<std::string, bool> found;
  double cpu_s = 0;
  std::thread poller([&] {
    auto cpu = [] {
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
    };
    while (!stop) {
      const double c0 = cpu();
      DIR* d = opendir("/proc");
      while (dirent* e = d ? readdir(d) : nullptr) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::string c = ReadAll(std::string("/proc/") + e->d_name + "/cmdline");
        if (c.find("sentinel-storm-poll1s-") == std::string::npos) continue;
        size_t z = c.find('\0');
        if (z == std::string::npos) continue;
        std::string tok = c.substr(z + 1, c.find('\0', z + 1) - z - 1);
        found[tok] = c == "/bin/true" + std::string(1, '\0') + tok + std::string(1, '\0');
      }
      if (d) closedir(d);
      cpu_s += cpu() - c0;
      for (int i = 0; i < 20 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  o.storm_s = Storm("poll1s", procs, spawners);
  stop = true;
  poller.join();
  o.cpu_s = cpu_s;
  CountTokens("poll1s", procs, spawners, found, &o);
  return o;
}

Outcome RunAuditd(const std::string& tmp, int procs, int spawners) {
  Outcome o;
  o.name = "auditd";
  AuditdSession auditd;
  o.note = auditd.Start(tmp + "/auditd");
  if (!o.note.empty()) return o;
  o.ran = true;
  const pid_t pid = auditd.pid();
  const double cpu0 = CpuSeconds(pid);
  o.storm_s = Storm("auditd", procs, spawners);
  auditd.WaitQuiet();
  o.cpu_s = CpuSeconds(pid) - cpu0;
  auditd.Stop();
  o.lost = auditd.lost();
  std::map<std::string, bool> found;
  for (const auto& [tok, line] : auditd.ExecveByFirstArg("sentinel-storm-auditd-"))
    found[tok] = line.find("argc=2 a0=\"/bin/true\"") != std::string::npos;
  CountTokens("auditd", procs, spawners, found, &o);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  int procs = 20000, spawners = 2;
  std::string procmond = "procmond", only = "ebpf,netlink,poll1s,auditd";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "exec_storm_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--procs") {
      procs = std::atoi(next().c_str());
    } else if (a == "--spawners") {
      spawners = std::atoi(next().c_str());
    } else if (a == "--procmond") {
      procmond = next();
    } else if (a == "--only") {
      only = next();
    } else {
      std::fprintf(
          stderr,
          "exec_storm_bench: unknown argument %s\nusage: exec_storm_bench [--procs N] [--spawners S] "
          "[--procmond PATH] [--only ebpf,netlink,poll1s,auditd]\n",
          a.c_str());
      return 2;
    }
  }
  if (procs <= 0 || spawners <= 0) {
    std::fprintf(stderr, "exec_storm_bench: --procs and --spawners must be positive integers\n");
    return 2;
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "exec_storm_bench: needs root (BPF, netlink proc connector, auditd)\n");
    return 2;
  }
  char tmpl[] = "/tmp/exec_storm_bench.XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string tmp = tmpl;
  // procmond drops to `nobody` (root is refused as privileges.user): it must reach its files.
  ::chmod(tmp.c_str(), 0755);
  std::vector<Outcome> out;
  auto want = [&](const std::string& n) {
    return ("," + only + ",").find("," + n + ",") != std::string::npos;
  };
  if (want("ebpf")) out.push_back(RunProcmond("ebpf", procmond, tmp, procs, spawners));
  if (want("netlink")) out.push_back(RunProcmond("netlink", procmond, tmp, procs, spawners));
  if (want("poll1s")) out.push_back(RunPoll(procs, spawners));
  if (want("auditd")) out.push_back(RunAuditd(tmp, procs, spawners));
  std::error_code ec;
  fs::remove_all(tmp, ec);

  std::printf("exec storm: %d x /bin/true with a unique token, %d spawners, %ld CPUs\n\n", procs, spawners,
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf(
      "| watcher | storm rate (exec/s) | storm execs with argv | exact argv | exec events received | "
      "watcher CPU (s) | CPU per exec (us) | lost (reported) |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Outcome& o : out) {
    if (!o.ran) {
      std::printf("| %s | not run: %s | | | | | | |\n", o.name.c_str(), o.note.c_str());
      continue;
    }
    std::printf("| %s | %.0f | %.2f %% | %.2f %% | %s | %.2f | %.1f | %s |\n", o.name.c_str(),
                procs / o.storm_s, 100.0 * o.seen / procs, 100.0 * o.exact / procs,
                o.events < 0 ? "n/a" : std::to_string(o.events).c_str(), o.cpu_s, 1e6 * o.cpu_s / procs,
                o.lost < 0 ? "n/a" : std::to_string(o.lost).c_str());
  }
  return 0;
}
