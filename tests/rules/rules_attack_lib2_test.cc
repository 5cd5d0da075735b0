// Live tests of proc-sustained-cpu-unknown-binary (an `on: scan` rule over
// consecutive scans): procmond runs as a daemon scanning every second into a
// fresh store while the test's probe burns CPU from a scratch directory
// under an innocent name and command line (RULE_PROBE_SPIN, rule_probe.cc).
// Needs root (see rule_probe.cc).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sentinel/storage/sqlite.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

constexpr const char* kNeedsRoot =
    "needs root: the burner raises its priority to get a full core on a loaded machine (each test "
    "process leads its own session, so its own scheduler autogroup)";

// One integer from `db` (0 when it cannot be read yet).
int64_t Count(const std::string& db, const std::string& sql) {
  auto store = storage::Database::Open(db, storage::OpenMode::kReadOnly);
  if (!store.ok()) return 0;
  auto n = (*store)->QueryInt(sql);
  return n.ok() ? n->value_or(0) : 0;
}

// Completed scans in `db` (0 when it cannot be read yet).
int64_t CompletedScans(const std::string& db) {
  return Count(db, "SELECT count(*) FROM scan_metadata WHERE status = 'completed'");
}

// procmond scanning every second into `db` (no real-time events).
class ScanningEverySecond {
 public:
  ScanningEverySecond(const ScratchDir& work, std::string db)
      : db_(std::move(db)),
        daemon_(work.path(), db_,
                {"SENTINELD_COLLECTION__INTERVAL_SECS=1", "SENTINELD_COLLECTION__REALTIME_EVENTS=false"},
                "procmond-cpu.err") {}
  // Waits until `more` scans completed after this call.
  bool WaitForMoreScans(int64_t more) {
    const int64_t target = CompletedScans(db_) + more;
    if (daemon_.running() && WaitUntil([&] { return CompletedScans(db_) >= target; }, 60s)) return true;
    ADD_FAILURE() << "procmond completed " << CompletedScans(db_) << " of " << target << " scans\n"
                  << daemon_.Log();
    return false;
  }
  void Stop() { daemon_.Stop(); }

 private:
  std::string db_;
  ProcmondDaemon daemon_;
};

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
  if (!IsRoot()) GTEST_SKIP() << kNeedsRoot;
  const std::string db = work().File("cpu.db");
  auto burner = StartWorker(work(), "dbus-sync", /*spin=*/true);
  ASSERT_NE(burner, nullptr);
  {
    ScanningEverySecond procmond(work(), db);
    ASSERT_TRUE(procmond.WaitForMoreScans(4));
  }
  auto row = ExpectOneRow(Run("proc-sustained-cpu-unknown-binary", db), burner->pid());
  EXPECT_EQ(row.value("hot_scans", 0), 3) << row.dump();
  EXPECT_GE(row.value("min_cpu_percent", 0.0), 80.0) << row.dump();
}

// The benign twins: the same unknown binary idle over the same scans, and a
// burst seen hot by two scans at most (it starts after the first scans and
// procmond stops two scans later). A burn from a packaged path cannot be
// staged without writing to /usr.
TEST_F(RuleLiveTest, ProcSustainedCpuUnknownBinary_Negative) {
  if (!IsRoot()) GTEST_SKIP() << kNeedsRoot;
  auto idle = StartWorker(work(), "dbus-sync", /*spin=*/false);
  ASSERT_NE(idle, nullptr);
  const std::string db = work().File("cpu.db");
  ScanningEverySecond procmond(work(), db);
  ASSERT_TRUE(procmond.WaitForMoreScans(3));
  auto burst = StartWorker(work(), "dbus-sync-2", /*spin=*/true);
  ASSERT_NE(burst, nullptr);
  ASSERT_TRUE(procmond.WaitForMoreScans(2));
  procmond.Stop();
  // The burst did burn: only its duration keeps it out.
  EXPECT_GE(Count(db, "SELECT count(*) FROM process_snapshots WHERE cpu_percent >= 80 AND pid = " +
                          std::to_string(burst->pid())),
            1);
  ExpectNoRows(Run("proc-sustained-cpu-unknown-binary", db), {idle->pid(), burst->pid()});
}

}  // namespace
}  // namespace sentinel::rules_test
