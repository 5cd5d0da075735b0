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

#include "sentinel/storage/sqlite.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// utime + stime of a process in seconds (-1 if gone).
double CpuSeconds(pid_t pid) {
  std::string s = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  size_t rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream in(s.substr(rp + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env_extra,
            const std::string& err, bool new_group = true) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (std::string(*e).rfind("SENTINELD_", 0) != 0) env.emplace_back(*e);
  }
  env.insert(env.end(), env_extra.begin(), env_extra.end());
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err.empty() ? "/dev/null" : err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  if (new_group) {
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
  }
  pid_t pid = -1;
  if (posix_spawn(&pid, cargv[0], &fa, &at, cargv.data(), cenv.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return pid;
}

bool WaitForText(const std::string& file, const std::string& text, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    if (ReadAll(file).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

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

int Sh(const std::string& cmd) {
  return std::system(cmd.c_str());
}

Outcome RunAuditd(const std::string& tmp, int procs, int spawners) {
  Outcome o;
  o.name = "auditd";
  if (access("/sbin/auditd", X_OK) != 0 || access("/sbin/auditctl", X_OK) != 0) {
    o.note = "auditd not installed (scripts/install-deps.sh installs it)";
    return o;
  }
  if (Sh("/sbin/auditctl -s 2>/dev/null | grep -q '^pid 0$'") != 0) {
    o.note = "another audit daemon already runs here: not touched";
    return o;
  }
  const std::string dir = tmp + "/auditd";
  fs::create_directories(dir);
  const std::string log = dir + "/audit.log";
  std::ofstream(dir + "/auditd.conf")
      << "log_file = " << log
      << "\nlog_format = RAW\nflush = INCREMENTAL_ASYNC\nfreq = 50\nmax_log_file = 1024\n"
         "max_log_file_action = IGNORE\nspace_left = 75\nspace_left_action = IGNORE\nadmin_space_left = 50\n"
         "admin_space_left_action = IGNORE\ndisk_full_action = IGNORE\ndisk_error_action = IGNORE\n"
         "write_logs = yes\nq_depth = 8000\n";
  // auditd enables kernel auditing; what it was before is put back after.
  const bool was_enabled = Sh("/sbin/auditctl -s 2>/dev/null | grep -q '^enabled 1$'") == 0;
  chmod((dir + "/auditd.conf").c_str(), 0640);
  pid_t pid = Spawn({"/sbin/auditd", "-n", "-c", dir}, {}, dir + "/auditd.err");
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    up = Sh("/sbin/auditctl -s 2>/dev/null | grep -q '^pid " + std::to_string(pid) + "$'") == 0;
  }
  if (!up) {
    o.note = "auditd could not run here: " + ReadAll(dir + "/auditd.err").substr(0, 200);
    if (pid > 0) kill(pid, SIGTERM), waitpid(pid, nullptr, 0);
    return o;
  }
  Sh("/sbin/auditctl -b 65536 >/dev/null 2>&1; /sbin/auditctl --backlog_wait_time 0 >/dev/null 2>&1");
  if (Sh("/sbin/auditctl -a always,exit -F arch=b64 -S execve -k sentinel_bench >/dev/null") != 0) {
    o.note = "auditctl could not add the execve rule";
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    return o;
  }
  o.ran = true;
  const double cpu0 = CpuSeconds(pid);
  o.storm_s = Storm("auditd", procs, spawners);
  size_t last = 0;
  for (int i = 0; i < 120; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    size_t now = fs::exists(log) ? fs::file_size(log) : 0;
    if (now == last) break;
    last = now;
  }
  o.cpu_s = CpuSeconds(pid) - cpu0;
  Sh("/sbin/auditctl -d always,exit -F arch=b64 -S execve -k sentinel_bench >/dev/null");
  std::string lost = "-1";
  FILE* p = popen("/sbin/auditctl -s | sed -n 's/^lost //p'", "r");
  if (p) {
    char b[64] = {};
    if (fgets(b, sizeof(b), p)) lost = b;
    pclose(p);
  }
  o.lost = std::atoll(lost.c_str());
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  if (!was_enabled) Sh("/sbin/auditctl -e 0 >/dev/null");
  std::map<std::string, bool> found;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("type=EXECVE", 0) != 0) continue;
    size_t a1 = line.find(" a1=\"sentinel-storm-auditd-");
    if (a1 == std::string::npos) continue;
    size_t q = line.find('"', a1 + 5);
    std::string tok = line.substr(a1 + 5, q - a1 - 5);
    found[tok] = line.find("argc=2 a0=\"/bin/true\"") != std::string::npos;
  }
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
