// rules_bench: every built-in rule over a 10,000-process snapshot, in the
// sandbox (RunRule: authorizer-checked compile, progress handler, limits,
// rows turned into JSON findings) and bare (plain sqlite3_prepare/step of
// the same SQL on a plain read-only connection, every column read) — the
// peer measured in the same run — and through the query worker the agent
// now uses (query_worker.h: one killable, seccomp-confined worker per cycle,
// started with the snapshot of the latest scan, every rule through it).
// Reports per-rule medians, the totals, the worker's start (exec, open,
// snapshot) and the sandbox/bare and worker/bare ratios (docs/benchmarks.md).
//
// Then the real-time path: --execs exec events (a build host's mix) are
// evaluated in batches of --batch through the worker as the agent's
// real-time detector does (load the batch, every `on: exec` rule over it),
// with the built-in rules alone and with the built-ins plus the rules of
// --rules DIR (e.g. the translated Sigma corpus: `sentinelcli rules convert
// testdata/sigma --output DIR`) in the same run; µs per exec.
//
//   rules_bench [--procs N] [--runs R] [--db PATH] [--rules DIR] [--execs N] [--batch B] [--json]
//
// The snapshot is synthetic but shaped like a busy host: two completed
// scans (so :prev_scan_id has a value; between them 5% of the processes
// change state and 1% are replaced), realistic names, paths, command lines
// and platform_data, and a handful of planted positives. Steady cycles: the
// agent's scan cycle when its exec rules judged the previous scan, so they
// judge only the processes changed since (decision 71).
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/rule.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace {

using namespace sentinel;
using Clock = std::chrono::steady_clock;
using bench::Median;
using bench::Ms;

// A command line split at single spaces (the synthetic ones have no quoting).
std::vector<std::string> Words(const char* text) {
  std::vector<std::string> argv;
  std::string arg;
  for (const char* c = text;; ++c) {
    if (*c == ' ' || *c == '\0') {
      argv.push_back(arg);
      arg.clear();
      if (*c == '\0') break;
    } else {
      arg += *c;
    }
  }
  return argv;
}

models::ProcessRecord MakeProcess(int i) {
  static const char* kinds[][3] = {
      {"sleep", "/usr/bin/sleep", "sleep 600"},
      {"bash", "/usr/bin/bash", "-bash"},
      {"nginx", "/usr/sbin/nginx", "nginx: worker process"},
      {"python3", "/usr/bin/python3.11", "/usr/bin/python3 /opt/app/worker.py --queue default"},
      {"java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java -Xmx2g -jar /opt/app/service.jar"},
      {"postgres", "/usr/lib/postgresql/15/bin/postgres", "postgres: 15/main: checkpointer"},
      {"sshd", "/usr/sbin/sshd", "sshd: alice [priv]"},
      {"node", "/usr/bin/node", "node /srv/web/server.js"},
  };
  const auto& k = kinds[i % 8];
  models::ProcessRecord p;
  p.pid = 1000 + i;
  p.ppid = i % 8 == 1 ? 900 : 1;
  p.name = k[0];
  p.exe_path = k[1];
  p.command_line = Words(k[2]);
  p.start_time_ms = 1'700'000'000'000 + i;
  p.cpu_percent = 0.1;
  p.memory_bytes = 4 << 20;
  p.status = "sleeping";
  p.user_id = i % 3 == 0 ? 0 : 1000 + i % 50;
  p.effective_uid = p.user_id;
  p.user_name = i % 3 == 0 ? "root" : "user" + std::to_string(i % 50);
  p.exe_hash = std::string(64, "0123456789abcdef"[i % 8]);
  nlohmann::json pd = {{"cwd", "/srv"},
                       {"tty", nullptr},
                       {"cgroup", "/system.slice/app.service"},
                       {"ns", {{"pid", 4026531836}, {"mnt", 4026531841}, {"net", 4026531840}}},
                       {"uids", {p.user_id.value(), p.user_id.value(), p.user_id.value(), p.user_id.value()}},
                       {"threads", 1 + i % 4},
                       {"fds",
                        {{"0", {{"type", "file"}, {"path", "/dev/null"}}},
                         {"1", {{"type", "pipe"}, {"inode", 1234 + i}}},
                         {"2", {{"type", "pipe"}, {"inode", 1234 + i}}}}},
                       {"loader_env", nlohmann::json::array()}};
  // A few planted positives so the rules have findings to build.
  if (i % 2500 == 7) {
    p.exe_path = "/tmp/.x/kworker (deleted)";
    p.name = "kworker/0:1";
    pd["exe_deleted"] = true;
    pd["loader_env"] = {"LD_PRELOAD"};
  }
  p.platform_data = pd.dump();
  return p;
}

// Runs `sql` bare: prepare, bind the standard parameters, step, read every column.
double RunBare(sqlite3* db, const std::string& sql, const detection::RunParams& params, size_t* rows) {
  auto start = Clock::now();
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "bare prepare failed: %s\n", sqlite3_errmsg(db));
    return -1;
  }
  for (int i = 1; i <= sqlite3_bind_parameter_count(st); ++i) {
    const char* name = sqlite3_bind_parameter_name(st, i);
    if (!name) continue;
    if (!std::strcmp(name, ":now_ms")) sqlite3_bind_int64(st, i, params.now_ms);
    if (!std::strcmp(name, ":last_run_ms")) sqlite3_bind_int64(st, i, params.last_run_ms);
    if (!std::strcmp(name, ":scan_id") && params.scan_id) sqlite3_bind_int64(st, i, *params.scan_id);
    if (!std::strcmp(name, ":prev_scan_id") && params.prev_scan_id)
      sqlite3_bind_int64(st, i, *params.prev_scan_id);
  }
  size_t n = 0;
  size_t bytes = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    ++n;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const unsigned char* t = sqlite3_column_text(st, c);
      if (t) bytes += static_cast<size_t>(sqlite3_column_bytes(st, c));
    }
  }
  sqlite3_finalize(st);
  *rows = n;
  if (bytes == SIZE_MAX) std::fprintf(stderr, "?");  // keeps the reads
  return Ms(Clock::now() - start);
}

