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

}  // namespace
}  // namespace sentinel::itest
