// fleet_bench: what the fleet (SPEC §14, docs/fleet.md) carries on this
// machine, every part real: a 3-node nats-server JetStream cluster on
// loopback (sentinel/testing/nats_cluster.h), the real `sentinelfleet`
// console (`keys generate`, `init`, `serve` into its SQLite store) and real
// publishers and responders.
//
//   1. alerts/s end to end: H hosts, each an event store of its own and the
//      agent's delivery path (the Dispatcher with the sink EffectiveSinks()
//      adds for `fleet.servers`, i.e. the implicit nats sink, built by the
//      agent's SinkRegistry), raise N alerts each at once (one detection
//      cycle's commit); timed until the console's store holds all H x N.
//      Per alert, publish -> console-stored latency: the host's delivery
//      attempt (alert_deliveries.attempted_at_ms, written just before the
//      publish) to the console's received_at_ms (taken as the batch's
//      transaction begins; the commit follows).
//   2. the same latency unloaded: every host raises one alert every
//      --pace-ms, --paced alerts each.
//   3. what an alert costs: CPU of serve, of the nats-servers and of the
//      publishers per alert during the rounds; stream bytes per message
//      (STREAM.INFO) and console store bytes per alert (SQLite dbstat).
//   4. `sentinelfleet query --hosts all` fan-out (the whole command timed:
//      process start, connect, heartbeat read, sign, publish, collect),
//      --query-runs runs per size after a warm-up, p50/p95/max:
//      - stand-ins (--standin-fanout): the real EnvelopeVerifier and
//        ChunkWriter in this process, one row, no query worker: the
//        console's and the cluster's share;
//      - real sentinelagent hosts (--fanout): --no-collector, a store made
//        by `procmond --once`, the agent's own live-query responder (verify
//        the signed envelope, run the SQL in the sandboxed query worker,
//        reply in chunks); their CPU per query is reported too.
//   5. heartbeats: --heartbeats keys put into sentineld_hosts by 20 writers
//      (the value a real agent put), puts/s, how long serve's watch takes to
//      have them all in the console store, bucket and console bytes per
//      host, and how long reading every heartbeat takes.
//
// Every process it starts (nats-server, serve, agents and what they start)
// runs in its own process group and is stopped by pid/pgid only. Exit 77
// (skipped) without nats-server.
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "sentinel/alerting/dispatcher.h"
#include "sentinel/alerting/sink.h"
#include "sentinel/base/time.h"
#include "sentinel/fleet/envelope.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/storage/store.h"
#include "sentinel/testing/nats_cluster.h"
#include "sentinel/testing/subprocess.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sentinel;
using namespace sentinel::bench;

constexpr int kSkip = 77;
constexpr int kWriters = 20;  // heartbeat writers
std::atomic<bool> g_interrupted{false};

struct Options {
  int hosts = 20;                                          // publishing hosts
  int alerts = 500;                                        // alerts per host per round
  int rounds = 3;                                          // throughput rounds
  int paced = 50;                                          // unloaded latency: alerts per host
  int pace_ms = 200;                                       // ... one every pace_ms per host
  std::vector<int> fanout = {5, 10, 20, 40};               // real agents
  std::vector<int> standin_fanout = {5, 10, 20, 40, 200};  // stand-in responders
  int query_runs = 20;                                     // per fan-out size
  int detection_interval = 30;
  int heartbeats = 10000;
  bool keep = false;
  std::string fleet = SENTINEL_BENCH_FLEET, agent = SENTINEL_BENCH_AGENT, procmond = SENTINEL_BENCH_PROCMOND;
};

// ---------------------------------------------------------------------------
// Small helpers

// A read-only SQLite connection (the console's store, a host's store).
class ReadDb {
 public:
  explicit ReadDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db_);
      db_ = nullptr;
    } else {
      sqlite3_busy_timeout(db_, 5000);
    }
  }
  ~ReadDb() { sqlite3_close(db_); }
  ReadDb(const ReadDb&) = delete;
  ReadDb& operator=(const ReadDb&) = delete;

  // Every row's integer columns; empty on an error.
  std::vector<std::vector<int64_t>> Rows(const std::string& sql) const {
    std::vector<std::vector<int64_t>> out;
    sqlite3_stmt* st = nullptr;
    if (!db_ || sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return out;
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<int64_t> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) row.push_back(sqlite3_column_int64(st, i));
      out.push_back(std::move(row));
    }
    sqlite3_finalize(st);
    return out;
  }
  int64_t Int(const std::string& sql) const {
    auto rows = Rows(sql);
    return rows.empty() || rows[0].empty() ? -1 : rows[0][0];
  }

 private:
  sqlite3* db_ = nullptr;
};

// The environment edits for a child: every SENTINELD_* of ours removed, then `extra`.
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string v = *e;
    if (v.rfind("SENTINELD_", 0) == 0) env.push_back(v.substr(0, v.find('=')));
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// The unprivileged user the agents drop to when the bench runs as root (as the tests do).
constexpr const char* kServiceUser = "nobody";

void GiveToServiceUser(const std::string& path) {
  if (geteuid() != 0) return;
  if (const passwd* pw = getpwnam(kServiceUser)) {
    if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) std::perror(path.c_str());
  }
}

std::string ServerList(const std::vector<std::string>& urls) {
  std::string list;
  for (const std::string& u : urls) list += (list.empty() ? "\"" : ", \"") + u + "\"";
  return "[" + list + "]";
}

void SleepMs(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Polls `pred` every 20 ms until it holds, `secs` pass or the bench is interrupted.
template <class Pred>
bool Until(Pred pred, int secs) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(secs);
  while (!g_interrupted && std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    SleepMs(20);
  }
  return pred();
}

std::unique_ptr<fleet::NatsClient> Connect(const std::vector<std::string>& urls, const std::string& name) {
  fleet::ConnectOptions o;
  o.servers = urls;
  o.name = name;
  o.timeout_ms = 5000;
  auto c = fleet::NatsClient::Connect(o);
  if (!c.ok()) std::fprintf(stderr, "fleet_bench: %s: %s\n", name.c_str(), c.status().message().c_str());
  return c.ok() ? std::move(*c) : nullptr;
}

