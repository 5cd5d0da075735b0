// `sentinelcli export` (SPEC §9): formats, time filters, and failures that
// leave nothing behind.
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;

int64_t ProcessCount(Sandbox& sb) {
  RunResult r =
      sb.Cli({"--database", sb.Database(), "--json", "query", "SELECT COUNT(*) AS c FROM processes"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  return doc.is_array() && doc.size() == 1 ? doc[0]["c"].get<int64_t>() : -1;
}

// Files in the sandbox other than the ones a test expects to see; export
// writes through a temporary file that must never be left behind.
std::vector<std::string> Leftovers(const Sandbox& sb) {
  std::vector<std::string> odd;
  for (const auto& name : ListDir(sb.path())) {
    if (Contains(name, ".tmp")) odd.push_back(name);
  }
  return odd;
}

TEST(Export, ProcessesAsJsonLinesToAPrivateFile) {
  Sandbox sb;
  const std::string db = sb.Database();
  const std::string out = sb.File("procs.jsonl");
  RunResult r = sb.Cli({"--database", db, "export", "processes", "--format", "jsonl", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "") << "--output must keep stdout empty";
  EXPECT_TRUE(Contains(r.err, out)) << r.err;
  ASSERT_TRUE(testing::FileExists(out));

  const auto lines = SplitLines(testing::ReadFile(out));
  EXPECT_EQ(static_cast<int64_t>(lines.size()), ProcessCount(sb));
  bool saw_self = false;
  for (const auto& line : lines) {
    json row = json::parse(line, nullptr, false);
    ASSERT_TRUE(row.is_object()) << "not a JSON object: " << line.substr(0, 300);
    ASSERT_TRUE(row["pid"].is_number_integer()) << line.substr(0, 300);
    ASSERT_TRUE(row.contains("command_line")) << line.substr(0, 300);
    if (row["pid"] == getpid()) saw_self = true;
  }
  EXPECT_TRUE(saw_self) << "the test process itself is missing from the export";

  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0007, 0u) << "export is world-accessible: mode " << std::oct << (st.st_mode & 0777);
  EXPECT_EQ(st.st_mode & 0600, 0600u) << "owner cannot read/write: mode " << std::oct << (st.st_mode & 0777);
  EXPECT_TRUE(Leftovers(sb).empty()) << Leftovers(sb)[0];
}

TEST(Export, ScanMetadataAsCsvAndTimeFilters) {
  Sandbox sb;
  const std::string db = sb.Database();

  RunResult csv = sb.Cli({"--database", db, "export", "scan_metadata", "--format", "csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  const auto rows = SplitLines(csv.out);
  ASSERT_EQ(rows.size(), 2u) << csv.out;
  EXPECT_EQ(rows[0].rfind("scan_id,started_at_ms,completed_at_ms,", 0), 0u) << rows[0];
  EXPECT_TRUE(Contains(rows[0], ",status,")) << rows[0];
  EXPECT_EQ(rows[1].rfind("1,", 0), 0u) << rows[1];
  EXPECT_TRUE(Contains(rows[1], ",completed,")) << rows[1];

  RunResult recent = sb.Cli({"--database", db, "export", "scan_metadata", "--since", "1h"});
  ASSERT_EQ(recent.exit_code, 0) << recent.err;
  const auto lines = SplitLines(recent.out);
  ASSERT_EQ(lines.size(), 1u) << recent.out;
  json scan = json::parse(lines[0], nullptr, false);
  EXPECT_EQ(scan["scan_id"], 1) << lines[0];
  EXPECT_EQ(scan["status"], "completed") << lines[0];

  RunResult procs = sb.Cli({"--database", db, "export", "processes", "--since", "1h", "--format", "json"});
  ASSERT_EQ(procs.exit_code, 0) << procs.err;
  json doc = json::parse(procs.out, nullptr, false);
  ASSERT_TRUE(doc.is_array());
  EXPECT_EQ(static_cast<int64_t>(doc.size()), ProcessCount(sb));

  for (const char* table : {"scan_metadata", "processes"}) {
    RunResult old = sb.Cli({"--database", db, "export", table, "--until", "2000-01-01"});
    ASSERT_EQ(old.exit_code, 0) << table << ": " << old.err;
    EXPECT_EQ(old.out, "") << table;
    RunResult future =
        sb.Cli({"--database", db, "export", table, "--since", "2999-01-01T00:00:00Z", "--format", "json"});
    ASSERT_EQ(future.exit_code, 0) << table << ": " << future.err;
    EXPECT_EQ(json::parse(future.out, nullptr, false), json::array()) << table << ": " << future.out;
  }
}

TEST(Export, BadArgumentsAndUnwritableOutputCreateNothing) {
  Sandbox sb;
  const std::string db = sb.Database();
  const std::string out = sb.File("x.jsonl");
  RunResult table = sb.Cli({"--database", db, "export", "nosuchtable", "--output", out});
  EXPECT_EQ(table.exit_code, 2);
  EXPECT_TRUE(Contains(table.err, "nosuchtable")) << table.err;
  EXPECT_TRUE(Contains(table.err, "processes")) << "should list the known tables: " << table.err;
  EXPECT_EQ(table.out, "");
  EXPECT_FALSE(testing::FileExists(out));

  RunResult since =
      sb.Cli({"--database", db, "export", "processes", "--since", "yesterday", "--output", out});
  EXPECT_EQ(since.exit_code, 2);
  EXPECT_TRUE(Contains(since.err, "--since")) << since.err;
  EXPECT_TRUE(Contains(since.err, "yesterday")) << since.err;
  EXPECT_EQ(since.out, "");
  EXPECT_FALSE(testing::FileExists(out));

  RunResult bad_format =
      sb.Cli({"--database", db, "export", "processes", "--format", "xml", "--output", out});
  EXPECT_EQ(bad_format.exit_code, 2);
  EXPECT_TRUE(Contains(bad_format.err, "xml")) << bad_format.err;
  EXPECT_FALSE(testing::FileExists(out));

  ASSERT_FALSE(testing::FileExists("/nonexistent")) << "this host has /nonexistent; the test needs it absent";
  RunResult missing_dir = sb.Cli(
      {"--database", db, "export", "processes", "--format", "jsonl", "--output", "/nonexistent/dir/x.jsonl"});
  EXPECT_EQ(missing_dir.exit_code, 1);
  EXPECT_TRUE(Contains(missing_dir.err, "/nonexistent/dir/x.jsonl")) << missing_dir.err;
  EXPECT_EQ(missing_dir.out, "") << "rows went to stdout instead";
  EXPECT_FALSE(testing::FileExists("/nonexistent"));

  // An output path that is a directory: the rename fails after the rows were
  // written; neither the directory nor a temporary file may remain changed.
  const std::string dir = sb.File("outdir");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  RunResult onto_dir = sb.Cli({"--database", db, "export", "processes", "--output", dir});
  EXPECT_EQ(onto_dir.exit_code, 1);
  EXPECT_TRUE(Contains(onto_dir.err, dir)) << onto_dir.err;
  EXPECT_TRUE(ListDir(dir).empty());
  EXPECT_TRUE(Leftovers(sb).empty()) << Leftovers(sb)[0];
}

}  // namespace
}  // namespace sentinel::itest
