// audit_bench: what does the audit ledger cost, and how fast is verify?
//
// In one run, alternating where it matters so drift hits every contender:
//   append   AuditLedger::AppendRaw, one entry per transaction (WAL,
//            synchronous=NORMAL, as OpenStore sets it): µs per entry
//   batch    AuditLedger::AppendBatch of --batch entries: µs per entry
//   verify   VerifyLedger over a ledger of --entries entries (default
//            1,000,000; unsigned): seconds, entries/s
//   scan     the same SELECT verify runs, stepping every column but hashing
//            nothing: the SQLite floor under verify
//   signed   verify of a signed ledger of --signed-entries entries:
//            µs per entry, extrapolated to --entries
//   blake3   this BLAKE3 over a 64 MiB buffer in memory, and the peer
//            `b3sum --num-threads 1` over the same bytes from a page-cached
//            file (process start included): MB/s
// Reports medians over --runs runs.
//
// Usage: audit_bench [--entries N] [--runs R] [--appends M] [--batch B]
//                    [--signed-entries K] [--b3sum PATH] [--json FILE]
// Not a test: no assertion on time. Run it by hand; docs/benchmarks.md.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "sentinel/audit/ledger.h"
#include "sentinel/audit/verify.h"
#include "sentinel/crypto/blake3.h"
#include "sentinel/storage/store.h"

extern char** environ;

namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace sentinel;
using bench::Median;
using bench::Ms;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// A realistic entry: what an agent records when an alert is created.
audit::AuditEvent Event(int64_t i) {
  nlohmann::json data = {{"alert_id", i},
                         {"rule_id", "proc-deleted-executable"},
                         {"severity", "high"},
                         {"pid", 1000 + i % 30000},
                         {"exe_path", "/usr/bin/example (deleted)"}};
  return {"sentinelagent", "alert.created", data.dump()};
}

std::unique_ptr<audit::AuditLedger> OpenLedger(const std::string& path,
                                               std::shared_ptr<const audit::Signer> signer = nullptr) {
  audit::LedgerOptions o;
  o.path = path;
  o.signer = std::move(signer);
  auto l = audit::AuditLedger::Open(o);
  if (!l.ok()) Die("open " + path, l.status());
  return std::move(l).value();
}

// Appends n entries in batches of `batch`; returns the ms spent in
// AppendBatch (building the events is not timed).
double Fill(audit::AuditLedger& ledger, int64_t n, int batch, int64_t first = 0) {
  std::vector<audit::AuditEvent> events;
  SteadyClock::duration spent{};
  for (int64_t i = 0; i < n;) {
    events.clear();
    for (int k = 0; k < batch && i < n; ++k, ++i) events.push_back(Event(first + i));
    auto t0 = SteadyClock::now();
    auto r = ledger.AppendBatch(events);
    spent += SteadyClock::now() - t0;
    if (!r.ok()) Die("append batch", r.status());
  }
  return Ms(spent);
}

double ScanFloorMs(const std::string& path) {
  auto db = storage::OpenStore(storage::DatabaseKind::kAudit, {path, storage::OpenMode::kReadOnly, 5000});
  if (!db.ok()) Die("open " + path, db.status());
  auto st = (*db)->Prepare(
      "SELECT sequence, timestamp, actor, action, event_data, payload_hash, prev_hash, entry_hash, signature"
      " FROM audit_ledger ORDER BY sequence");
  if (!st.ok()) Die("prepare", st.status());
  auto t0 = SteadyClock::now();
  size_t bytes = 0;
  while (true) {
    auto row = st->Step();
    if (!row.ok()) Die("scan", row.status());
    if (!*row) break;
    bytes += static_cast<size_t>(st->ColumnInt(0) + st->ColumnInt(1));
    for (int c = 2; c < 9; ++c) bytes += st->ColumnTextView(c).size();
  }
  const double ms = Ms(SteadyClock::now() - t0);
  if (bytes == 0) std::fprintf(stderr, "empty scan\n");
  return ms;
}