// state.messages and state.bytes of a stream (a KV bucket is stream KV_<name>).
std::pair<int64_t, int64_t> StreamState(fleet::NatsClient& client, const std::string& stream) {
  auto info = client.Request("$JS.API.STREAM.INFO." + stream, "", 5000);
  if (!info.ok()) return {-1, -1};
  const json j = json::parse(info->data, nullptr, false);
  if (!j.is_object() || !j.contains("state")) return {-1, -1};
  return {j["state"].value("messages", int64_t{-1}), j["state"].value("bytes", int64_t{-1})};
}

// Bytes of table `table` and its indexes in the store (SQLite's dbstat), or -1.
int64_t TableBytes(const ReadDb& db, const std::string& table) {
  return db.Int(
      "SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON d.name = m.name WHERE m.tbl_name = '" +
      table + "'");
}

int64_t FileBytes(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

// ---------------------------------------------------------------------------
// The console: its configuration, key, `init` and a background `serve`.

class ConsoleRig {
 public:
  ConsoleRig(std::string dir, std::string bin) : dir_(std::move(dir)), bin_(std::move(bin)) {}
  ~ConsoleRig() { StopServe(); }
  ConsoleRig(const ConsoleRig&) = delete;
  ConsoleRig& operator=(const ConsoleRig&) = delete;

  // Writes the configuration, generates the key, runs init (until the
  // cluster takes it) and starts serve. "" or what failed.
  std::string Start(const std::vector<std::string>& urls) {
    fs::create_directories(dir_);
    std::ofstream(config()) << "fleet: {servers: " << ServerList(urls) << "}\nconsole: {database: " << db()
                            << ", signing_key: " << dir_ << "/console.key}\ntelemetry: {log_format: text}\n";
    auto keys = Run({"keys", "generate", "--output", dir_ + "/console.key"});
    if (keys.exit_code != 0) return "keys generate: " + keys.err;
    public_key_ = keys.out.substr(0, keys.out.find('\n'));
    testing::RunResult init;
    if (!Until([&] { return (init = Run({"init", "--timeout", "5s"})).exit_code == 0; }, 60))
      return "init: " + init.err;
    serve_ = Spawn(Argv({"serve"}), Env(), dir_ + "/serve.log");  // Spawn drops SENTINELD_*
    if (serve_ <= 0) return "serve did not start";
    if (!Until([&] { return fs::exists(db()); }, 30))
      return "serve made no store: " + ReadAll(dir_ + "/serve.log");
    return "";
  }
  void StopServe() {
    if (serve_ > 0) StopGroup(serve_);
    serve_ = -1;
  }

  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {bin_, "--config", config()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  testing::RunResult Run(const std::vector<std::string>& args) const {
    return testing::Run(Argv(args), ChildEnv(Env()));
  }
  std::string db() const { return dir_ + "/fleet.db"; }
  const std::string& public_key() const { return public_key_; }
  pid_t serve_pid() const { return serve_; }

 private:
  std::string config() const { return dir_ + "/console.yaml"; }
  std::vector<std::string> Env() const { return {"HOME=" + dir_, "XDG_CONFIG_HOME=" + dir_, "NO_COLOR=1"}; }

  std::string dir_, bin_, public_key_;
  pid_t serve_ = -1;
};

// ---------------------------------------------------------------------------
// A publishing host: its event store and the agent's delivery path.

class Publisher {
 public:
  // "" or what failed.
  std::string Start(const std::string& dir, const std::string& host_id,
                    const std::vector<std::string>& urls) {
    host_id_ = host_id;
    path_ = dir + "/events.db";
    fs::create_directories(dir);
    auto db =
        storage::OpenStore(storage::DatabaseKind::kEvents, {path_, storage::OpenMode::kReadWrite, 5000});
    if (!db.ok()) return db.status().message();
    db_ = std::move(*db);
    config::Config cfg;
    cfg.alerting.sinks.clear();  // only what the fleet adds: the implicit nats sink
    cfg.fleet.servers = urls;
    cfg.fleet.host_id = host_id;
    alerting::SinkRegistry registry;
    alerting::RegisterBuiltinSinks(registry);
    alerting::SinkEnvironment env = alerting::SinkEnvironment::Process();
    env.fleet = cfg.fleet;
    alerting::DispatcherOptions opts;
    opts.database_path = path_;
    opts.retry = cfg.alerting.retry;
    opts.circuit_breaker = cfg.alerting.circuit_breaker;
    std::vector<alerting::SinkBinding> sinks;
    for (const auto& s : alerting::EffectiveSinks(cfg)) {
      opts.configured_sinks.insert(s.name);
      auto sink = registry.Build(s, env);
      if (!sink.ok()) return sink.status().message();
      sinks.push_back({std::move(*sink), std::nullopt});
    }
    dispatcher_ = std::make_unique<alerting::Dispatcher>(std::move(opts), std::move(sinks));
    Status started = dispatcher_->Start();
    return started.ok() ? "" : started.message();
  }
  void Stop() {
    if (dispatcher_) dispatcher_->Stop();
  }

  // Commits `n` alerts now (one transaction, as a detection cycle does) and
  // queues them for delivery. The alert is shaped like a real one of
  // proc-exec-from-tmp (affected process, the rule's columns as raw_data).
  bool Raise(int n) {
    const std::string now = std::to_string(NowMs());
    Status s = db_->Exec(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + std::to_string(n) +
        ") INSERT INTO alerts(alert_time, rule_id, title, description, severity, scan_id, affected_processes,"
        " process_count, rule_version, execution_time_ms, raw_data, dedup_key) SELECT " +
        now +
        ", 'proc-exec-from-tmp', 'Program executed from a temporary directory', 'A process runs an "
        "executable that lives in a world-writable temporary directory (/tmp, /var/tmp, /dev/shm).', 'high', "
        "1, '[{\"pid\":' || (40000 + i) || ',\"name\":\"implant\",\"exe_path\":\"/tmp/.x/implant\"}]', 1, 1, "
        "3,"
        " json_object('pid', 40000 + i, 'ppid', 1234, 'name', 'implant', 'exe_path', '/tmp/.x/implant',"
        " 'start_time', " +
        now +
        ", 'user_name', 'www-data', 'user_id', 33, 'command_line', '/tmp/.x/implant --connect "
        "203.0.113.7:443 --beacon 30', 'cwd', '/tmp/.x'), hex(randomblob(8)) FROM k");
    if (!s.ok()) return false;
    return dispatcher_->EnqueueNewAlerts().ok();
  }

  const std::string& host_id() const { return host_id_; }
  int64_t MaxId() const { return ReadDb(path_).Int("SELECT COALESCE(max(id), 0) FROM alerts"); }
  // alert id -> when its successful attempt started, for ids > after.
  std::map<int64_t, int64_t> AttemptedAt(int64_t after) const {
    std::map<int64_t, int64_t> out;
    for (const auto& r : ReadDb(path_).Rows("SELECT alert_id, attempted_at_ms FROM alert_deliveries WHERE "
                                            "status = 'success' AND alert_id > " +
                                            std::to_string(after)))
      out[r[0]] = r[1];
    return out;
  }

 private:
  std::string host_id_, path_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<alerting::Dispatcher> dispatcher_;
};

int64_t ConsoleAlerts(const ConsoleRig& rig) {
  return ReadDb(rig.db()).Int("SELECT count(*) FROM alerts");
}

// publish -> stored (ms) of every alert with id > after[host] on the console, and raised -> stored.
void Latencies(const ConsoleRig& rig, const std::vector<std::unique_ptr<Publisher>>& pubs,
               const std::vector<int64_t>& after, std::vector<double>* publish, std::vector<double>* raised) {
  ReadDb console(rig.db());
  for (size_t h = 0; h < pubs.size(); ++h) {
    const auto attempted = pubs[h]->AttemptedAt(after[h]);
    for (const auto& r :
         console.Rows("SELECT CAST(alert_id AS INTEGER), received_at_ms, alert_time FROM alerts "
                      "WHERE host_id = '" +
                      pubs[h]->host_id() + "' AND CAST(alert_id AS INTEGER) > " + std::to_string(after[h]))) {
      auto it = attempted.find(r[0]);
      if (it != attempted.end()) publish->push_back(static_cast<double>(r[1] - it->second));
      raised->push_back(static_cast<double>(r[1] - r[2]));
    }
  }
}

std::vector<int64_t> MaxIds(const std::vector<std::unique_ptr<Publisher>>& pubs) {
  std::vector<int64_t> ids;
  for (const auto& p : pubs) ids.push_back(p->MaxId());
  return ids;
}

// ---------------------------------------------------------------------------
// Phase 1 and 2: alerts through the cluster into the console.

// CPU seconds so far of the console's serve, the nats-servers and this process (the publishers).
struct CpuProbe {
  pid_t serve = -1;
  std::vector<pid_t> nats;
  std::array<double, 3> Sample() const {
    double n = 0;
    for (pid_t p : nats) n += std::max(0.0, CpuSeconds(p));
    return {CpuSeconds(serve), n, CpuMs() / 1000};
  }
};

struct Round {
  std::array<double, 3> cpu_s{};  // serve, nats-servers, publishers during the round
  int64_t alerts = 0;
  double secs = 0;
  bool complete = false;
  std::vector<double> publish_ms, raised_ms;
};

Round ThroughputRound(const Options& o, const ConsoleRig& rig,
                      const std::vector<std::unique_ptr<Publisher>>& pubs, const CpuProbe& cpu) {
  Round r;
  const auto cpu0 = cpu.Sample();
  const std::vector<int64_t> after = MaxIds(pubs);
  const int64_t base = ConsoleAlerts(rig);
  r.alerts = static_cast<int64_t>(pubs.size()) * o.alerts;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& p : pubs) p->Raise(o.alerts);
  r.complete = Until([&] { return ConsoleAlerts(rig) >= base + r.alerts; }, 600);
  r.secs = Ms(std::chrono::steady_clock::now() - t0) / 1000;
  const auto cpu1 = cpu.Sample();
  for (size_t i = 0; i < r.cpu_s.size(); ++i) r.cpu_s[i] = cpu1[i] - cpu0[i];
  Latencies(rig, pubs, after, &r.publish_ms, &r.raised_ms);
  return r;
}

Round PacedRound(const Options& o, const ConsoleRig& rig,
                 const std::vector<std::unique_ptr<Publisher>>& pubs) {
  Round r;
  const std::vector<int64_t> after = MaxIds(pubs);
  const int64_t base = ConsoleAlerts(rig);
  r.alerts = static_cast<int64_t>(pubs.size()) * o.paced;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (size_t h = 0; h < pubs.size(); ++h) {
    threads.emplace_back([&, h] {
      SleepMs(static_cast<int64_t>(h) * o.pace_ms / static_cast<int64_t>(pubs.size()));  // spread the hosts
      for (int i = 0; i < o.paced && !g_interrupted; ++i) {
        pubs[h]->Raise(1);
        SleepMs(o.pace_ms);
      }
    });
  }
  for (auto& t : threads) t.join();
  r.complete = Until([&] { return ConsoleAlerts(rig) >= base + r.alerts; }, 300);
  r.secs = Ms(std::chrono::steady_clock::now() - t0) / 1000;
  Latencies(rig, pubs, after, &r.publish_ms, &r.raised_ms);
  return r;
}

double PerAlertUs(double cpu_s, int64_t alerts) {
  return alerts > 0 ? 1e6 * cpu_s / static_cast<double>(alerts) : 0;
}

void PrintRound(const char* what, int i, const Round& r) {
  std::printf(
      "%s %d: %lld alerts stored in %.2f s (%.0f alerts/s)%s; publish->stored p50 %.0f p99 %.0f max %.0f ms;"
      " raised->stored p50 %.0f p99 %.0f ms\n",
      what, i, static_cast<long long>(r.alerts), r.secs, static_cast<double>(r.alerts) / r.secs,
      r.complete ? "" : " INCOMPLETE", Percentile(r.publish_ms, 0.5), Percentile(r.publish_ms, 0.99),
      Percentile(r.publish_ms, 1.0), Percentile(r.raised_ms, 0.5), Percentile(r.raised_ms, 0.99));
  if (r.cpu_s[0] > 0)
    std::printf("  CPU per alert: serve %.0f us, 3 nats-servers %.0f us, publishers %.0f us\n",
                PerAlertUs(r.cpu_s[0], r.alerts), PerAlertUs(r.cpu_s[1], r.alerts),
                PerAlertUs(r.cpu_s[2], r.alerts));
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// Phase 4: real agents answering `sentinelfleet query`.

class AgentHosts {
 public:
  AgentHosts(const Options& o, std::string dir, std::vector<std::string> urls, std::string trusted_key)
      : o_(o), dir_(std::move(dir)), urls_(std::move(urls)), key_(std::move(trusted_key)) {}
  ~AgentHosts() { StopAll(); }
  AgentHosts(const AgentHosts&) = delete;
  AgentHosts& operator=(const AgentHosts&) = delete;

  // Starts hosts until `n` run. "" or what failed.
  std::string GrowTo(int n) {
    while (static_cast<int>(pids_.size()) < n && !g_interrupted) {
      char id[32];
      std::snprintf(id, sizeof id, "fanout-%02zu", pids_.size() + 1);
      std::string failure = StartOne(id);
      if (!failure.empty()) return failure;
    }
    return "";
  }
  void StopAll() {
    for (pid_t p : pids_) kill(p, SIGTERM);  // all at once, then each by its group
    for (pid_t p : pids_) StopGroup(p);
    pids_.clear();
  }
  int size() const { return static_cast<int>(pids_.size()); }
  // CPU seconds of the agents and the children they reaped (query workers).
  double CpuSeconds() const {
    double total = 0;
    for (pid_t p : pids_) total += std::max(0.0, bench::CpuSeconds(p, true));
    return total;
  }
  const std::vector<std::string>& ids() const { return ids_; }
  // Resident memory of the agents themselves (not their query workers), MiB each.
  std::vector<double> RssMiB() const {
    std::vector<double> out;
    for (pid_t p : pids_) {
      const std::string s = ReadAll("/proc/" + std::to_string(p) + "/status");
      const size_t at = s.find("VmRSS:");
      if (at != std::string::npos) out.push_back(std::atof(s.c_str() + at + 6) / 1024);
    }
    return out;
  }

 private:
  std::string StartOne(const std::string& id) {
    const std::string d = dir_ + "/" + id;
    fs::create_directories(d + "/run");
    for (const std::string& p : {d, d + "/run"}) GiveToServiceUser(p);
    const std::string cfg = d + "/agent.yaml";
    std::ofstream(cfg) << "database: {path: " << d << "/events.db, audit_path: " << d
                       << "/audit.db}\ndetection: {interval_secs: " << o_.detection_interval
                       << "}\nipc: {socket_dir: " << d << "/run}\nfleet: {servers: " << ServerList(urls_)
                       << ", host_id: " << id << ", trusted_keys: [" << key_
                       << "]}\ntelemetry: {log_format: text, http_listen: \"\"}\n";
    chmod(cfg.c_str(), 0644);
    std::vector<std::string> env = {"HOME=" + d, "XDG_CONFIG_HOME=" + d};
    if (geteuid() == 0) env.push_back(std::string("SENTINELD_PRIVILEGES__USER=") + kServiceUser);
    auto scan = testing::Run({o_.procmond, "--config", cfg, "--once"}, ChildEnv(env));
    if (scan.exit_code != 0) return id + ": procmond --once: " + scan.err.substr(0, 400);
    const pid_t pid = Spawn({o_.agent, "--config", cfg, "--no-collector"}, env, d + "/agent.log");
    if (pid <= 0) return id + ": the agent did not start";
    pids_.push_back(pid);
    ids_.push_back(id);
    return "";
  }

  const Options& o_;
  std::string dir_;
  std::vector<std::string> urls_;
  std::string key_;
  std::vector<pid_t> pids_;
  std::vector<std::string> ids_;
};

// A stand-in host (what tests/fleet/fleet_harness.h's StandInHost does,
// without gtest): its own connection, subscribed to sentineld.query.<id>
// and sentineld.query.all; verifies each request with the real
// EnvelopeVerifier (its own replay store) and answers one row through the
// real ChunkWriter. No query worker, no SQLite: what the console and the
// cluster cost per host, without the hosts' CPU.
class StandIn {
 public:
  ~StandIn() { subs_.clear(); }  // unsubscribed before the verifier goes
  // "" or what failed.
  std::string Start(const std::string& dir, const std::string& host_id, const std::vector<std::string>& urls,
                    const std::string& key) {
    host_id_ = host_id;
    fs::create_directories(dir);
    auto replay = fleet::ReplayStore::Open(dir + "/nonces");
    if (!replay.ok()) return replay.status().message();
    replay_ = std::move(*replay);
    verifier_ = std::make_unique<fleet::EnvelopeVerifier>(std::vector<std::string>{key}, replay_.get(),
                                                          Clock::Real());
    client_ = Connect(urls, "fleet_bench " + host_id);
    if (!client_) return "no connection";
    for (const std::string& subject : {fleet::QuerySubject(host_id), std::string(fleet::kQueryAllSubject)}) {
      auto sub = client_->Subscribe(subject, [this](fleet::Message m) { OnQuery(m); });
      if (!sub.ok()) return sub.status().message();
      subs_.push_back(std::move(*sub));
    }
    return client_->Flush(5000).ok() ? PutHeartbeat(NowMs() / 1000) : "flush failed";
  }
  // A heartbeat sent at `sent_at` (unix s): `--hosts all` expects hosts whose last one is recent.
  std::string PutHeartbeat(int64_t sent_at) {
    const json hb{{"host_id", host_id_},  {"hostname", host_id_},
                  {"version", "0.1.0"},   {"health", "ok"},
                  {"last_scan", nullptr}, {"rules", {{"count", 0}, {"checksum", ""}, {"bundle", nullptr}}},
                  {"sent_at", sent_at}};
    auto rev = client_->KvPut(std::string(fleet::kHostsBucket), host_id_, hb.dump());
    return rev.ok() ? "" : rev.status().message();
  }

 private:
  void OnQuery(const fleet::Message& m) {
    auto verified = verifier_->Verify(fleet::EnvelopeKind::kQuery, m.data);
    if (!verified.ok()) return;
    auto q = fleet::ParseQueryPayload(verified->payload);
    if (!q.ok() || !fleet::QueryAddresses(*q, host_id_) || !fleet::IsReplyInbox(m.reply)) return;
    fleet::ChunkWriter writer(q->query_id, host_id_, {"n"});
    if (auto full = writer.Add(json::array({1}))) client_->Publish(m.reply, *full).IgnoreError();
    client_->Publish(m.reply, writer.Finish(false)).IgnoreError();
  }

  std::string host_id_;
  std::unique_ptr<fleet::ReplayStore> replay_;
  std::unique_ptr<fleet::EnvelopeVerifier> verifier_;
  std::unique_ptr<fleet::NatsClient> client_;
  std::vector<std::unique_ptr<fleet::Subscription>> subs_;
};

// Host ids of sentineld_hosts whose heartbeat is in `ids`.
int LiveHeartbeats(fleet::NatsClient& client, const std::vector<std::string>& ids) {
  auto all = client.KvAll(std::string(fleet::kHostsBucket));
  if (!all.ok()) return 0;
  const std::set<std::string> want(ids.begin(), ids.end());
  int n = 0;
  for (const auto& [key, value] : *all) n += want.count(key) ? 1 : 0;
  return n;
}

struct FanoutResult {
  std::string kind;  // "real agents" | "stand-ins"
  int hosts = 0;
  std::vector<double> ms;   // runs that every host answered
  int failed = 0;           // runs with an exit code other than 0 or a host missing
  double host_cpu_ms = -1;  // real agents: CPU (agent + query workers) per host per query
  std::string note;
};

// One `query --hosts all` run: its wall time, and whether all `hosts` answered.
std::pair<double, bool> QueryOnce(const ConsoleRig& rig, int hosts) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = rig.Run(
      {"--json", "query", "SELECT count(*) AS n FROM processes", "--hosts", "all", "--timeout", "10s"});
  const double ms = Ms(std::chrono::steady_clock::now() - t0);
  std::set<std::string> answered;
  const json rows = json::parse(r.out, nullptr, false);
  if (rows.is_array()) {
    for (const json& row : rows)
      if (row.is_object() && row.contains("host_id")) answered.insert(row["host_id"].get<std::string>());
  }
  if (r.exit_code != 0)
    std::fprintf(stderr, "fleet_bench: query (%d hosts): exit %d: %s", hosts, r.exit_code, r.err.c_str());
  return {ms, r.exit_code == 0 && static_cast<int>(answered.size()) == hosts};
}

// One warm-up run (the agents' first query worker, page cache), then the timed runs.
void TimeQueries(const Options& o, const ConsoleRig& rig, FanoutResult* f) {
  QueryOnce(rig, f->hosts);
  for (int i = 0; i < o.query_runs && !g_interrupted; ++i) {
    auto [ms, ok] = QueryOnce(rig, f->hosts);
    if (ok) {
      f->ms.push_back(ms);
    } else {
      ++f->failed;
    }
  }
}

FanoutResult FanoutAgents(const Options& o, const ConsoleRig& rig, AgentHosts& agents,
                          fleet::NatsClient& client, int n) {
  FanoutResult f{.kind = "real agents", .hosts = n};
  f.note = agents.GrowTo(n);
  if (!f.note.empty()) return f;
  if (!Until([&] { return LiveHeartbeats(client, agents.ids()) >= n; }, 120)) {
    f.note = "not every agent's heartbeat arrived";
    return f;
  }
  const double cpu0 = agents.CpuSeconds();
  TimeQueries(o, rig, &f);
  f.host_cpu_ms = (agents.CpuSeconds() - cpu0) * 1000 / (o.query_runs + 1) / n;
  return f;
}

FanoutResult FanoutStandIns(const Options& o, const ConsoleRig& rig, const std::string& dir,
                            const std::vector<std::string>& urls,
                            std::vector<std::unique_ptr<StandIn>>& standins, int n) {
  FanoutResult f{.kind = "stand-ins", .hosts = n};
  while (static_cast<int>(standins.size()) < n && f.note.empty()) {
    char id[32];
    std::snprintf(id, sizeof id, "standin-%03zu", standins.size() + 1);
    standins.push_back(std::make_unique<StandIn>());
    f.note = standins.back()->Start(dir + "/" + id, id, urls, rig.public_key());
  }
  if (f.note.empty()) TimeQueries(o, rig, &f);
  return f;
}

void PrintFanout(const FanoutResult& f) {
  if (!f.note.empty()) {
    std::printf("fan-out %d %s: not run: %s\n", f.hosts, f.kind.c_str(), f.note.c_str());
    return;
  }
  std::printf("fan-out %d %s: %zu runs, p50 %.0f ms, p95 %.0f ms, max %.0f ms, failed runs %d", f.hosts,
              f.kind.c_str(), f.ms.size(), Percentile(f.ms, 0.5), Percentile(f.ms, 0.95),
              Percentile(f.ms, 1.0), f.failed);
  if (f.host_cpu_ms >= 0) std::printf("; host CPU per host per query %.0f ms", f.host_cpu_ms);
  std::printf("\n");
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// Phase 5: heartbeats.

struct HeartbeatResult {
  int64_t puts = 0, failed = 0;
  double put_secs = 0, ingest_secs = -1;
  int64_t value_bytes = 0, bucket_bytes = -1, bucket_msgs = -1;
  int64_t hosts_rows = 0, hosts_table_bytes = -1;
  double kvall_ms = -1;  // reading every heartbeat, as `query --hosts all` does
};

HeartbeatResult Heartbeats(const Options& o, const ConsoleRig& rig, const std::vector<std::string>& urls,
                           fleet::NatsClient& client, const std::string& sample_host) {
  HeartbeatResult r;
  std::string value;
  if (auto v = client.KvGet(std::string(fleet::kHostsBucket), sample_host); v.ok() && v->has_value())
    value = **v;
  if (value.empty())
    value = json{{"host_id", "x"}, {"hostname", "x"}, {"version", "0.1.0"}, {"health", "ok"}}.dump();
  r.value_bytes = static_cast<int64_t>(value.size());
  const int64_t hosts_before = ReadDb(rig.db()).Int("SELECT count(*) FROM hosts");
  std::atomic<int64_t> failed{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto c = Connect(urls, "fleet_bench heartbeats");
      for (int i = w; i < o.heartbeats && c && !g_interrupted; i += kWriters) {
        const std::string key = "hb-" + std::to_string(i);
        json hb = json::parse(value, nullptr, false);
        if (hb.is_object()) hb["host_id"] = key;
        if (!c->KvPut(std::string(fleet::kHostsBucket), key, hb.is_object() ? hb.dump() : value).ok())
          ++failed;
      }
    });
  }
  for (auto& t : writers) t.join();
  r.put_secs = Ms(std::chrono::steady_clock::now() - t0) / 1000;
  r.puts = o.heartbeats;
  r.failed = failed;
  if (Until(
          [&] {
            return ReadDb(rig.db()).Int("SELECT count(*) FROM hosts") >=
                   hosts_before + o.heartbeats - r.failed;
          },
          300))
    r.ingest_secs = Ms(std::chrono::steady_clock::now() - t0) / 1000;
  std::tie(r.bucket_msgs, r.bucket_bytes) = StreamState(client, "KV_" + std::string(fleet::kHostsBucket));
  ReadDb console(rig.db());
  r.hosts_rows = console.Int("SELECT count(*) FROM hosts");
  r.hosts_table_bytes = TableBytes(console, "hosts");
  std::vector<double> reads;
  for (int i = 0; i < 3; ++i) {
    const auto t = std::chrono::steady_clock::now();
    if (client.KvAll(std::string(fleet::kHostsBucket)).ok())
      reads.push_back(Ms(std::chrono::steady_clock::now() - t));
  }
  r.kvall_ms = reads.empty() ? -1 : Median(reads);
  return r;
}

