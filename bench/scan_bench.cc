// scan_bench: how much does a procmond scan cost next to its peers?
//
// Spawns a population of idle processes (default 10,000, in their own
// process group, removed at the end), then in the same run measures,
// alternating A B A B so drift hits every contender alike:
//   floor  a minimal reader of the same /proc files procmond needs
//          (stat, status, cmdline, exe link) with no storage
//   ps     ps -eo pid,ppid,user,rss,pcpu,lstart,comm,args (output discarded)
//   cold   procmond's scan on a fresh source + store: every instance new,
//          every distinct executable hashed once, the DB write included
//   warm   the next scans: nothing new, database write included
//   write  EventStore::WriteScan alone, cold (all new) and warm (unchanged)
// Reports medians and ratios, the real procmond binary's peak RSS for a
// --once run, CPU per warm scan and the share of one core that means at the
// default 30 s interval, and store growth per warm scan extrapolated to a day.
//
// steady: the CPU per scan over a whole refresh cycle (scans 21-40 of a
// source, the default refresh_every_scans being 20), so the spread periodic
// re-reads and the staggered exe-link reads are paid for as in the daemon;
// this, not the first warm scans, is what the share of a core is taken from.
//
// scan source: procmond's scans sample through the BPF task iterator when it
// loads (root, BTF; --scan-source auto, the default) as the daemon does;
// the /proc steady state is then measured too, in the same run.
//
// Usage: scan_bench [--procs N] [--runs R] [--procmond PATH] [--json FILE]
//                   [--scan-source auto|ebpf|proc]
// Not a test: no assertion on time. Run it by hand; docs/benchmarks.md.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "procmond/collector.h"
#include "procmond/platform/linux/linux_process_source.h"
#include "sentinel/storage/store.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using sentinel::bench::CpuMs;
using sentinel::bench::Median;
using sentinel::bench::Ms;
using sentinel::procmond::Collector;
using sentinel::procmond::LinuxProcessSource;

// --- population ------------------------------------------------------------
struct Population {
  pid_t leader = -1;
  int count = 0;
};

Population Spawn(int n) {
  Population pop;
  // A leader process creates the children in its group and reaps them; the
  // bench ends them all with one kill(-pgid).
  int ready[2];
  if (pipe(ready) != 0) std::exit(1);
  pid_t leader = fork();
  if (leader == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(ready[0]);
    int made = 0;
    for (int i = 0; i < n - 1; ++i) {
      pid_t c = fork();
      if (c == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) pause();
      }
      if (c > 0) ++made;
    }
    ssize_t w = write(ready[1], &made, sizeof made);
    (void)w;
    close(ready[1]);
    for (;;) {
      if (wait(nullptr) < 0 && errno == ECHILD) pause();
    }
  }
  close(ready[1]);
  int made = 0;
  ssize_t r = read(ready[0], &made, sizeof made);
  close(ready[0]);
  pop.leader = leader;
  pop.count = r == sizeof made ? made + 1 : 0;
  return pop;
}

void Reap(const Population& pop) {
  if (pop.leader <= 0) return;
  kill(-pop.leader, SIGKILL);
  waitpid(pop.leader, nullptr, 0);
}

// --- peers -------------------------------------------------------------------
// The floor: open/read/close stat, status, cmdline and readlink exe.
size_t FloorScan() {
  DIR* d = opendir("/proc");
  int dfd = dirfd(d);
  char buf[65536];
  size_t total = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    for (const char* f : {"stat", "status", "cmdline"}) {
      char path[300];
      snprintf(path, sizeof path, "%s/%s", e->d_name, f);
      int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) > 0) total += static_cast<size_t>(n);
      close(fd);
    }
    char path[300];
    snprintf(path, sizeof path, "%s/exe", e->d_name);
    ssize_t n = readlinkat(dfd, path, buf, sizeof buf);
    if (n > 0) total += static_cast<size_t>(n);
  }
  closedir(d);
  return total;
}