// An exec event of a busy build host: compilers, shells, git, coreutils.
models::ProcessEvent MakeExecEvent(int i) {
  static const char* kinds[][3] = {
      {"cc1plus", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus",
       "cc1plus -quiet -I include src/main.cc -O2 -o /tmp/ccX.s"},
      {"sh", "/usr/bin/dash", "sh -c cd /srv/build && make -j2 all"},
      {"git", "/usr/bin/git", "git status --porcelain --untracked-files=no"},
      {"ls", "/usr/bin/ls", "ls -la /var/lib/app"},
      {"python3", "/usr/bin/python3.11", "/usr/bin/python3 -m pip list --format json"},
      {"grep", "/usr/bin/grep", "grep -rn TODO src/"},
      {"true", "/usr/bin/true", "true"},
      {"curl", "/usr/bin/curl", "curl -fsS https://example.org/health"},
  };
  const auto& k = kinds[i % 8];
  models::ProcessEvent e;
  e.event_time_ms = 1'800'000'050'000 + i;
  e.event_type = "exec";
  e.pid = 200'000 + i;
  e.ppid = 1000 + i % 97;
  e.name = k[0];
  e.exe_path = k[1];
  e.command_line = Words(k[2]);
  e.user_id = i % 3 == 0 ? 0 : 1000;
  e.user_name = i % 3 == 0 ? "root" : "builder";
  e.start_time_ms = e.event_time_ms;
  e.cwd = "/srv/build";
  e.login_uid = 1000;
  e.effective_uid = e.user_id;
  e.effective_gid = e.user_id;
  e.cred_change = false;
  e.parent_exe_path = "/usr/bin/make";
  e.parent_name = "make";
  e.parent_command_line = std::vector<std::string>{"make", "-j2"};
  e.parent_start_time_ms = 1'800'000'000'000;
  return e;
}