// ---------------------------------------------------------------------------
// Summary

struct Results {
  std::vector<Round> rounds;
  Round paced;
  int64_t stream_msgs = -1, stream_bytes = -1, console_alerts = 0, console_bytes = 0, body_bytes = 0;
  std::vector<FanoutResult> fanout;
  std::vector<double> agent_rss;
  std::vector<double> baseline_ms;  // `sentinelfleet --json hosts`: start, connect, read heartbeats and store
  HeartbeatResult hb;
};

template <typename F>
double MedianOf(const std::vector<Round>& rounds, F f) {
  std::vector<double> v;
  for (const Round& r : rounds) v.push_back(f(r));
  return Median(v);
}

void PrintAlertSummary(const Options& o, const Results& res) {
  const double rate =
      MedianOf(res.rounds, [](const Round& r) { return static_cast<double>(r.alerts) / r.secs; });
  std::printf(
      "| alerts/s end to end (%d hosts x %d alerts at once, median of %zu rounds) | %.0f (%.0f per host) |\n",
      o.hosts, o.alerts, res.rounds.size(), rate, rate / o.hosts);
  std::printf("| publish -> console-stored under that load, p50 / p99 / max | %.0f / %.0f / %.0f ms |\n",
              MedianOf(res.rounds, [](const Round& r) { return Percentile(r.publish_ms, 0.5); }),
              MedianOf(res.rounds, [](const Round& r) { return Percentile(r.publish_ms, 0.99); }),
              MedianOf(res.rounds, [](const Round& r) { return Percentile(r.publish_ms, 1.0); }));
  std::printf("| raised -> console-stored under that load, p50 / p99 | %.0f / %.0f ms |\n",
              MedianOf(res.rounds, [](const Round& r) { return Percentile(r.raised_ms, 0.5); }),
              MedianOf(res.rounds, [](const Round& r) { return Percentile(r.raised_ms, 0.99); }));
  std::printf(
      "| publish -> console-stored unloaded (%d hosts, one alert each every %d ms), p50 / p99 / max | %.0f / "
      "%.0f / %.0f ms |\n",
      o.hosts, o.pace_ms, Percentile(res.paced.publish_ms, 0.5), Percentile(res.paced.publish_ms, 0.99),
      Percentile(res.paced.publish_ms, 1.0));
  std::printf("| raised -> console-stored unloaded, p50 / p99 | %.0f / %.0f ms |\n",
              Percentile(res.paced.raised_ms, 0.5), Percentile(res.paced.raised_ms, 0.99));
  const auto per = [](int64_t bytes, int64_t n) {
    return n > 0 ? static_cast<double>(bytes) / static_cast<double>(n) : 0;
  };
  std::printf(
      "| CPU per alert under that load: console serve / 3 nats-servers / publishers | %.0f / %.0f / %.0f us "
      "|\n",
      MedianOf(res.rounds, [](const Round& r) { return PerAlertUs(r.cpu_s[0], r.alerts); }),
      MedianOf(res.rounds, [](const Round& r) { return PerAlertUs(r.cpu_s[1], r.alerts); }),
      MedianOf(res.rounds, [](const Round& r) { return PerAlertUs(r.cpu_s[2], r.alerts); }));
  std::printf("| alert JSON as sent (mean) | %.0f bytes |\n", per(res.body_bytes, res.console_alerts));
  std::printf(
      "| SENTINELD_ALERTS bytes per message (R3: each node stores this) | %.0f bytes (%lld messages) |\n",
      per(res.stream_bytes, res.stream_msgs), static_cast<long long>(res.stream_msgs));
  std::printf("| console store bytes per alert (the alerts table and its indexes) | %.0f bytes |\n",
              per(res.console_bytes, res.console_alerts));
}

