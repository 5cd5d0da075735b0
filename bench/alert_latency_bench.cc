// alert_latency_bench: how long from an exec to its alert, how many matching
// execs are never alerted, and what the watching costs per exec, against
// auditd watching the same storm.
//
// Per round, in a fresh temp directory: the real procmond (eBPF real-time
// events, dropped to `nobody`) and the real sentinelagent (--no-collector,
// the built-in rules, one stdout sink in JSON whose output is a pipe this
// program reads, timestamping every line on receipt) share a temp store;
// Debian's auditd logs execve on the same host at the same time. Then a storm
// at the machine's maximum exec rate (`spawners` threads, each posix_spawn()ing
// and reaping as fast as it goes): M benign execs of /bin/true with N
// matching ones mixed in evenly — copies of /bin/true (which live well under
// a millisecond) and, every `long-every`-th, of /bin/sleep 0.005, placed in a
// directory under /tmp so the built-in rule proc-exec-from-tmp matches them.
//
// Measured in the same run, per matching exec (by pid; the exec's time is
// when posix_spawn returned, i.e. after the execve succeeded):
//   exec -> alert stored   the alert row seen in `alerts` (a read-only
//                          connection polls PRAGMA data_version every 5 ms)
//   exec -> stdout line    the agent's JSON line read from the pipe
// p50/p99/max of both, the matching execs missed (no alert once the agent
// has gone quiet), and the CPU per exec (utime+stime from /proc/PID/stat
// over the storm and its drain, divided by M+N) of procmond, of the agent
// with its query workers (its own times, its reaped children's and its live
// descendants') and of auditd. Several rounds; medians and ratios printed.
//
// Only the processes this program started are stopped, by pid or by their
// own process group; auditd's kernel state is put back as it was.
//
// Needs root (BPF, auditd). Not a test; figures go to docs/benchmarks.md.
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
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "sentinel/storage/sqlite.h"

namespace {

namespace fs = std::filesystem;
using sentinel::bench::AuditdSession;
using sentinel::bench::CpuSeconds;
using sentinel::bench::Median;
using sentinel::bench::Percentile;
using sentinel::bench::ReadAll;
using sentinel::bench::Spawn;
using sentinel::bench::StopGroup;
using sentinel::bench::WaitForText;

constexpr int kSkip = 77;  // ctest SKIP_RETURN_CODE: not root

std::atomic<bool> g_interrupted{false};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Options {
  int benign = 20000;
  int matching = 10000;
  int rounds = 3;
  int spawners = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  int long_every = 10;
  int detection_interval = 30;
  int quiet_secs = 0;  // 0: 2 x detection_interval + 15
  int idle_secs = 0;   // > 0: no storm; the daemons' idle CPU over this window
  bool auditd = true;
  std::string procmond = SENTINEL_BENCH_PROCMOND;
  std::string agent = SENTINEL_BENCH_AGENT;
  std::string rules = SENTINEL_BENCH_RULES;
  std::string rule_id = "proc-exec-from-tmp";
};

// One exec of the storm.
struct Exec {
  pid_t pid = -1;
  int64_t spawned_ns = 0;   // posix_spawn returned (the execve succeeded)
  int64_t lifetime_ns = 0;  // from the exec (spawn returned) to the reap: an upper bound
  bool matching = false;
  bool long_lived = false;
};

// Receipts per matching exec (its index in the storm's plan) on one channel
// (stored alerts or stdout lines): the time of the first and how many there
// were. Execs are told apart by their executable's path, a hard link of its
// own per matching exec (bin/m<index>): pids are reused within a round
// (pid_max is 32768 on many hosts).
class Receipts {
 public:
  struct Seen {
    int64_t first_ns = 0;
    int64_t count = 0;
  };
  void Add(int64_t index, int64_t ns) {
    std::lock_guard lock(mu_);
    Seen& s = seen_[index];
    if (s.count++ == 0) s.first_ns = ns;
  }
  std::map<int64_t, Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  size_t pids() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }

 private:
  mutable std::mutex mu_;
  std::map<int64_t, Seen> seen_;
};

// The plan index of a matching exec from its executable's path
// (`prefix` is the round's "<dir>/bin/m"), or nullopt for any other program.
std::optional<int64_t> ExecIndex(std::string_view exe_path, const std::string& prefix) {
  if (exe_path.size() <= prefix.size() || exe_path.substr(0, prefix.size()) != prefix) return std::nullopt;
  const std::string_view digits = exe_path.substr(prefix.size());
  if (digits.find_first_not_of("0123456789") != std::string_view::npos || digits.size() > 9)
    return std::nullopt;
  return std::stoll(std::string(digits));
}