double VerifyMs(const std::string& path, int64_t expect_entries) {
  auto t0 = SteadyClock::now();
  auto r = audit::VerifyLedgerFile(path);
  const double ms = Ms(SteadyClock::now() - t0);
  if (!r.ok()) Die("verify", r.status());
  if (!r->intact() || r->entries_verified != expect_entries) {
    std::fprintf(stderr, "verify: unexpected result: %s (%lld entries)\n", r->Summary().c_str(),
                 static_cast<long long>(r->entries_verified));
    std::exit(1);
  }
  return ms;
}

// Wall ms of `b3sum --num-threads 1 FILE`, or -1 when it cannot run.
double B3sumMs(const std::string& b3sum, const std::string& file) {
  std::vector<std::string> args{b3sum, "--num-threads", "1", "--no-names", file};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  auto t0 = SteadyClock::now();
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  const double ms = Ms(SteadyClock::now() - t0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t entries = 1'000'000, signed_entries = 20'000;
  int runs = 5, appends = 2000, batch = 1000;
  std::string b3sum = "/usr/bin/b3sum", json_out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--entries" && i + 1 < argc)
      entries = std::atoll(argv[++i]);
    else if (a == "--runs" && i + 1 < argc)
      runs = std::atoi(argv[++i]);
    else if (a == "--appends" && i + 1 < argc)
      appends = std::atoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc)
      batch = std::atoi(argv[++i]);
    else if (a == "--signed-entries" && i + 1 < argc)
      signed_entries = std::atoll(argv[++i]);
    else if (a == "--b3sum" && i + 1 < argc)
      b3sum = argv[++i];
    else if (a == "--json" && i + 1 < argc)
      json_out = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: %s [--entries N] [--runs R] [--appends M] [--batch B] [--signed-entries K]"
                   " [--b3sum PATH] [--json FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  if (entries < 1 || runs < 1 || appends < 1 || batch < 1 || signed_entries < 1) {
    std::fprintf(stderr, "all counts must be >= 1\n");
    return 2;
  }
  char tmpl[] = "/tmp/sentinel_audit_bench_XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl;

  // --- append costs ---
  std::vector<double> single_us, batch_us;
  for (int r = 0; r < runs; ++r) {
    {
      auto ledger = OpenLedger(dir + "/single" + std::to_string(r) + ".db");
      Fill(*ledger, 1000, 1000);  // not the first entries: a ledger in use
      std::vector<audit::AuditEvent> events;
      for (int i = 0; i < appends; ++i) events.push_back(Event(i));
      auto t0 = SteadyClock::now();
      for (const audit::AuditEvent& e : events) {
        auto res = ledger->AppendRaw(e.actor, e.action, e.event_data);
        if (!res.ok()) Die("append", res.status());
      }
      single_us.push_back(Ms(SteadyClock::now() - t0) * 1000.0 / appends);
    }
    {
      auto ledger = OpenLedger(dir + "/batch" + std::to_string(r) + ".db");
      Fill(*ledger, 1000, 1000);
      const int64_t n = std::max<int64_t>(int64_t{appends} * 10, batch);
      batch_us.push_back(Fill(*ledger, n, batch, 1000) * 1000.0 / static_cast<double>(n));
    }
  }

  // --- verify ---
  const std::string big = dir + "/big.db";
  std::fprintf(stderr, "building a ledger of %lld entries...\n", static_cast<long long>(entries));
  double build_ms;
  {
    auto ledger = OpenLedger(big);
    build_ms = Fill(*ledger, entries, 10000);
  }
  const double big_mb = static_cast<double>(std::filesystem::file_size(big)) / 1e6;
  std::vector<double> verify_ms, scan_ms;
  for (int r = 0; r < runs; ++r) {
    scan_ms.push_back(ScanFloorMs(big));
    verify_ms.push_back(VerifyMs(big, entries));
  }

  // --- signed ---
  const std::string signed_db = dir + "/signed.db";
  std::array<uint8_t, audit::kSeedLen> seed;
  seed.fill(0x33);
  std::shared_ptr<const audit::Signer> signer(audit::Signer::FromSeed(seed).value().release());
  std::vector<double> signed_verify_ms;
  double signed_build_ms;
  {
    auto ledger = OpenLedger(signed_db, signer);
    signed_build_ms = Fill(*ledger, signed_entries, 1000);
  }
  for (int r = 0; r < runs; ++r) signed_verify_ms.push_back(VerifyMs(signed_db, signed_entries));

  // --- BLAKE3 throughput, ours and b3sum's ---
  constexpr size_t kBuf = 64u << 20;
  std::vector<uint8_t> buf(kBuf);
  std::mt19937_64 rng(1);
  for (size_t i = 0; i < kBuf; i += 8) {
    const uint64_t v = rng();
    std::memcpy(buf.data() + i, &v, 8);
  }
  const std::string blob = dir + "/blob.bin";
  {
    std::ofstream f(blob, std::ios::binary);
    f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  }
  std::vector<double> ours_mbs, b3sum_mbs, small_ns;
  volatile uint8_t sink = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = SteadyClock::now();
    sink = sink + crypto::Blake3(buf)[0];
    ours_mbs.push_back(static_cast<double>(kBuf) / 1e6 / (Ms(SteadyClock::now() - t0) / 1000.0));
    const double b3 = B3sumMs(b3sum, blob);
    if (b3 > 0) b3sum_mbs.push_back(static_cast<double>(kBuf) / 1e6 / (b3 / 1000.0));
    // A ledger-sized input: ~130 bytes, as an entry preimage.
    t0 = SteadyClock::now();
    for (int i = 0; i < 200000; ++i)
      sink = sink + crypto::Blake3(std::span<const uint8_t>(buf.data() + i, 130))[0];
    small_ns.push_back(Ms(SteadyClock::now() - t0) * 1e6 / 200000);
  }
  std::filesystem::remove_all(dir);

  const double verify_s = Median(verify_ms) / 1000.0;
  const double signed_us = Median(signed_verify_ms) * 1000.0 / static_cast<double>(signed_entries);
  nlohmann::ordered_json j;
  j["runs"] = runs;
  j["append_single_us_per_entry"] = Median(single_us);
  j["append_batched_us_per_entry"] = Median(batch_us);
  j["batch_size"] = batch;
  j["build_entries"] = entries;
  j["build_s"] = build_ms / 1000.0;
  j["ledger_mb"] = big_mb;
  j["verify_s"] = verify_s;
  j["verify_entries_per_s"] = static_cast<double>(entries) / verify_s;
  j["scan_floor_s"] = Median(scan_ms) / 1000.0;
  j["verify_over_scan"] = Median(verify_ms) / Median(scan_ms);
  j["signed_entries"] = signed_entries;
  j["signed_append_batched_us_per_entry"] = signed_build_ms * 1000.0 / static_cast<double>(signed_entries);
  j["signed_verify_us_per_entry"] = signed_us;
  j["signed_verify_s_extrapolated_to_build_entries"] = signed_us * static_cast<double>(entries) / 1e6;
  j["blake3_mb_per_s"] = Median(ours_mbs);
  j["blake3_130_byte_input_ns"] = Median(small_ns);
  if (!b3sum_mbs.empty()) {
    j["b3sum_1_thread_mb_per_s"] = Median(b3sum_mbs);
  } else {
    j["b3sum_1_thread_mb_per_s"] = nullptr;
  }
  std::printf("%s\n", j.dump(2).c_str());
  if (!json_out.empty()) {
    FILE* f = std::fopen(json_out.c_str(), "w");
    if (f) {
      std::fprintf(f, "%s\n", j.dump(2).c_str());
      std::fclose(f);
    }
  }
  (void)sink;  // volatile: the hashing above is not optimised away
  return 0;
}