// The exec rules of `rules`.
std::vector<sentinel::detection::Rule> ExecRules(const std::vector<sentinel::detection::Rule>& rules) {
  std::vector<sentinel::detection::Rule> out;
  for (const auto& r : rules)
    if (r.on == sentinel::detection::RuleTrigger::kExec) out.push_back(r);
  return out;
}

// One pass of the real-time path over events (first_id, first_id + execs]:
// batches of `batch` loaded into the worker, every rule over each (after the
// Sigma prefilter, as the agent does). Wall ms
// (the worker answers synchronously, so this is the agent's and the
// worker's CPU on an idle machine); findings counted into *findings.
double ExecBatchRound(sentinel::detection::QueryWorker& worker,
                      const std::vector<sentinel::detection::Rule>& rules,
                      const sentinel::detection::RunParams& params, int64_t first_id, int execs, int batch,
                      size_t* findings) {
  const sentinel::detection::RunLimits limits;
  auto start = Clock::now();
  *findings = 0;
  for (int64_t from = first_id; from < first_id + execs; from += batch) {
    const int64_t to = std::min<int64_t>(from + batch, first_id + execs);
    auto n = worker.LoadExecBatch(from, to, params.scan_id, limits.guard.timeout_ms);
    if (!n.ok()) {
      std::fprintf(stderr, "batch: %s\n", n.status().message().c_str());
      return -1;
    }
    // As the agent's real-time detector: the Sigma prefilter of every rule
    // in one request (decision 70) ...
    auto candidates = worker.SigmaCandidates(rules, limits.guard.timeout_ms);
    if (!candidates.ok()) {
      std::fprintf(stderr, "sigma filter: %s\n", candidates.status().message().c_str());
      return -1;
    }
    std::vector<const sentinel::detection::Rule*> to_run;
    for (std::size_t i = 0; i < rules.size(); ++i) {
      if ((*candidates)[i]) to_run.push_back(&rules[i]);
    }
    // ... and the rules left in one request.
    auto results = worker.RunRules(to_run, params, limits);
    for (std::size_t k = 0; k < to_run.size(); ++k) {
      if (!results[k].ok()) {
        std::fprintf(stderr, "%s: %s\n", to_run[k]->id.c_str(), results[k].status().message().c_str());
        return -1;
      }
      *findings += results[k]->rows.size();
    }
  }
  return Ms(Clock::now() - start);
}