// The executable path an alert is about: raw_data.exe_path, else its first
// affected process's.
std::string AlertExe(const nlohmann::json& alert) {
  const auto raw = alert.find("raw_data");
  if (raw != alert.end() && raw->is_object() && raw->contains("exe_path") && (*raw)["exe_path"].is_string())
    return (*raw)["exe_path"].get<std::string>();
  const auto aff = alert.find("affected_processes");
  if (aff != alert.end() && aff->is_array() && !aff->empty() && (*aff)[0].is_object() &&
      (*aff)[0].contains("exe_path") && (*aff)[0]["exe_path"].is_string())
    return (*aff)[0]["exe_path"].get<std::string>();
  return "";
}

// Reads the agent's stdout until EOF; every complete line is timestamped when
// the read() that completed it returned.
void ReadStdout(int fd, const std::string& rule_id, const std::string& prefix, Receipts* out) {
  std::string buf;
  char chunk[65536];
  while (true) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const int64_t now = NowNs();
    buf.append(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n', start)) {
      auto j = nlohmann::json::parse(buf.begin() + static_cast<std::ptrdiff_t>(start),
                                     buf.begin() + static_cast<std::ptrdiff_t>(nl), nullptr, false);
      start = nl + 1;
      if (!j.is_object() || j.value("rule_id", "") != rule_id) continue;
      if (auto index = ExecIndex(AlertExe(j), prefix)) out->Add(*index, now);
    }
    buf.erase(0, start);
  }
  ::close(fd);
}

// Polls the store's alerts table every 5 ms (only re-queried when
// PRAGMA data_version says another connection committed) until `stop`.
void PollStore(const std::string& db_path, const std::string& rule_id, const std::string& prefix,
               const std::atomic<bool>* stop, Receipts* out) {
  using sentinel::storage::Database;
  using sentinel::storage::OpenMode;
  std::unique_ptr<Database> db;
  int64_t last_id = 0, last_version = -1;
  for (; !stop->load(); std::this_thread::sleep_for(std::chrono::milliseconds(5))) {
    if (!db) {
      auto opened = Database::Open(db_path, OpenMode::kReadOnly);
      if (!opened.ok()) continue;
      db = std::move(opened).value();
    }
    auto version = db->QueryInt("PRAGMA data_version");
    if (!version.ok() || version->value_or(-1) == last_version) continue;
    last_version = version->value_or(-1);
    auto st = db->Prepare(
        "SELECT id, json_extract(raw_data, '$.exe_path') FROM alerts WHERE id > ?1 AND rule_id = ?2");
    if (!st.ok() || !st->BindInt(1, last_id).ok() || !st->BindText(2, rule_id).ok()) continue;
    const int64_t now = NowNs();
    while (true) {
      auto row = st->Step();
      if (!row.ok() || !*row) break;
      last_id = st->ColumnInt(0);
      if (st->IsNull(1)) continue;
      if (auto index = ExecIndex(st->ColumnTextView(1), prefix)) out->Add(*index, now);
    }
  }
}

// utime+stime(+cutime+cstime) of `root` and of every live descendant, in
// seconds: the agent with its query workers, whether reaped or still running.
double TreeCpuSeconds(pid_t root) {
  std::map<pid_t, pid_t> parent;
  for (const auto& e : fs::directory_iterator("/proc", fs::directory_options::skip_permission_denied)) {
    const std::string name = e.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string s = ReadAll("/proc/" + name + "/stat");
    const size_t rp = s.rfind(')');
    if (rp == std::string::npos || rp + 4 >= s.size()) continue;
    parent[std::stoi(name)] = std::atoi(s.c_str() + rp + 4);  // ") S PPID"
  }
  double total = CpuSeconds(root, true);
  if (total < 0) return -1;
  for (const auto& [pid, ppid] : parent) {
    pid_t p = ppid;
    for (int depth = 0; depth < 16 && p > 1 && p != root; ++depth) p = parent.count(p) ? parent[p] : 0;
    if (p == root && pid != root) total += std::max(0.0, CpuSeconds(pid, true));
  }
  return total;
}

// The whole storm, planned up front: matching execs spread evenly.
std::vector<Exec> PlanStorm(const Options& o) {
  const int64_t total = o.benign + o.matching;
  std::vector<Exec> plan(static_cast<size_t>(total));
  for (int64_t i = 0; i < total; ++i) {
    const int64_t before = i * o.matching / total, after = (i + 1) * o.matching / total;
    plan[static_cast<size_t>(i)].matching = after > before;
    plan[static_cast<size_t>(i)].long_lived =
        after > before && o.long_every > 0 && before % o.long_every == 0;
  }
  return plan;
}

std::string Token(int round, size_t i) {
  return "sentinel-lat-" + std::to_string(round) + "-" + std::to_string(i);
}

