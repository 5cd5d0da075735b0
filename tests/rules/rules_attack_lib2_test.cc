// Live tests of proc-sustained-cpu-unknown-binary (an `on: scan` rule over
// consecutive scans): procmond runs as a daemon scanning every second into a
// fresh store while the test's probe burns CPU from a scratch directory
// under an innocent name and command line (RULE_PROBE_SPIN, rule_probe.cc).
// The positive test needs root (see rule_probe.cc).
#include <memory>
#include <string>
#include <vector>

#include "sentinel/storage/sqlite.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

// Completed scans in `db` (0 when it cannot be read yet).
int64_t CompletedScans(const std::string& db) {
  auto store = storage::Database::Open(db, storage::OpenMode::kReadOnly);
  if (!store.ok()) return 0;
  auto n = (*store)->QueryInt("SELECT count(*) FROM scan_metadata WHERE status = 'completed'");
  return n.ok() ? n->value_or(0) : 0;
}

// Scans every second until `scans` scans completed,
// then stops procmond; returns the store ("" and a failure otherwise).
std::string ScanRepeatedly(const ScratchDir& work, int64_t scans) {
  const std::string db = work.File("cpu.db");
  ProcmondDaemon daemon(
      work.path(), db,
      {"SENTINELD_COLLECTION__INTERVAL_SECS=1", "SENTINELD_COLLECTION__REALTIME_EVENTS=false"},
      "procmond-cpu.err");
  if (!daemon.running() || !WaitUntil([&] { return CompletedScans(db) >= scans; }, 60s)) {
    ADD_FAILURE() << "procmond completed " << CompletedScans(db) << " of " << scans << " scans\n"
                  << daemon.Log();
    return "";
  }
  daemon.Stop();
  return db;
}

// The probe under an innocent name in the scratch directory: spinning on
// one thread (a core, at a raised priority) or idle.
std::unique_ptr<TestProcess> StartWorker(const ScratchDir& work, const std::string& name, bool spin) {
  const std::string bin = work.File("lib/" + name);
  CopyExecutable(ProbeBin(), bin);
  SpawnOptions options;
  if (spin) options.env.push_back("RULE_PROBE_SPIN=1");
  return TestProcess::Start(bin, {name, "--config", "worker.json"}, options);
}

// Four scans: the first sees the process new (no CPU figure), the next three
// each see at least 80 % of a core.
TEST_F(RuleLiveTest, ProcSustainedCpuUnknownBinary_Positive) {
  if (!IsRoot()) {
    GTEST_SKIP() << "needs root: the burner raises its priority to get a full core on a loaded machine "
                    "(each test process leads its own session, so its own scheduler autogroup)";
  }
  auto burner = StartWorker(work(), "dbus-sync", /*spin=*/true);
  ASSERT_NE(burner, nullptr);
  const std::string db = ScanRepeatedly(work(), 4);
  ASSERT_NE(db, "");
  auto r = Run("proc-sustained-cpu-unknown-binary", db);
  auto row = ExpectOneRow(r, burner->pid());
  EXPECT_EQ(row.value("hot_scans", 0), 3) << row.dump();
  EXPECT_GE(row.value("min_cpu_percent", 0.0), 80.0) << row.dump();
}

// The benign twin: the same unknown binary, idle, over the same scans (a
// burn from a packaged path cannot be staged without writing to /usr).
TEST_F(RuleLiveTest, ProcSustainedCpuUnknownBinary_Negative) {
  auto idle = StartWorker(work(), "dbus-sync", /*spin=*/false);
  ASSERT_NE(idle, nullptr);
  const std::string db = ScanRepeatedly(work(), 4);
  ASSERT_NE(db, "");
  ExpectNoRows(Run("proc-sustained-cpu-unknown-binary", db), {idle->pid()});
}

}  // namespace
}  // namespace sentinel::rules_test