double RunPs() {
  const char* argv[] = {"ps", "-eo", "pid,ppid,user,rss,pcpu,lstart,comm,args", nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  auto t0 = Clock::now();
  pid_t pid;
  if (posix_spawnp(&pid, "ps", &fa, nullptr, const_cast<char**>(argv), environ) != 0) return -1;
  int st;
  waitpid(pid, &st, 0);
  posix_spawn_file_actions_destroy(&fa);
  return Ms(Clock::now() - t0);
}

// `scan_bench --rss-probe PROGRAM ARG...`: fork+exec PROGRAM, wait, and
// write its ru_maxrss (KiB) as text to fd 3. Run as a fresh exec of this
// binary: a child spawned straight from the bench would report in ru_maxrss
// the bench's own heap (pages seen by the child before its exec; observed:
// an 80 MiB-heap parent makes /bin/true "peak" at 86 MiB), the same reason
// tests/integration has rss_probe.
int RssProbe(char** argv) {
  const int out = ::dup(3);
  if (out < 0) return 125;
  ::close(3);
  ::fcntl(out, F_SETFD, FD_CLOEXEC);
  pid_t pid = fork();
  if (pid < 0) return 125;
  if (pid == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  rusage ru{};
  while (wait4(pid, &st, 0, &ru) < 0) {
    if (errno != EINTR) return 125;
  }
  std::string text = std::to_string(ru.ru_maxrss) + "\n";
  if (::write(out, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return 125;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// Real procmond --once on a fresh database: wall ms and peak RSS (KiB),
// measured through --rss-probe.
std::pair<double, long> RunProcmondOnce(const std::string& procmond, const std::string& db) {
  std::vector<std::string> args = {"/proc/self/exe", "--rss-probe", procmond, "--once", "--database", db,
                                   "--log-level",    "warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // As root procmond drops to privileges.user; nobody exists everywhere.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.emplace_back("SENTINELD_PRIVILEGES__USER=nobody");
  // The audit ledger beside the bench's store, never the host's default one.
  env_strings.emplace_back("SENTINELD_DATABASE__AUDIT_PATH=" + db + "-audit.db");
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int result[2];
  if (pipe(result) != 0) return {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, result[1], 3);
  auto t0 = Clock::now();
  pid_t pid;
  int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(result[1]);
  if (rc != 0) {
    close(result[0]);
    return {-1, -1};
  }
  std::string text;
  char buf[64];
  ssize_t n;
  while ((n = read(result[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(result[0]);
  int st;
  waitpid(pid, &st, 0);
  const double ms = Ms(Clock::now() - t0);
  return {ms, text.empty() ? -1 : std::atol(text.c_str())};
}

// Bytes the store really holds: checkpoint the WAL into the main file first
// (WAL frames are whole pages per transaction and would overstate growth).
int64_t DbBytes(sentinel::storage::Database& db) {
  (void)db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  auto pages = db.QueryInt("PRAGMA page_count");
  auto size = db.QueryInt("PRAGMA page_size");
  auto free_pages = db.QueryInt("PRAGMA freelist_count");
  if (!pages.ok() || !size.ok() || !free_pages.ok()) return 0;
  return (pages->value_or(0) - free_pages->value_or(0)) * size->value_or(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--rss-probe") return RssProbe(argv + 2);
  int procs = 10000, runs = 7;
  std::string procmond = "build/ci/procmond/procmond", json_out, scan_source = "auto";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--procs" && i + 1 < argc)
      procs = std::atoi(argv[++i]);
    else if (a == "--runs" && i + 1 < argc)
      runs = std::atoi(argv[++i]);
    else if (a == "--procmond" && i + 1 < argc)
      procmond = argv[++i];
    else if (a == "--json" && i + 1 < argc)
      json_out = argv[++i];
    else if (a == "--scan-source" && i + 1 < argc)
      scan_source = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: %s [--procs N] [--runs R] [--procmond PATH] [--json FILE] [--scan-source "
                   "auto|ebpf|proc]\n",
                   argv[0]);
      return 2;
    }
  }
  if (scan_source != "auto" && scan_source != "ebpf" && scan_source != "proc") {
    std::fprintf(stderr, "--scan-source: auto, ebpf or proc, not \"%s\"\n", scan_source.c_str());
    return 2;
  }
  // auto: the BPF task iterator when it loads here (root, BTF), as procmond does.
  bool use_ebpf = scan_source == "ebpf";
  if (scan_source == "auto") {
    auto probe = sentinel::procmond::OpenBpfTaskSampler();
    use_ebpf = probe.ok();
    if (!probe.ok()) std::fprintf(stderr, "scan source: proc (%s)\n", probe.status().message().c_str());
  }
  char tmpl[] = "/tmp/sentinel_bench_XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl;

  std::fprintf(stderr, "spawning %d idle processes...\n", procs);
  Population pop = Spawn(procs);
  std::fprintf(stderr, "population: %d processes in group %d\n", pop.count, pop.leader);
  int total = 0;
  {
    DIR* d = opendir("/proc");
    while (dirent* e = readdir(d)) total += (e->d_name[0] >= '1' && e->d_name[0] <= '9');
    closedir(d);
  }

  std::vector<double> floor_ms, ps_ms, cold_ms, warm_ms, warm_cpu_ms, cold_write_ms, warm_write_ms,
      steady_cpu_ms, steady_proc_cpu_ms;
  std::vector<double> growth;
  int64_t cold_misses = 0, warm_misses = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    FloorScan();
    floor_ms.push_back(Ms(Clock::now() - t0));
    ps_ms.push_back(RunPs());

    // procmond: fresh source and store (cold), then 3 warm scans.
    std::string db = dir + "/run" + std::to_string(r) + ".db";
    auto store = sentinel::storage::EventStore::Open({db, sentinel::storage::OpenMode::kReadWrite, 5000});
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().message().c_str());
      Reap(pop);
      return 1;
    }
    LinuxProcessSource source;
    if (use_ebpf) {
      auto sampler = sentinel::procmond::OpenBpfTaskSampler();
      if (!sampler.ok()) {
        std::fprintf(stderr, "--scan-source ebpf: %s\n", sampler.status().message().c_str());
        Reap(pop);
        return 1;
      }
      source.SetTaskSampler(std::move(*sampler));
    }
    Collector collector(source, **store);
    t0 = Clock::now();
    auto cold = collector.RunScan();
    cold_ms.push_back(Ms(Clock::now() - t0));
    if (cold.ok()) cold_misses = cold->hash_cache_misses;
    int64_t before = DbBytes((*store)->db());
    for (int w = 0; w < 3; ++w) {
      double c0 = CpuMs();
      t0 = Clock::now();
      auto warm = collector.RunScan();
      warm_ms.push_back(Ms(Clock::now() - t0));
      warm_cpu_ms.push_back(CpuMs() - c0);
      if (warm.ok()) warm_misses = warm->hash_cache_misses;
    }
    growth.push_back(static_cast<double>(DbBytes((*store)->db()) - before) / 3.0);
    // Steady state: up to scan 20 unmeasured, then one whole refresh cycle.
    for (int s = 5; s <= 20; ++s) (void)collector.RunScan();
    {
      const double c0 = CpuMs();
      constexpr int kCycle = 20;
      for (int s = 0; s < kCycle; ++s) (void)collector.RunScan();
      steady_cpu_ms.push_back((CpuMs() - c0) / kCycle);
    }
    // The same steady state read from /proc, when the scans above sampled
    // through the BPF task iterator: the two ways in the same run.
    if (use_ebpf) {
      std::string db3 = dir + "/proc" + std::to_string(r) + ".db";
      auto store3 = sentinel::storage::EventStore::Open({db3, sentinel::storage::OpenMode::kReadWrite, 5000});
      if (store3.ok()) {
        LinuxProcessSource proc_source;
        Collector proc_collector(proc_source, **store3);
        for (int s = 1; s <= 20; ++s) (void)proc_collector.RunScan();
        const double c0 = CpuMs();
        constexpr int kCycle = 20;
        for (int s = 0; s < kCycle; ++s) (void)proc_collector.RunScan();
        steady_proc_cpu_ms.push_back((CpuMs() - c0) / kCycle);
      }
    }

    // The write alone: the same enumerated scan written cold and warm.
    std::string db2 = dir + "/write" + std::to_string(r) + ".db";
    auto store2 = sentinel::storage::EventStore::Open({db2, sentinel::storage::OpenMode::kReadWrite, 5000});
    sentinel::models::ScanRecord scan;
    sentinel::procmond::ScanErrors errs;
    LinuxProcessSource src2;
    (void)src2.Enumerate(&scan.processes, &errs);
    t0 = Clock::now();
    (void)(*store2)->WriteScan(scan);
    cold_write_ms.push_back(Ms(Clock::now() - t0));
    t0 = Clock::now();
    (void)(*store2)->WriteScan(scan);
    warm_write_ms.push_back(Ms(Clock::now() - t0));
  }
  auto [once_ms, once_rss_kb] = RunProcmondOnce(procmond, dir + "/once.db");
  Reap(pop);
  std::filesystem::remove_all(dir);

  const double floor = Median(floor_ms), ps = Median(ps_ms), warm = Median(warm_ms), cold = Median(cold_ms);
  const double cpu_share = Median(steady_cpu_ms) / 30000.0 * 100.0;
  const double day_bytes = Median(growth) * 2880.0;
  nlohmann::ordered_json j;
  j["processes"] = total;
  j["runs"] = runs;
  j["floor_ms"] = floor;
  j["ps_ms"] = ps;
  j["procmond_cold_scan_ms"] = cold;
  j["procmond_warm_scan_ms"] = warm;
  j["warm_over_floor"] = warm / floor;
  j["warm_over_ps"] = warm / ps;
  j["cold_over_floor"] = cold / floor;
  j["ps_over_floor"] = ps / floor;
  j["write_cold_ms"] = Median(cold_write_ms);
  j["write_warm_ms"] = Median(warm_write_ms);
  j["hash_misses_cold_scan"] = cold_misses;
  j["hash_misses_warm_scan"] = warm_misses;
  j["warm_scan_cpu_ms"] = Median(warm_cpu_ms);
  j["scan_source"] = use_ebpf ? "ebpf" : "proc";
  j["steady_scan_cpu_ms"] = Median(steady_cpu_ms);
  if (use_ebpf) {
    j["steady_scan_cpu_ms_proc"] = Median(steady_proc_cpu_ms);
    j["steady_ebpf_over_proc"] = Median(steady_cpu_ms) / Median(steady_proc_cpu_ms);
  }
  j["cpu_share_at_30s_percent"] = cpu_share;  // from the steady state
  j["store_growth_per_warm_scan_bytes"] = Median(growth);
  j["store_growth_per_day_at_30s_mb"] = day_bytes / 1e6;
  j["procmond_once_wall_ms"] = once_ms;
  j["procmond_once_peak_rss_mib"] = static_cast<double>(once_rss_kb) / 1024.0;
  std::printf("%s\n", j.dump(2).c_str());
  if (!json_out.empty()) {
    FILE* f = std::fopen(json_out.c_str(), "w");
    if (f) {
      std::fprintf(f, "%s\n", j.dump(2).c_str());
      std::fclose(f);
    }
  }
  return 0;
}