// A hard link bin/m<index> of the copy of true (or sleep) for every matching
// exec: one inode (hashed once), one path per exec. Empty on success.
std::string LinkMatchingExecs(const std::vector<Exec>& plan, const std::string& bin_dir) {
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!plan[i].matching) continue;
    const std::string from = bin_dir + (plan[i].long_lived ? "/sleep" : "/true");
    const std::string to = bin_dir + "/m" + std::to_string(i);
    if (::link(from.c_str(), to.c_str()) != 0) return "linking " + to + ": " + std::strerror(errno);
  }
  return "";
}

// Runs the plan: thread s takes every spawners-th exec. Returns wall seconds.
double RunStorm(const Options& o, int round, const std::string& bin_dir, std::vector<Exec>* plan) {
  const std::string truebin = "/bin/true";
  auto worker = [&](int s) {
    std::string sleep_arg = "0.005";
    for (size_t i = static_cast<size_t>(s); i < plan->size() && !g_interrupted;
         i += static_cast<size_t>(o.spawners)) {
      Exec& e = (*plan)[i];
      std::string tok = Token(round, i);
      const std::string path = e.matching ? bin_dir + "/m" + std::to_string(i) : truebin;
      char* argv[] = {const_cast<char*>(path.c_str()), e.long_lived ? sleep_arg.data() : tok.data(), nullptr};
      if (posix_spawn(&e.pid, path.c_str(), nullptr, nullptr, argv, environ) != 0) {
        e.pid = -1;
        continue;
      }
      e.spawned_ns = NowNs();
      waitpid(e.pid, nullptr, 0);
      e.lifetime_ns = NowNs() - e.spawned_ns;
    }
  };
  const int64_t t0 = NowNs();
  std::vector<std::thread> threads;
  for (int s = 0; s < o.spawners; ++s) threads.emplace_back(worker, s);
  for (auto& t : threads) t.join();
  return static_cast<double>(NowNs() - t0) / 1e9;
}

// Counts this round's exec events procmond stored (those with a token).
int64_t StoredExecs(const std::string& db_path, int round) {
  auto db = sentinel::storage::Database::Open(db_path, sentinel::storage::OpenMode::kReadOnly);
  if (!db.ok()) return -1;
  auto n = (*db)->QueryInt(
      "SELECT COUNT(*) FROM process_events WHERE event_type='exec' AND command_line LIKE '%\"sentinel-lat-" +
      std::to_string(round) + "-%'");
  return n.ok() ? n->value_or(0) : -1;
}

// Waits until procmond stored `expected` of this round's execs, or its count
// stopped growing for 3 s. Returns the count.
int64_t WaitEventsStored(const std::string& db_path, int round, int64_t expected) {
  int64_t last = -1;
  int still = 0;
  while (!g_interrupted && still < 15) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const int64_t now = StoredExecs(db_path, round);
    if (now >= expected) return now;
    still = now == last ? still + 1 : 0;
    last = now;
  }
  return last;
}

// How many of `wanted` have a receipt.
int64_t CountReceived(const Receipts& r, const std::set<int64_t>& wanted) {
  int64_t n = 0;
  for (const auto& [index, seen] : r.seen()) n += static_cast<int64_t>(wanted.count(index));
  return n;
}