void PrintFanoutRow(const FanoutResult& f) {
  if (!f.note.empty()) {
    std::printf("| query fan-out, %d %s | not run: %s |\n", f.hosts, f.kind.c_str(), f.note.c_str());
    return;
  }
  const double p95 = Percentile(f.ms, 0.95);
  std::string note;
  if (f.failed > 0) note += ", " + std::to_string(f.failed) + " failed";
  std::printf("| query fan-out, %d %s, p50 / p95 / max (%zu runs%s) | %.0f / %.0f / %.0f ms%s |\n", f.hosts,
              f.kind.c_str(), f.ms.size(), note.c_str(), Percentile(f.ms, 0.5), p95, Percentile(f.ms, 1.0),
              f.hosts != 20 ? ""
              : p95 <= 1000 ? " (target p95 <= 1 s: met)"
                            : " (target p95 <= 1 s: not met)");
}

// Per kind, the p50 of the largest size over the smallest; and agents over stand-ins at equal sizes.
void PrintFanoutRatios(const std::vector<FanoutResult>& fanout) {
  std::map<std::string, std::vector<const FanoutResult*>> by_kind;
  for (const FanoutResult& f : fanout)
    if (!f.ms.empty()) by_kind[f.kind].push_back(&f);
  for (const auto& [kind, v] : by_kind) {
    if (v.size() < 2) continue;
    std::printf("| query p50 ratio, %s, %d / %d hosts | %.2f |\n", kind.c_str(), v.back()->hosts,
                v.front()->hosts, Percentile(v.back()->ms, 0.5) / Percentile(v.front()->ms, 0.5));
  }
  for (const FanoutResult* a : by_kind["real agents"]) {
    for (const FanoutResult* s : by_kind["stand-ins"]) {
      if (s->hosts == a->hosts)
        std::printf("| query p50 ratio, %d real agents / %d stand-ins | %.2f |\n", a->hosts, s->hosts,
                    Percentile(a->ms, 0.5) / Percentile(s->ms, 0.5));
    }
  }
  for (const FanoutResult* a : by_kind["real agents"]) {
    if (a->host_cpu_ms >= 0)
      std::printf("| CPU of one agent per query (agent + query worker), %d agents | %.0f ms |\n", a->hosts,
                  a->host_cpu_ms);
  }
}

