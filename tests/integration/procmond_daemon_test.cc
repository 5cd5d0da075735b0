// procmond in continuous mode (SPEC §5, §10): scans on its interval, stops
// cleanly on SIGTERM, and refuses a broken configuration on SIGHUP while it
// keeps running.
#include <signal.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using namespace std::chrono_literals;

int64_t CompletedScans(const std::string& db) {
  if (!testing::FileExists(db)) return 0;
  // The first scan creates the schema; until then there is no table to read.
  auto tables = QueryInt(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'scan_metadata'");
  if (!tables || *tables == 0) return 0;
  return QueryInt(db, "SELECT COUNT(*) FROM scan_metadata WHERE status = 'completed'").value_or(0);
}

TEST(ProcmondDaemon, ScansOnItsIntervalAndStopsOnSigterm) {
  Sandbox sb;
  const std::string db = sb.File("events.db");
  const std::string log = sb.File("procmond.log");
  Child procmond({ProcmondBin(), "--interval", "1", "--database", db}, sb.ProcmondEnv(), "", log,
                 /*new_group=*/true);
  ASSERT_GT(procmond.pid(), 0);
  ASSERT_TRUE(WaitFor([&] { return !procmond.Running() || CompletedScans(db) >= 2; }, 60s))
      << "fewer than 2 scans in 20 s; log:\n"
      << testing::ReadFile(log);
  ASSERT_TRUE(procmond.Running()) << "procmond exited early; log:\n" << testing::ReadFile(log);

  procmond.Signal(SIGTERM);
  auto code = procmond.Wait(30s);
  ASSERT_TRUE(code.has_value()) << "procmond did not stop within 10 s of SIGTERM";
  EXPECT_EQ(*code, 0) << testing::ReadFile(log);
  EXPECT_TRUE(Contains(testing::ReadFile(log), "procmond stopping")) << testing::ReadFile(log);

  EXPECT_GE(CompletedScans(db), 2);
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM scan_metadata WHERE status IS NOT 'completed'"), 0)
      << "a scan that was not completed is in the store";
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM scan_metadata WHERE completed_at_ms IS NULL"), 0);
  // Every completed scan recorded its processes, and the store is sound.
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM scan_metadata WHERE process_count <= 0"), 0);
  RunResult check = sb.Cli({"--database", db, "--json", "query", "SELECT COUNT(*) AS c FROM processes"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_FALSE(Contains(check.out, "\"c\":0")) << check.out;
}

TEST(ProcmondDaemon, SighupWithBrokenConfigKeepsRunning) {
  Sandbox sb;
  const std::string db = sb.File("events.db");
  const std::string log = sb.File("procmond.log");
  const std::string cfg = sb.File("config.yaml");
  testing::WriteFile(cfg, "collection:\n  interval_secs: 1\n");
  Child procmond({ProcmondBin(), "--config", cfg, "--database", db}, sb.ProcmondEnv(), "", log,
                 /*new_group=*/true);
  ASSERT_GT(procmond.pid(), 0);
  ASSERT_TRUE(WaitFor([&] { return !procmond.Running() || CompletedScans(db) >= 1; }, 60s))
      << "no scan in 20 s; log:\n"
      << testing::ReadFile(log);
  ASSERT_TRUE(procmond.Running()) << testing::ReadFile(log);

  testing::WriteFile(cfg, "collection:\n  interval_secs: [\n");
  procmond.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Contains(testing::ReadFile(log), "reload refused"); }, 30s))
      << "no refusal logged after SIGHUP; log:\n"
      << testing::ReadFile(log);
  const std::string text = testing::ReadFile(log);
  EXPECT_TRUE(Contains(text, cfg)) << "the refusal does not name the file:\n" << text;
  EXPECT_FALSE(Contains(text, "configuration reloaded")) << text;

  // Still alive and still scanning on the old configuration.
  const int64_t scans = CompletedScans(db);
  ASSERT_TRUE(WaitFor([&] { return !procmond.Running() || CompletedScans(db) > scans; }, 30s))
      << "no scan after the refused reload; log:\n"
      << testing::ReadFile(log);
  ASSERT_TRUE(procmond.Running()) << "procmond died after SIGHUP; log:\n" << testing::ReadFile(log);

  procmond.Signal(SIGTERM);
  auto code = procmond.Wait(30s);
  ASSERT_TRUE(code.has_value()) << "procmond did not stop within 10 s of SIGTERM";
  EXPECT_EQ(*code, 0) << testing::ReadFile(log);
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM scan_metadata WHERE status IS NOT 'completed'"), 0);
}