// Every rule of a scan cycle through `worker`, as the agent's rule scheduler
// runs them: the Sigma prefilter of all rules in one request, then each rule
// it did not rule out (decision 70). False (and a message) on a failure.
bool RunCycleRules(sentinel::detection::QueryWorker& worker,
                   const std::vector<sentinel::detection::Rule>& rules,
                   const sentinel::detection::RunParams& params,
                   const sentinel::detection::RunLimits& limits) {
  auto candidates = worker.SigmaCandidates(rules, limits.guard.timeout_ms);
  if (!candidates.ok()) {
    std::fprintf(stderr, "sigma filter: %s\n", candidates.status().message().c_str());
    return false;
  }
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (!(*candidates)[i]) continue;
    if (auto res = worker.RunRule(rules[i], params, limits); !res.ok()) {
      std::fprintf(stderr, "%s: %s\n", rules[i].id.c_str(), res.status().message().c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Re-executed as the query worker of the "worker" contender (query_worker.h).
  if (auto worker = detection::RunQueryWorkerIfRequested(argc, argv)) return *worker;
  int procs = 10'000, runs = 7;
  bool json_out = false;
  std::string keep_db;    // --db PATH: build the store there and keep it
  std::string extra_dir;  // --rules DIR: more rules (e.g. translated Sigma) beside the built-ins
  int execs = 4000, batch = 400;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--procs" && i + 1 < argc) {
      procs = std::atoi(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--db" && i + 1 < argc) {
      keep_db = argv[++i];
    } else if (a == "--rules" && i + 1 < argc) {
      extra_dir = argv[++i];
    } else if (a == "--execs" && i + 1 < argc) {
      execs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--json") {
      json_out = true;
    } else {
      std::fprintf(
          stderr,
          "usage: rules_bench [--procs N] [--runs R] [--db PATH] [--rules DIR] [--execs N] [--batch B] "
          "[--json]\n");
      return 2;
    }
  }
  testing::TempDir dir;
  const std::string path = keep_db.empty() ? dir.File("events.db") : keep_db;
  {
    auto store = storage::EventStore::Open({path, storage::OpenMode::kReadWrite, 5000});
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().message().c_str());
      return 1;
    }
    for (int scan = 0; scan < 2; ++scan) {
      models::ScanRecord s;
      s.started_at_ms = 1'800'000'000'000 + scan * 30'000;
      s.completed_at_ms = s.started_at_ms + 100;
      for (int i = 0; i < procs; ++i) {
        // The second scan changes as a host does in 30 s: 5% of the
        // processes with new state values (cpu), 1% replaced by new ones.
        if (scan == 1 && i % 100 == 7) {
          s.processes.push_back(MakeProcess(procs + i));
          continue;
        }
        s.processes.push_back(MakeProcess(i));
        if (scan == 1 && i % 20 == 0) s.processes.back().cpu_percent = 3.5;
      }
      if (auto st = (*store)->WriteScan(s); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.status().message().c_str());
        return 1;
      }
    }
    std::vector<models::ProcessEvent> events;
    for (int i = 0; i < execs; ++i) events.push_back(MakeExecEvent(i));
    if (auto st = (*store)->WriteEvents(events); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.status().message().c_str());
      return 1;
    }
  }
  auto rules = detection::BuiltinRules();
  if (!rules.ok()) {
    std::fprintf(stderr, "%s\n", rules.status().message().c_str());
    return 1;
  }
  std::vector<detection::Rule> extra;
  if (!extra_dir.empty()) {
    detection::RuleSet set = detection::LoadRuleSet(false, {extra_dir});
    for (const auto& p : set.problems) std::fprintf(stderr, "skipped: %s\n", p.status.message().c_str());
    extra = std::move(set.rules);
  }
  auto guarded =
      storage::OpenStore(storage::DatabaseKind::kEvents, {path, storage::OpenMode::kReadOnly, 5000});
  sqlite3* bare = nullptr;
  if (!guarded.ok() || sqlite3_open_v2(path.c_str(), &bare, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "cannot open the store\n");
    return 1;
  }
  detection::RunParams params;
  params.now_ms = 1'800'000'060'000;
  (void)detection::FillScanIds(**guarded, &params);
  // The per-cycle snapshot of the latest scan (what the agent does once per
  // cycle and worker), timed; the bare side gets the same table.
  std::vector<double> snapshot_ms;
  for (int run = 0; run < std::max(1, runs); ++run) {
    auto start = Clock::now();
    if (Status s = detection::PrepareRuleSnapshot(**guarded, params.scan_id); !s.ok()) {
      std::fprintf(stderr, "snapshot: %s\n", s.message().c_str());
      return 1;
    }
    snapshot_ms.push_back(Ms(Clock::now() - start));
  }
  const std::string bare_snapshot =
      "PRAGMA temp_store=MEMORY; PRAGMA temp.cache_size=-65536; CREATE TEMP TABLE processes AS SELECT * FROM "
      "main.process_snapshots WHERE scan_id = " +
      std::to_string(params.scan_id.value_or(-1)) +
      "; CREATE INDEX temp.processes_pid ON processes(pid); CREATE INDEX temp.processes_ppid ON "
      "processes(ppid);" +
      // exec rules read the scan's processes as exec_events, as the sandboxed run does.
      std::string(detection::ExecEventsFromSnapshotSql());

  if (sqlite3_exec(bare, bare_snapshot.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "bare snapshot: %s\n", sqlite3_errmsg(bare));
    return 1;
  }
  std::vector<std::vector<double>> sandbox_ms(rules->size()), bare_ms(rules->size()),
      worker_ms(rules->size());
  std::vector<double> total_sandbox, total_bare, worker_start, total_worker;
  std::vector<size_t> findings(rules->size()), worker_findings(rules->size());
  // The worker as the rule scheduler sets it up for a cycle: the store
  // read-only, the frozen snapshot of the scan :scan_id names.
  const detection::RunLimits limits;
  detection::WorkerSetup setup;
  setup.database_path = path;
  setup.busy_timeout_ms = 5000;
  setup.rule_snapshot = true;
  setup.scan_id = params.scan_id;
  setup.start_timeout_ms = limits.guard.timeout_ms + setup.busy_timeout_ms;
  // One worker round: start (timed, snapshot included), every rule through
  // it (timed), then the worker is killed and reaped (untimed) so it is gone
  // before the in-process contenders run.
  auto worker_round = [&](int run) {
    auto start = Clock::now();
    auto worker = detection::QueryWorker::Start(setup);
    const double start_ms = Ms(Clock::now() - start);
    if (!worker.ok()) {
      std::fprintf(stderr, "worker start: %s\n", worker.status().message().c_str());
      return false;
    }
    double tw = 0;
    for (size_t r = 0; r < rules->size(); ++r) {
      auto t0 = Clock::now();
      auto res = (*worker)->RunRule((*rules)[r], params, limits);
      const double ms = Ms(Clock::now() - t0);
      if (!res.ok()) {
        std::fprintf(stderr, "worker %s: %s\n", (*rules)[r].id.c_str(), res.status().message().c_str());
        return false;
      }
      worker_findings[r] = res->rows.size();
      if (run >= 0) worker_ms[r].push_back(ms);
      tw += ms;
    }
    if (run >= 0) {
      worker_start.push_back(start_ms);
      total_worker.push_back(tw);
    }
    return true;
  };
  // One untimed warm-up round fills the page cache and SQLite's caches.
  for (int run = -1; run < runs; ++run) {
    double ts = 0, tb = 0;
    // The worker round goes first in every other run.
    const bool worker_first = run % 2 != 0;
    if (worker_first && !worker_round(run)) return 1;
    for (size_t r = 0; r < rules->size(); ++r) {
      const auto& rule = (*rules)[r];
      size_t rows = 0;
      // Alternate the order so neither side profits from going second.
      auto sandboxed = [&] {
        auto start = Clock::now();
        auto res = detection::RunRule(**guarded, rule, params, detection::RunLimits{});
        double ms = Ms(Clock::now() - start);
        if (!res.ok()) {
          std::fprintf(stderr, "%s: %s\n", rule.id.c_str(), res.status().message().c_str());
          return -1.0;
        }
        findings[r] = res->rows.size();
        return ms;
      };
      double s_ms, b_ms;
      if ((run + static_cast<int>(r)) % 2 == 0) {
        s_ms = sandboxed();
        b_ms = RunBare(bare, rule.query, params, &rows);
      } else {
        b_ms = RunBare(bare, rule.query, params, &rows);
        s_ms = sandboxed();
      }
      if (s_ms < 0 || b_ms < 0) return 1;
      if (run >= 0) {
        sandbox_ms[r].push_back(s_ms);
        bare_ms[r].push_back(b_ms);
      }
      ts += s_ms;
      tb += b_ms;
    }
    if (run >= 0) {
      total_sandbox.push_back(ts);
      total_bare.push_back(tb);
    }
    if (!worker_first && !worker_round(run)) return 1;
  }
  sqlite3_close(bare);
  // Same snapshot, same parameters: the worker must find what RunRule finds.
  for (size_t r = 0; r < rules->size(); ++r) {
    if (worker_findings[r] != findings[r]) {
      std::fprintf(stderr, "%s: %zu findings in the worker, %zu in-process\n", (*rules)[r].id.c_str(),
                   worker_findings[r], findings[r]);
      return 1;
    }
  }

  // The same scan with the extra rules too (their exec rules run over the
  // scan's processes on every cycle), and the real-time path.
  std::vector<detection::Rule> all = *rules;
  all.insert(all.end(), extra.begin(), extra.end());
  std::vector<double> total_all_scan, exec_builtin_ms, exec_all_ms, steady_builtin_ms, steady_all_ms;
  detection::WorkerSetup steady_setup = setup;
  steady_setup.exec_since_scan = params.prev_scan_id;
  int64_t steady_changed = 0;
  {
    if (Status s = detection::PrepareRuleSnapshot(**guarded, params.scan_id, params.prev_scan_id.value_or(0));
        !s.ok()) {
      std::fprintf(stderr, "steady snapshot: %s\n", s.message().c_str());
      return 1;
    }
    steady_changed = (*guarded)->QueryInt("SELECT count(*) FROM temp.exec_events")->value_or(-1);
    if (Status s = detection::PrepareRuleSnapshot(**guarded, params.scan_id); !s.ok()) return 1;
  }
  size_t exec_builtin_findings = 0, exec_all_findings = 0;
  {
    auto worker = detection::QueryWorker::Start(setup);
    if (!worker.ok()) {
      std::fprintf(stderr, "worker start: %s\n", worker.status().message().c_str());
      return 1;
    }
    const auto builtin_exec = ExecRules(*rules), all_exec = ExecRules(all);
    for (int run = -1; run < runs; ++run) {
      if (!extra.empty()) {
        // A fresh worker, as a scan cycle has: its exec_events hold the
        // scan's processes (the batches below replace them).
        auto scan_worker = detection::QueryWorker::Start(setup);
        if (!scan_worker.ok()) {
          std::fprintf(stderr, "worker start: %s\n", scan_worker.status().message().c_str());
          return 1;
        }
        auto t0 = Clock::now();
        if (!RunCycleRules(**scan_worker, all, params, limits)) return 1;
        if (run >= 0) total_all_scan.push_back(Ms(Clock::now() - t0));
      }
      {
        // Steady cycles as the agent runs them (decision 71): the exec
        // rules judge only the processes changed since the previous scan;
        // worker start and snapshot included, built-ins alone and all.
        for (int set = 0; set < 2; ++set) {
          const auto t1 = Clock::now();
          auto steady_worker = detection::QueryWorker::Start(steady_setup);
          if (!steady_worker.ok()) {
            std::fprintf(stderr, "worker start: %s\n", steady_worker.status().message().c_str());
            return 1;
          }
          if (set == 1 && extra.empty()) break;
          if (!RunCycleRules(**steady_worker, set == 0 ? *rules : all, params, limits)) return 1;
          if (run >= 0) (set == 0 ? steady_builtin_ms : steady_all_ms).push_back(Ms(Clock::now() - t1));
        }
      }
      const double b =
          ExecBatchRound(**worker, builtin_exec, params, 0, execs, batch, &exec_builtin_findings);
      const double a =
          extra.empty() ? 0 : ExecBatchRound(**worker, all_exec, params, 0, execs, batch, &exec_all_findings);
      if (b < 0 || a < 0) return 1;
      if (run >= 0) {
        exec_builtin_ms.push_back(b);
        exec_all_ms.push_back(a);
      }
    }
  }
  const double us_builtin = Median(exec_builtin_ms) * 1000.0 / execs;
  const double us_all = Median(exec_all_ms) * 1000.0 / execs;

  nlohmann::json j;
  j["procs"] = procs;
  j["extra_rules"] = extra.size();
  j["exec_rules_builtin"] = ExecRules(*rules).size();
  j["exec_rules_all"] = ExecRules(all).size();
  j["execs"] = execs;
  j["batch"] = batch;
  j["exec_us_per_exec_builtin"] = us_builtin;
  j["exec_findings_builtin"] = exec_builtin_findings;
  j["steady_changed_processes"] = steady_changed;
  j["steady_cycle_builtin_ms"] = Median(steady_builtin_ms);
  if (!extra.empty()) {
    j["steady_cycle_all_ms"] = Median(steady_all_ms);
    j["scan_all_rules_worker_ms"] = Median(total_all_scan);
    j["exec_us_per_exec_all"] = us_all;
    j["exec_findings_all"] = exec_all_findings;
  }
  j["runs"] = runs;
  j["rules"] = rules->size();
  j["snapshot_ms"] = Median(snapshot_ms);
  j["total_sandbox_ms"] = Median(total_sandbox);
  j["total_bare_ms"] = Median(total_bare);
  j["sandbox_over_bare"] = Median(total_sandbox) / Median(total_bare);
  j["worker_start_ms"] = Median(worker_start);
  j["total_worker_ms"] = Median(total_worker);
  j["worker_over_bare"] = Median(total_worker) / Median(total_bare);
  j["worker_cycle_ms"] = Median(worker_start) + Median(total_worker);
  if (json_out) {
    for (size_t r = 0; r < rules->size(); ++r) {
      j["per_rule"][(*rules)[r].id] = {{"sandbox_ms", Median(sandbox_ms[r])},
                                       {"bare_ms", Median(bare_ms[r])},
                                       {"worker_ms", Median(worker_ms[r])},
                                       {"findings", findings[r]}};
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%-40s %12s %10s %10s %9s\n", "rule", "sandbox ms", "bare ms", "worker ms", "findings");
  for (size_t r = 0; r < rules->size(); ++r) {
    std::printf("%-40s %12.2f %10.2f %10.2f %9zu\n", (*rules)[r].id.c_str(), Median(sandbox_ms[r]),
                Median(bare_ms[r]), Median(worker_ms[r]), findings[r]);
  }
  std::printf(
      "\n%zu rules over %d processes (median of %d runs): sandbox %.1f ms, bare %.1f ms, ratio %.3f\n",
      rules->size(), procs, runs, Median(total_sandbox), Median(total_bare),
      Median(total_sandbox) / Median(total_bare));
  std::printf("snapshot of the latest scan (once per cycle and worker): %.1f ms; cycle total %.1f ms\n",
              Median(snapshot_ms), Median(snapshot_ms) + Median(total_sandbox));
  std::printf(
      "worker (one per cycle, as the agent runs rules): start incl. snapshot %.1f ms, rules %.1f ms, "
      "worker/bare %.3f; cycle total %.1f ms\n",
      Median(worker_start), Median(total_worker), Median(total_worker) / Median(total_bare),
      Median(worker_start) + Median(total_worker));
  if (!extra.empty()) {
    std::printf("scan with the %zu built-in + %zu extra rules (worker): %.1f ms (built-ins alone %.1f ms)\n",
                rules->size(), extra.size(), Median(total_all_scan), Median(total_worker));
  }
  std::printf(
      "steady scan cycle (exec rules over the %lld of %d processes changed since the previous scan; worker "
      "start and snapshot included): built-ins %.1f ms",
      static_cast<long long>(steady_changed), procs, Median(steady_builtin_ms));
  if (!extra.empty()) std::printf(", with the extra rules %.1f ms", Median(steady_all_ms));
  std::printf("\n");
  std::printf("real-time path, %d execs in batches of %d (worker): built-in exec rules (%zu) %.2f us/exec",
              execs, batch, ExecRules(*rules).size(), us_builtin);
  if (!extra.empty())
    std::printf("; with the extra rules (%zu exec rules) %.2f us/exec, ratio %.2f", ExecRules(all).size(),
                us_all, us_all / us_builtin);
  std::printf("\n");
  return 0;
}