void PrintSummary(const Options& o, const Results& res) {
  std::printf("\nfleet: 3-node nats-server %s cluster on loopback, %ld CPUs; medians of the runs\n\n",
              "JetStream", sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("| measure | result |\n| --- | --- |\n");
  if (!res.rounds.empty()) PrintAlertSummary(o, res);
  if (!res.baseline_ms.empty())
    std::printf(
        "| baseline: `sentinelfleet --json hosts` (start, connect, read the bucket and the store), median | "
        "%.0f ms |\n",
        Median(res.baseline_ms));
  for (const FanoutResult& f : res.fanout) PrintFanoutRow(f);
  PrintFanoutRatios(res.fanout);
  if (!res.agent_rss.empty())
    std::printf("| agent RSS (--no-collector, idle), median of %zu | %.1f MiB |\n", res.agent_rss.size(),
                Median(res.agent_rss));
  if (res.hb.puts > 0) {
    std::printf("| heartbeats: %lld puts into sentineld_hosts by %d writers | %.0f puts/s (%lld failed) |\n",
                static_cast<long long>(res.hb.puts), kWriters,
                static_cast<double>(res.hb.puts) / res.hb.put_secs, static_cast<long long>(res.hb.failed));
    std::printf("| ... all in the console's hosts table (serve's watch) after | %.1f s |\n",
                res.hb.ingest_secs);
    std::printf("| heartbeat value / bucket bytes per host (history 1) | %lld / %.0f bytes |\n",
                static_cast<long long>(res.hb.value_bytes),
                res.hb.bucket_msgs > 0
                    ? static_cast<double>(res.hb.bucket_bytes) / static_cast<double>(res.hb.bucket_msgs)
                    : 0);
    std::printf("| console hosts table bytes per host (%lld rows) | %.0f bytes |\n",
                static_cast<long long>(res.hb.hosts_rows),
                res.hb.hosts_rows > 0
                    ? static_cast<double>(res.hb.hosts_table_bytes) / static_cast<double>(res.hb.hosts_rows)
                    : 0);
    std::printf(
        "| reading every heartbeat (%lld keys; what `query --hosts all` does first), median of 3 | %.0f ms "
        "|\n",
        static_cast<long long>(res.hb.bucket_msgs), res.hb.kvall_ms);
  }
}

// ---------------------------------------------------------------------------
// The run

std::string RunAlerts(const Options& o, const std::string& tmp, const ConsoleRig& rig,
                      const std::vector<std::string>& urls, const CpuProbe& cpu, Results* res) {
  std::vector<std::unique_ptr<Publisher>> pubs;
  for (int h = 0; h < o.hosts; ++h) {
    pubs.push_back(std::make_unique<Publisher>());
    char id[32];
    std::snprintf(id, sizeof id, "pub-%02d", h + 1);
    if (std::string f = pubs.back()->Start(tmp + "/" + id, id, urls); !f.empty())
      return std::string(id) + ": " + f;
  }
  for (int i = 1; i <= o.rounds && !g_interrupted; ++i) {
    res->rounds.push_back(ThroughputRound(o, rig, pubs, cpu));
    PrintRound("throughput round", i, res->rounds.back());
  }
  if (o.paced > 0 && !g_interrupted) {
    res->paced = PacedRound(o, rig, pubs);
    PrintRound("paced", 1, res->paced);
  }
  for (auto& p : pubs) p->Stop();
  for (const Round& r : res->rounds)
    if (!r.complete) return "a throughput round did not complete";
  return "";
}

void StorageFigures(const ConsoleRig& rig, fleet::NatsClient& client, Results* res) {
  std::tie(res->stream_msgs, res->stream_bytes) = StreamState(client, std::string(fleet::kAlertsStream));
  ReadDb console(rig.db());
  res->console_alerts = console.Int("SELECT count(*) FROM alerts");
  res->body_bytes = console.Int("SELECT sum(length(body)) FROM alerts");
  res->console_bytes = TableBytes(console, "alerts");
  if (res->console_bytes < 0) res->console_bytes = FileBytes(rig.db()) + FileBytes(rig.db() + "-wal");
}

// Stand-ins first; their heartbeats are then made stale (sent_at 1) so that
// `--hosts all` no longer expects them when the real agents answer.
std::string RunStandIns(const Options& o, const std::string& tmp, const ConsoleRig& rig,
                        const std::vector<std::string>& urls, Results* res) {
  for (int i = 0; i < 5 && !g_interrupted; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (rig.Run({"--json", "hosts"}).exit_code == 0)
      res->baseline_ms.push_back(Ms(std::chrono::steady_clock::now() - t0));
  }
  std::vector<std::unique_ptr<StandIn>> standins;
  std::string failure;
  for (int n : o.standin_fanout) {
    if (g_interrupted) break;
    res->fanout.push_back(FanoutStandIns(o, rig, tmp + "/standins", urls, standins, n));
    PrintFanout(res->fanout.back());
    if (!res->fanout.back().note.empty() || res->fanout.back().failed > 0)
      failure = "a stand-in fan-out failed";
  }
  for (auto& s : standins) s->PutHeartbeat(1);
  return failure;
}

std::string RunAgents(const Options& o, const std::string& tmp, const ConsoleRig& rig,
                      const std::vector<std::string>& urls, fleet::NatsClient& client, Results* res) {
  AgentHosts agents(o, tmp + "/agents", urls, rig.public_key());
  std::string failure;
  for (int n : o.fanout) {
    if (g_interrupted) break;
    res->fanout.push_back(FanoutAgents(o, rig, agents, client, n));
    PrintFanout(res->fanout.back());
    if (!res->fanout.back().note.empty() || res->fanout.back().failed > 0) failure = "a fan-out size failed";
  }
  res->agent_rss = agents.RssMiB();
  if (o.heartbeats > 0 && !g_interrupted) {
    res->hb = Heartbeats(o, rig, urls, client, agents.ids().empty() ? "" : agents.ids().front());
    if (res->hb.failed > 0 || res->hb.ingest_secs < 0) failure = "heartbeats failed";
  }
  agents.StopAll();
  return failure;
}

int RunAll(const Options& o, const std::string& tmp) {
  auto cluster = testing::NatsCluster::Start(3);
  if (!cluster.ok()) {
    std::fprintf(stderr, "fleet_bench: cluster: %s\n", cluster.status().message().c_str());
    return 1;
  }
  const std::vector<std::string> urls = (*cluster)->urls();
  ConsoleRig rig(tmp + "/console", o.fleet);
  if (std::string f = rig.Start(urls); !f.empty()) {
    std::fprintf(stderr, "fleet_bench: console: %s\n", f.c_str());
    return 1;
  }
  auto client = Connect(urls, "fleet_bench");
  if (!client) return 1;
  Results res;
  std::vector<std::string> failures;
  if (o.hosts > 0 && o.alerts > 0) {
    CpuProbe cpu{.serve = rig.serve_pid()};
    for (int i = 0; i < (*cluster)->size(); ++i) cpu.nats.push_back((*cluster)->pid(i));
    if (std::string f = RunAlerts(o, tmp + "/publishers", rig, urls, cpu, &res); !f.empty())
      failures.push_back(f);
    StorageFigures(rig, *client, &res);
  }
  if (std::string f = RunStandIns(o, tmp, rig, urls, &res); !f.empty()) failures.push_back(f);
  if (std::string f = RunAgents(o, tmp, rig, urls, *client, &res); !f.empty()) failures.push_back(f);
  rig.StopServe();
  PrintSummary(o, res);
  for (const std::string& f : failures) std::printf("\nFAILED: %s\n", f.c_str());
  return failures.empty() && !g_interrupted ? 0 : 1;
}

constexpr const char* kUsage =
    "usage: fleet_bench [--hosts H] [--alerts N] [--rounds R] [--paced L] [--pace-ms MS]\n"
    "                   [--fanout 5,10,20,40] [--standin-fanout 5,10,20,40,200] [--query-runs Q]\n"
    "                   [--detection-interval SECS] [--heartbeats K] [--keep]\n"
    "                   [--fleet PATH] [--agent PATH] [--procmond PATH]\n"
    "  --hosts H              publishing hosts, each with its own event store and the agent's\n"
    "                         delivery path (Dispatcher + implicit nats sink) (default 20)\n"
    "  --alerts N             alerts each host raises at once per throughput round (default 500)\n"
    "  --rounds R             throughput rounds (default 3)\n"
    "  --paced L              unloaded latency: alerts per host, one every --pace-ms (default 50; 0: none)\n"
    "  --pace-ms MS           (default 200)\n"
    "  --fanout LIST          numbers of real sentinelagent hosts answering `sentinelfleet query --hosts\n"
    "                         all`, ascending (default 5,10,20,40; \"\": none)\n"
    "  --standin-fanout LIST  the same with stand-in responders (the real envelope verifier and chunk\n"
    "                         writer, no query worker: the console's and the cluster's share)\n"
    "                         (default 5,10,20,40,200; \"\": none)\n"
    "  --query-runs Q         timed query runs per size, after one warm-up run (default 20)\n"
    "  --detection-interval S the agents' detection.interval_secs (default 30, the default config)\n"
    "  --heartbeats K         heartbeat keys put into sentineld_hosts at the end (default 10000; 0: none)\n"
    "  --keep                 keep the temporary directory (stores, logs)\n"
    "  --fleet, --agent, --procmond  the binaries (default: this build's)\n"
    "Starts a 3-node nats-server cluster, the console and the agents itself, each in its own process\n"
    "group, and stops them by pid/pgid at the end. Exit 77 when nats-server is not installed.\n";

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(std::atoi(item.c_str()));
  return out;
}