// A SIGHUP that changes restart-only keys was logged as "configuration reloaded" while procmond
// went on with the old values (issue 14, item 8). Now it warns naming the keys, keeps writing to
// the running store and records what is pending in the audit ledger.
TEST(ProcmondDaemon, SighupKeepsRestartOnlyKeysAndSaysSo) {
  Sandbox sb;
  const std::string db = sb.File("events.db");
  const std::string other_db = sb.File("other.db");
  const std::string audit = sb.File("audit.db");
  const std::string log = sb.File("procmond.log");
  const std::string cfg = sb.File("config.yaml");
  testing::WriteFile(cfg, "database: {path: " + db + "}\ncollection: {interval_secs: 1}\n");
  Child procmond({ProcmondBin(), "--config", cfg}, sb.ProcmondEnv({"SENTINELD_TELEMETRY__LOG_FORMAT=text"}),
                 "", log, /*new_group=*/true);
  ASSERT_GT(procmond.pid(), 0);
  ASSERT_TRUE(WaitFor([&] { return !procmond.Running() || CompletedScans(db) >= 1; }, 60s))
      << "no scan in 60 s; log:\n"
      << testing::ReadFile(log);
  ASSERT_TRUE(procmond.Running()) << testing::ReadFile(log);

  testing::WriteFile(
      cfg, "database: {path: " + other_db + "}\ncollection: {interval_secs: 1, scan_source: proc}\n");
  procmond.Signal(SIGHUP);
  const std::string warning =
      "database.path, collection.scan_source changed, takes effect at restart; running value kept";
  ASSERT_TRUE(WaitFor([&] { return Contains(testing::ReadFile(log), warning); }, 30s))
      << "no restart-only warning after SIGHUP; log:\n"
      << testing::ReadFile(log);
  EXPECT_TRUE(Contains(testing::ReadFile(log), "configuration reloaded except restart-only keys"))
      << testing::ReadFile(log);

  // The running store goes on receiving scans; the new path is not touched.
  const int64_t scans = CompletedScans(db);
  ASSERT_TRUE(WaitFor([&] { return !procmond.Running() || CompletedScans(db) >= scans + 2; }, 30s))
      << "no scan into the running store after the reload; log:\n"
      << testing::ReadFile(log);
  ASSERT_TRUE(procmond.Running()) << testing::ReadFile(log);
  EXPECT_FALSE(testing::FileExists(other_db)) << "procmond opened the new database.path without a restart";

  // The ledger says the reload left two keys for the restart.
  EXPECT_TRUE(WaitFor(
      [&] {
        return TryQueryInt(audit,
                           "SELECT count(*) FROM audit_ledger WHERE action = 'config_loaded' AND "
                           "json_extract(event_data, '$.restart_pending') = "
                           "'[\"database.path\",\"collection.scan_source\"]'")
                   .value_or(0) == 1;
      },
      30s))
      << "no config_loaded entry naming the pending keys";

  procmond.Signal(SIGTERM);
  auto code = procmond.Wait(30s);
  ASSERT_TRUE(code.has_value()) << "procmond did not stop within 30 s of SIGTERM";
  EXPECT_EQ(*code, 0) << testing::ReadFile(log);
}

}  // namespace
}  // namespace sentinel::itest