// Waits until every matching exec of the storm has both receipts (other
// processes running from /tmp on the host do not count), or neither channel
// gained one for `quiet_secs`.
void WaitAlerts(const Receipts& stored, const Receipts& printed, const std::set<int64_t>& wanted,
                int quiet_secs) {
  int64_t last = -1;
  auto quiet_since = std::chrono::steady_clock::now();
  const auto want = static_cast<int64_t>(wanted.size());
  while (!g_interrupted) {
    const int64_t s = CountReceived(stored, wanted), p = CountReceived(printed, wanted);
    if (s >= want && p >= want) return;
    if (s + p != last) {
      last = s + p;
      quiet_since = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - quiet_since > std::chrono::seconds(quiet_secs)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Rows in process_events so far (its highest id); -1 when unreadable.
int64_t EventRows(const std::string& db_path) {
  auto db = sentinel::storage::Database::Open(db_path, sentinel::storage::OpenMode::kReadOnly);
  if (!db.ok()) return -1;
  auto n = (*db)->QueryInt("SELECT coalesce(MAX(id), 0) FROM process_events");
  return n.ok() ? n->value_or(0) : -1;
}

// Exec events procmond stored with an id above `id0`: every exec on the
// host, the storm's and anything else running meanwhile.
int64_t ExecEventsAfter(const std::string& db_path, int64_t id0) {
  auto db = sentinel::storage::Database::Open(db_path, sentinel::storage::OpenMode::kReadOnly);
  if (!db.ok()) return -1;
  auto n = (*db)->QueryInt("SELECT COUNT(*) FROM process_events WHERE event_type = 'exec' AND id > " +
                           std::to_string(id0));
  return n.ok() ? n->value_or(0) : -1;
}

// Lines of `path` starting with `prefix` (auditd's EXECVE records).
int64_t CountLines(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) n += line.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

struct Round {
  std::string failure;  // non-empty: the round could not run
  double storm_s = 0;
  int64_t execs = 0, matching = 0, short_matching = 0;
  // Execs each watcher handled in its CPU window: the storm's plus whatever
  // else the host ran meanwhile (CPU per exec divides by these).
  int64_t host_execs_procmond = 0, host_execs_agent = 0, host_execs_auditd = 0;
  int64_t events_expected = 0, events_stored = 0;
  std::vector<double> to_store_ms, to_stdout_ms;
  int64_t missed_store = 0, missed_stdout = 0, missed_short = 0, duplicate_alerts = 0;
  double procmond_cpu_s = 0, agent_cpu_s = 0, auditd_cpu_s = -1;
  int64_t auditd_seen = -1, auditd_lost = -1;
  std::string auditd_note;
};

std::string ConfigYaml(const Options& o, const std::string& data, const std::string& rules) {
  return "database: {path: " + data + "/events.db, audit_path: " + data +
         "/audit.db}\n"
         "collection: {realtime_source: ebpf}\n"
         "privileges: {user: nobody}\n"
         "detection: {interval_secs: " +
         std::to_string(o.detection_interval) + ", rules_dirs: [" + rules +
         "]}\n"
         "alerting: {sinks: [{name: console, type: stdout, format: json}]}\n"
         "telemetry: {log_format: text, http_listen: \"\"}\n"
         "ipc: {socket_dir: " +
         data + "/run}\n";
}

// The round's directory: data/ (owned by nobody, the daemons' user),
// rules/ (a copy of the rule directory), bin/ (copies of true and sleep),
// config.yaml. Empty on success, else what failed.
std::string PrepareRoundDir(const Options& o, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir + "/data", ec);
  fs::create_directories(dir + "/bin", ec);
  fs::copy(o.rules, dir + "/rules", fs::copy_options::recursive, ec);
  if (ec) return "copying the rules from " + o.rules + ": " + ec.message();
  fs::copy_file("/bin/true", dir + "/bin/true", ec);
  if (!ec) fs::copy_file("/bin/sleep", dir + "/bin/sleep", ec);
  if (ec) return "copying /bin/true and /bin/sleep: " + ec.message();
  for (const char* sub : {"", "/bin", "/rules"}) ::chmod((dir + sub).c_str(), 0755);
  if (::chown((dir + "/data").c_str(), 65534, 65534) != 0 || ::chmod((dir + "/data").c_str(), 0750) != 0)
    return "giving " + dir + "/data to nobody: " + std::strerror(errno);
  std::ofstream(dir + "/config.yaml") << ConfigYaml(o, dir + "/data", dir + "/rules");
  ::chmod((dir + "/config.yaml").c_str(), 0644);
  return "";
}

// Fills the latency and miss figures of `r` from the receipts.
void Score(const std::vector<Exec>& plan, const Receipts& stored, const Receipts& printed, Round* r) {
  const auto st = stored.seen(), out = printed.seen();
  for (size_t i = 0; i < plan.size(); ++i) {
    const Exec& e = plan[i];
    if (!e.matching || e.pid <= 0) continue;
    ++r->matching;
    const bool is_short = !e.long_lived && e.lifetime_ns < 1'000'000;
    if (is_short) ++r->short_matching;
    if (auto it = st.find(static_cast<int64_t>(i)); it != st.end()) {
      r->to_store_ms.push_back(static_cast<double>(it->second.first_ns - e.spawned_ns) / 1e6);
      r->duplicate_alerts += it->second.count - 1;
    } else {
      ++r->missed_store;
      if (is_short) ++r->missed_short;
    }
    if (auto it = out.find(static_cast<int64_t>(i)); it != out.end()) {
      r->to_stdout_ms.push_back(static_cast<double>(it->second.first_ns - e.spawned_ns) / 1e6);
    } else {
      ++r->missed_stdout;
    }
  }
}

// The daemons of one round; everything is stopped by the destructor.
struct Daemons {
  pid_t procmond = -1, agent = -1;
  int stdout_read = -1;
  AuditdSession auditd;
  ~Daemons() {
    StopGroup(agent);
    StopGroup(procmond);
    auditd.Stop();
    if (stdout_read >= 0) ::close(stdout_read);
  }
};

// Starts auditd (optional), procmond and the agent. Empty on success.
std::string StartDaemons(const Options& o, const std::string& dir, Round* r, Daemons* d) {
  const std::vector<std::string> env = {"HOME=" + dir, "XDG_CONFIG_HOME=" + dir};
  if (o.auditd) {
    r->auditd_note = d->auditd.Start(dir + "/auditd");
    if (!r->auditd_note.empty())
      std::fprintf(stderr, "alert_latency_bench: auditd: %s\n", r->auditd_note.c_str());
  }
  d->procmond = Spawn({o.procmond, "--config", dir + "/config.yaml"}, env, dir + "/procmond.err");
  if (d->procmond <= 0 || !WaitForText(dir + "/procmond.err", "real-time event source started", 60) ||
      !WaitForText(dir + "/procmond.err", "scan written", 120))
    return "procmond did not start: " + ReadAll(dir + "/procmond.err").substr(0, 400);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  d->agent = Spawn({o.agent, "--config", dir + "/config.yaml", "--no-collector"}, env, dir + "/agent.err",
                   true, fds[1]);
  ::close(fds[1]);
  d->stdout_read = fds[0];
  if (d->agent <= 0 || !WaitForText(dir + "/agent.err", "detection cycle", 120))
    return "sentinelagent did not start: " + ReadAll(dir + "/agent.err").substr(0, 400);
  return "";
}

Round RunRound(const Options& o, const std::string& tmp, int round) {
  Round r;
  const std::string dir = tmp + "/round" + std::to_string(round);
  r.failure = PrepareRoundDir(o, dir);
  std::vector<Exec> plan = PlanStorm(o);
  if (r.failure.empty()) r.failure = LinkMatchingExecs(plan, dir + "/bin");
  if (!r.failure.empty()) return r;
  Daemons d;
  r.failure = StartDaemons(o, dir, &r, &d);
  if (!r.failure.empty()) return r;
  Receipts stored, printed;
  std::atomic<bool> stop_poll{false};
  const std::string prefix = dir + "/bin/m";
  std::thread reader(ReadStdout, d.stdout_read, o.rule_id, prefix, &printed);
  d.stdout_read = -1;  // the reader closes it
  std::thread poller(PollStore, dir + "/data/events.db", o.rule_id, prefix, &stop_poll, &stored);

  const pid_t auditd_pid = d.auditd.pid();
  const double pm0 = CpuSeconds(d.procmond), ag0 = TreeCpuSeconds(d.agent);
  const double au0 = auditd_pid > 0 ? CpuSeconds(auditd_pid) : 0;
  const std::string db = dir + "/data/events.db";
  const int64_t id0 = EventRows(db);
  const int64_t audit0 = auditd_pid > 0 ? CountLines(d.auditd.log(), "type=EXECVE") : 0;
  r.storm_s = RunStorm(o, round, dir + "/bin", &plan);
  r.execs = static_cast<int64_t>(plan.size());
  for (const Exec& e : plan) r.events_expected += e.long_lived ? 0 : 1;
  r.events_stored = WaitEventsStored(dir + "/data/events.db", round, r.events_expected);
  r.procmond_cpu_s = CpuSeconds(d.procmond) - pm0;
  r.host_execs_procmond = ExecEventsAfter(db, id0);
  if (auditd_pid > 0) {
    d.auditd.WaitQuiet();
    r.auditd_cpu_s = CpuSeconds(auditd_pid) - au0;
    r.host_execs_auditd = CountLines(d.auditd.log(), "type=EXECVE") - audit0;
  }
  const int quiet = o.quiet_secs > 0 ? o.quiet_secs : 2 * o.detection_interval + 15;
  std::set<int64_t> wanted;
  for (size_t i = 0; i < plan.size(); ++i)
    if (plan[i].matching && plan[i].pid > 0) wanted.insert(static_cast<int64_t>(i));
  WaitAlerts(stored, printed, wanted, quiet);
  r.agent_cpu_s = TreeCpuSeconds(d.agent) - ag0;
  r.host_execs_agent = ExecEventsAfter(db, id0);

  StopGroup(d.agent);  // its stdout closes: the reader ends
  d.agent = -1;
  reader.join();
  stop_poll = true;
  poller.join();
  if (auditd_pid > 0) {
    d.auditd.Stop();
    r.auditd_lost = d.auditd.lost();
    r.auditd_seen =
        static_cast<int64_t>(d.auditd.ExecveByFirstArg("sentinel-lat-" + std::to_string(round) + "-").size());
  }
  Score(plan, stored, printed, &r);
  return r;
}

// Context switches of every thread of `pid` (voluntary + involuntary): each
// is a wake-up or a preemption; an idle daemon without polling has few.
int64_t ContextSwitches(pid_t pid) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::istringstream in(ReadAll(t.path().string() + "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        total += std::atoll(line.c_str() + line.find(':') + 1);
    }
  }
  return total;
}

// --idle: the daemons as the storm rounds start them (auditd off), left
// alone for idle_secs after their first scan and detection cycle; prints
// their CPU and wake-ups over the window.
int RunIdle(Options o, const std::string& tmp) {
  o.auditd = false;
  Round r;
  const std::string dir = tmp + "/idle";
  std::string failure = PrepareRoundDir(o, dir);
  Daemons d;
  if (failure.empty()) failure = StartDaemons(o, dir, &r, &d);
  if (!failure.empty()) {
    std::printf("idle: not run: %s\n", failure.c_str());
    return 1;
  }
  std::thread drain([fd = d.stdout_read] {
    char b[4096];
    while (::read(fd, b, sizeof b) > 0) {
    }
    ::close(fd);
  });
  d.stdout_read = -1;
  std::this_thread::sleep_for(std::chrono::seconds(5));  // past start-up
  const double pm0 = CpuSeconds(d.procmond), ag0 = TreeCpuSeconds(d.agent);
  const int64_t pw0 = ContextSwitches(d.procmond), aw0 = ContextSwitches(d.agent);
  const std::string db = dir + "/data/events.db";
  const int64_t ev0 = EventRows(db);
  const int64_t t0 = NowNs();
  for (int i = 0; i < o.idle_secs * 10 && !g_interrupted; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const double secs = static_cast<double>(NowNs() - t0) / 1e9;
  const double pm = CpuSeconds(d.procmond) - pm0, ag = TreeCpuSeconds(d.agent) - ag0;
  const int64_t pw = ContextSwitches(d.procmond) - pw0, aw = ContextSwitches(d.agent) - aw0;
  const int64_t events = EventRows(db) - ev0;
  StopGroup(d.agent);
  d.agent = -1;
  drain.join();
  std::printf(
      "idle: %.0f s, collection and detection interval %d s, no storm; the host's own processes made %lld "
      "events (exec/exit) meanwhile (%.1f per second)\n\n| daemon | CPU (s) | share of a "
      "core | "
      "context switches per second |\n| --- | ---: | ---: | ---: |\n"
      "| procmond | %.2f | %.3f %% | %.1f |\n| agent + query workers | %.2f | %.3f %% | %.1f |\n"
      "| both | %.2f | %.3f %% | |\n",
      secs, o.detection_interval, static_cast<long long>(events), static_cast<double>(events) / secs, pm,
      100 * pm / secs, static_cast<double>(pw) / secs, ag, 100 * ag / secs, static_cast<double>(aw) / secs,
      pm + ag, 100 * (pm + ag) / secs);
  return g_interrupted ? 1 : 0;
}

double PerExecUs(double cpu_s, int64_t execs) {
  return execs > 0 ? 1e6 * cpu_s / static_cast<double>(execs) : 0;
}

void PrintRound(int i, const Round& r) {
  if (!r.failure.empty()) {
    std::printf("round %d: not run: %s\n", i, r.failure.c_str());
    return;
  }
  std::printf(
      "round %d: %lld execs in %.1f s (%.0f exec/s), %lld matching (%lld lived < 1 ms); events stored "
      "%lld/%lld\n"
      "  exec->stored  p50 %.1f ms  p99 %.1f ms  max %.1f ms  missed %lld (of them < 1 ms: %lld), "
      "duplicate alerts %lld\n"
      "  exec->stdout  p50 %.1f ms  p99 %.1f ms  max %.1f ms  missed %lld\n"
      "  CPU per exec (host execs in the window: procmond %lld, agent %lld, auditd %lld): procmond %.1f us, "
      "agent %.1f us, auditd %s",
      i, static_cast<long long>(r.execs), r.storm_s, static_cast<double>(r.execs) / r.storm_s,
      static_cast<long long>(r.matching), static_cast<long long>(r.short_matching),
      static_cast<long long>(r.events_stored), static_cast<long long>(r.events_expected),
      Percentile(r.to_store_ms, 0.5), Percentile(r.to_store_ms, 0.99), Percentile(r.to_store_ms, 1.0),
      static_cast<long long>(r.missed_store), static_cast<long long>(r.missed_short),
      static_cast<long long>(r.duplicate_alerts), Percentile(r.to_stdout_ms, 0.5),
      Percentile(r.to_stdout_ms, 0.99), Percentile(r.to_stdout_ms, 1.0),
      static_cast<long long>(r.missed_stdout), static_cast<long long>(r.host_execs_procmond),
      static_cast<long long>(r.host_execs_agent), static_cast<long long>(r.host_execs_auditd),
      PerExecUs(r.procmond_cpu_s, r.host_execs_procmond), PerExecUs(r.agent_cpu_s, r.host_execs_agent),
      r.auditd_cpu_s < 0
          ? ("not run" + (r.auditd_note.empty() ? "" : ": " + r.auditd_note)).c_str()
          : (std::to_string(PerExecUs(r.auditd_cpu_s, r.host_execs_auditd)).substr(0, 6) + " us (saw " +
             std::to_string(r.auditd_seen) + " token execs, lost " + std::to_string(r.auditd_lost) + ")")
                .c_str());
  std::printf("\n");
}

// The median over the rounds that ran of f(round).
template <typename F>
double MedianOf(const std::vector<Round>& rounds, F f, bool with_auditd_only = false) {
  std::vector<double> v;
  for (const Round& r : rounds)
    if (r.failure.empty() && (!with_auditd_only || r.auditd_cpu_s >= 0)) v.push_back(f(r));
  return Median(v);
}

void PrintSummary(const Options& o, const std::vector<Round>& rounds) {
  int64_t matching = 0, missed_store = 0, missed_stdout = 0, missed_short = 0, shorts = 0, ran = 0;
  for (const Round& r : rounds) {
    if (!r.failure.empty()) continue;
    ++ran;
    matching += r.matching;
    shorts += r.short_matching;
    missed_store += r.missed_store;
    missed_stdout += r.missed_stdout;
    missed_short += r.missed_short;
  }
  auto pct = [&](double q, bool store) {
    return MedianOf(rounds,
                    [&](const Round& r) { return Percentile(store ? r.to_store_ms : r.to_stdout_ms, q); });
  };
  const double pm =
      MedianOf(rounds, [](const Round& r) { return PerExecUs(r.procmond_cpu_s, r.host_execs_procmond); });
  const double ag =
      MedianOf(rounds, [](const Round& r) { return PerExecUs(r.agent_cpu_s, r.host_execs_agent); });
  const double both = MedianOf(rounds, [](const Round& r) {
    return PerExecUs(r.procmond_cpu_s, r.host_execs_procmond) + PerExecUs(r.agent_cpu_s, r.host_execs_agent);
  });
  // auditd's figures and the ratios: over the rounds it ran in, ratios paired per round.
  const bool have_auditd = std::any_of(
      rounds.begin(), rounds.end(), [](const Round& r) { return r.failure.empty() && r.auditd_cpu_s >= 0; });
  const auto au_of = [](const Round& r) { return PerExecUs(r.auditd_cpu_s, r.host_execs_auditd); };
  const auto pm_of = [](const Round& r) { return PerExecUs(r.procmond_cpu_s, r.host_execs_procmond); };
  const auto ag_of = [](const Round& r) { return PerExecUs(r.agent_cpu_s, r.host_execs_agent); };
  const double au = MedianOf(rounds, au_of, true);
  const double pm_ratio = MedianOf(
      rounds, [&](const Round& r) { return au_of(r) > 0 ? pm_of(r) / au_of(r) : 0; }, true);
  const double both_ratio = MedianOf(
      rounds, [&](const Round& r) { return au_of(r) > 0 ? (pm_of(r) + ag_of(r)) / au_of(r) : 0; }, true);
  std::printf(
      "\nalert latency: %d benign + %d matching execs per round (every %d-th matching one lives ~5 ms), %d "
      "spawners, %ld CPUs, detection.interval_secs %d, %lld of %d rounds ran; medians over rounds\n\n",
      o.benign, o.matching, o.long_every, o.spawners, sysconf(_SC_NPROCESSORS_ONLN), o.detection_interval,
      static_cast<long long>(ran), o.rounds);
  std::printf("| measure | result |\n| --- | --- |\n");
  std::printf("| storm rate | %.0f exec/s |\n",
              MedianOf(rounds, [](const Round& r) { return static_cast<double>(r.execs) / r.storm_s; }));
  std::printf("| exec -> alert stored, p50 / p99 / max | %.1f / %.1f / %.1f ms |\n", pct(0.5, true),
              pct(0.99, true), pct(1.0, true));
  std::printf("| exec -> stdout line, p50 / p99 / max | %.1f / %.1f / %.1f ms |\n", pct(0.5, false),
              pct(0.99, false), pct(1.0, false));
  std::printf(
      "| matching execs missed (no stored alert), all rounds | %lld of %lld (of those living < 1 ms: %lld of "
      "%lld) |\n",
      static_cast<long long>(missed_store), static_cast<long long>(matching),
      static_cast<long long>(missed_short), static_cast<long long>(shorts));
  std::printf("| matching execs without a stdout line, all rounds | %lld of %lld |\n",
              static_cast<long long>(missed_stdout), static_cast<long long>(matching));
  std::printf("| CPU per exec: procmond | %.1f us |\n| CPU per exec: agent + query workers | %.1f us |\n", pm,
              ag);
  std::printf("| CPU per exec: procmond + agent | %.1f us |\n", both);
  if (have_auditd) {
    std::printf("| CPU per exec: auditd (same storm) | %.1f us |\n", au);
    std::printf("| procmond / auditd, paired per round (target <= 0.25) | %.2f |\n", pm_ratio);
    std::printf("| (procmond + agent) / auditd, paired per round (target <= 0.6) | %.2f |\n", both_ratio);
  } else {
    std::printf("| auditd | not run |\n");
  }
}

constexpr const char* kUsage =
    "usage: alert_latency_bench [--benign M] [--matching N] [--rounds R] [--spawners S] [--long-every K]\n"
    "                           [--detection-interval SECS] [--quiet-secs SECS] [--no-auditd]\n"
    "                           [--idle SECS]\n"
    "                           [--procmond PATH] [--agent PATH] [--rules DIR] [--rule ID]\n"
    "  --benign M             benign execs (/bin/true) per round (default 20000)\n"
    "  --matching N           matching execs (copies under /tmp) mixed in per round (default 10000)\n"
    "  --rounds R             rounds, each with fresh daemons and store (default 3)\n"
    "  --spawners S           threads spawning execs as fast as they can (default: online CPUs)\n"
    "  --long-every K         every K-th matching exec is /tmp/.../sleep 0.005, the rest /tmp/.../true\n"
    "                         (default 10; 0: none)\n"
    "  --detection-interval S detection.interval_secs of the agent (default 30, the default config)\n"
    "  --quiet-secs SECS      give up waiting for alerts after this long without a new one\n"
    "                         (default 2 x detection interval + 15)\n"
    "  --no-auditd            do not run auditd on the same storm\n"
    "  --idle SECS            no storm: the daemons' CPU and context switches while idle for SECS\n"
    "                         (after their start-up), e.g. 300\n"
    "  --procmond, --agent    the binaries (default: this build's)\n"
    "  --rules DIR            rule directory the agent loads (default: the source tree's rules/)\n"
    "  --rule ID              the rule whose alerts are timed (default proc-exec-from-tmp)\n"
    "Needs root. Exit code 77 when not root (ctest: skipped).\n";

// Parses the flags into *o; returns an exit code to stop with, or -1 to run.
int ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "alert_latency_bench: %s needs a value\n%s", a.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&]() { return std::atoi(next().c_str()); };
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    const std::map<std::string, int*> numbers = {
        {"--benign", &o->benign},         {"--matching", &o->matching},
        {"--rounds", &o->rounds},         {"--spawners", &o->spawners},
        {"--long-every", &o->long_every}, {"--detection-interval", &o->detection_interval},
        {"--quiet-secs", &o->quiet_secs}, {"--idle", &o->idle_secs}};
    const std::map<std::string, std::string*> texts = {{"--procmond", &o->procmond},
                                                       {"--agent", &o->agent},
                                                       {"--rules", &o->rules},
                                                       {"--rule", &o->rule_id}};
    if (auto n = numbers.find(a); n != numbers.end()) {
      *n->second = number();
    } else if (auto t = texts.find(a); t != texts.end()) {
      *t->second = next();
    } else if (a == "--no-auditd") {
      o->auditd = false;
    } else {
      std::fprintf(stderr, "alert_latency_bench: unknown argument %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (o->benign < 0 || o->matching <= 0 || o->rounds <= 0 || o->spawners <= 0 || o->long_every < 0 ||
      o->detection_interval <= 0 || o->quiet_secs < 0 || o->idle_secs < 0) {
    std::fprintf(stderr, "alert_latency_bench: counts must be positive (--benign may be 0)\n%s", kUsage);
    return 2;
  }
  return -1;
}

void OnSignal(int) {
  g_interrupted = true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (int rc = ParseArgs(argc, argv, &o); rc >= 0) return rc;
  if (geteuid() != 0) {
    std::fprintf(stderr,
                 "alert_latency_bench: skipped: needs root (eBPF, auditd, the daemons' user switch)\n");
    return kSkip;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/alert_latency_bench.XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string tmp = tmpl;
  ::chmod(tmp.c_str(), 0755);  // the daemons run as nobody
  if (o.idle_secs > 0) {
    const int rc = RunIdle(o, tmp);
    std::error_code ec;
    fs::remove_all(tmp, ec);
    return rc;
  }
  std::vector<Round> rounds;
  for (int i = 1; i <= o.rounds && !g_interrupted; ++i) {
    rounds.push_back(RunRound(o, tmp, i));
    PrintRound(i, rounds.back());
    std::fflush(stdout);
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  PrintSummary(o, rounds);
  for (const Round& r : rounds)
    if (!r.failure.empty()) return 1;
  return g_interrupted ? 1 : 0;
}