// Parses the flags into *o; returns an exit code to stop with, or -1 to run.
int ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "fleet_bench: %s needs a value\n%s", a.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    const std::map<std::string, int*> numbers = {
        {"--hosts", &o->hosts},           {"--alerts", &o->alerts},
        {"--rounds", &o->rounds},         {"--paced", &o->paced},
        {"--pace-ms", &o->pace_ms},       {"--query-runs", &o->query_runs},
        {"--heartbeats", &o->heartbeats}, {"--detection-interval", &o->detection_interval}};
    const std::map<std::string, std::string*> texts = {
        {"--fleet", &o->fleet}, {"--agent", &o->agent}, {"--procmond", &o->procmond}};
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else if (auto n = numbers.find(a); n != numbers.end()) {
      *n->second = std::atoi(next().c_str());
    } else if (auto t = texts.find(a); t != texts.end()) {
      *t->second = next();
    } else if (a == "--fanout") {
      o->fanout = ParseList(next());
    } else if (a == "--standin-fanout") {
      o->standin_fanout = ParseList(next());
    } else if (a == "--keep") {
      o->keep = true;
    } else {
      std::fprintf(stderr, "fleet_bench: unknown argument %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  const auto ascending_list = [](const std::vector<int>& v) {
    return std::is_sorted(v.begin(), v.end()) && std::all_of(v.begin(), v.end(), [](int n) { return n > 0; });
  };
  const bool ascending = ascending_list(o->fanout) && ascending_list(o->standin_fanout);
  if (o->hosts < 0 || o->alerts < 0 || o->rounds <= 0 || o->paced < 0 || o->pace_ms <= 0 ||
      o->query_runs <= 0 || o->heartbeats < 0 || o->detection_interval <= 0 || !ascending) {
    std::fprintf(stderr, "fleet_bench: counts must be positive (--fanout ascending)\n%s", kUsage);
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
  if (auto why = testing::NatsCluster::SkipReason()) {
    std::fprintf(stderr, "fleet_bench: skipped: %s\n", why->c_str());
    return kSkip;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/fleet_bench.XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string tmp = tmpl;
  chmod(tmp.c_str(), 0755);  // the agents run as nobody
  const int rc = RunAll(o, tmp);
  std::error_code ec;
  if (o.keep) {
    std::printf("kept %s\n", tmp.c_str());
  } else {
    fs::remove_all(tmp, ec);
  }
  return rc;
}
