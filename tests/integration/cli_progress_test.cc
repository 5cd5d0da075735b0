// Progress of long sentinelcli commands (issue 20): with stderr on a
// terminal, `audit verify`, `export`, `query` and `rules import` draw a
// progress line there (count, rate, share of the total when known) and erase
// it; with stderr on a pipe they write no progress at all, and stdout is
// byte for byte the same either way.
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/audit/ledger.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

constexpr int kLedgerEntries = 3000;
constexpr int kEvents = 5000;

class CliProgressTest : public ::testing::Test {
 protected:
  std::vector<std::string> Env() const {
    return sb_.Env({"SENTINELD_DATABASE__PATH=" + db_,
                    "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit.db"),
                    "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]", "TERM=xterm-256color"});
  }
  RunResult OnPty(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{CliBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunWithStderrOnPty(argv, Env());
  }
  RunResult OnPipe(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{CliBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, Env());
  }
  // The same command with stderr on a terminal and on a pipe: the terminal
  // shows `progress` (redrawn with \r, erased at the end), the pipe nothing,
  // and stdout is the same. Returns the terminal run.
  RunResult ExpectProgressOnTerminalOnly(const std::vector<std::string>& args, const std::string& progress) {
    RunResult pty = OnPty(args);
    RunResult pipe = OnPipe(args);
    EXPECT_EQ(pty.exit_code, 0) << pty.err;
    EXPECT_EQ(pipe.exit_code, 0) << pipe.err;
    EXPECT_TRUE(Contains(pty.err, "\r" + progress)) << "no progress on the terminal:\n" << pty.err;
    // Erased: the last thing on the line before anything else is blanks and a carriage return.
    const size_t last = pty.err.rfind(progress);
    EXPECT_NE(pty.err.find(" \r", last), std::string::npos) << "progress not erased:\n" << pty.err;
    EXPECT_FALSE(Contains(pipe.err, progress)) << "progress on a pipe:\n" << pipe.err;
    EXPECT_EQ(pipe.err.find('\r'), std::string::npos) << pipe.err;
    EXPECT_FALSE(Contains(pty.out, progress)) << "progress on stdout";
    EXPECT_EQ(pty.out, pipe.out) << "stdout differs with stderr on a terminal";
    return pty;
  }

  Sandbox sb_;
  std::string db_ = sb_.Database();
};

TEST_F(CliProgressTest, AuditVerifyOfALargeLedger) {
  {
    audit::LedgerOptions opts;
    opts.path = sb_.File("audit.db");
    auto ledger = audit::AuditLedger::Open(opts);
    ASSERT_TRUE(ledger.ok()) << ledger.status().message();
    std::vector<audit::AuditEvent> batch;
    for (int i = 0; i < kLedgerEntries; ++i) {
      batch.push_back({"test", "filler", "{\"i\":" + std::to_string(i) + "}"});
    }
    ASSERT_TRUE((*ledger)->AppendBatch(batch).ok());
  }
  // With the entries of the procmond run that made the event store.
  const int64_t total = QueryInt(sb_.File("audit.db"), "SELECT count(*) FROM audit_ledger").value_or(-1);
  ASSERT_GE(total, kLedgerEntries);
  ASSERT_LT(total, 10'000);
  const std::string grouped =
      std::to_string(total / 1000) + "," + std::to_string(1000 + total % 1000).substr(1);
  RunResult text = ExpectProgressOnTerminalOnly({"audit", "verify"}, "verifying audit ledger: ");
  EXPECT_TRUE(Contains(text.err, "/" + grouped + " entries (")) << "the total is counted first:\n"
                                                                << text.err;
  EXPECT_TRUE(Contains(text.out, "intact")) << text.out;
  RunResult json = ExpectProgressOnTerminalOnly({"--json", "audit", "verify"}, "verifying audit ledger: ");
  auto doc = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << json.out;
  EXPECT_EQ(doc["entries_verified"], total);
}

TEST_F(CliProgressTest, ExportAndQueryOfManyRows) {
  ExecSql(
      db_,
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(kEvents) +
          ") INSERT INTO process_events(event_time_ms, event_type, pid, name, exe_path, command_line) "
          "SELECT 1700000000000 + i, 'exec', 100000 + i, 'filler', '/usr/bin/filler', '[\"filler\"]' FROM n");
  RunResult to_stdout = ExpectProgressOnTerminalOnly({"export", "process_events", "--format", "csv"},
                                                     "export process_events: ");
  EXPECT_TRUE(Contains(to_stdout.err, "/5,000 rows (")) << to_stdout.err;
  EXPECT_EQ(SplitLines(to_stdout.out).size(), static_cast<size_t>(kEvents) + 1) << "header and every row";

  // --output FILE: the same file either way.
  const std::string a = sb_.File("a.jsonl"), b = sb_.File("b.jsonl");
  RunResult pty = OnPty({"export", "process_events", "--output", a});
  RunResult pipe = OnPipe({"export", "process_events", "--output", b});
  ASSERT_EQ(pty.exit_code, 0) << pty.err;
  ASSERT_EQ(pipe.exit_code, 0) << pipe.err;
  EXPECT_TRUE(Contains(pty.err, "\rexport process_events: ")) << pty.err;
  EXPECT_FALSE(Contains(pipe.err, "export process_events: ")) << pipe.err;
  EXPECT_EQ(testing::ReadFile(a), testing::ReadFile(b));
  EXPECT_EQ(SplitLines(testing::ReadFile(a)).size(), static_cast<size_t>(kEvents));

  RunResult query = ExpectProgressOnTerminalOnly(
      {"--format", "jsonl", "query", "SELECT id, pid, name FROM process_events ORDER BY id"}, "query: ");
  EXPECT_TRUE(Contains(query.err, " rows")) << query.err;
  EXPECT_EQ(SplitLines(query.out).size(), static_cast<size_t>(kEvents));
}

TEST_F(CliProgressTest, RulesImportOfManyFiles) {
  const std::string dir = sb_.File("import");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  for (int i = 0; i < 40; ++i) {
    const std::string id = "bulk-" + std::to_string(i);
    testing::WriteFile(dir + "/" + id + ".yaml",
                       "id: " + id + "\nname: Bulk " + std::to_string(i) +
                           "\nseverity: low\nquery: SELECT pid, name FROM processes WHERE name = 'bulk-" +
                           std::to_string(i) + "'\n");
  }
  RunResult r = ExpectProgressOnTerminalOnly({"rules", "import", dir}, "checking rule files: ");
  EXPECT_TRUE(Contains(r.err, "/40 files (")) << r.err;
  EXPECT_TRUE(Contains(r.out, "40 rule(s) imported")) << r.out;
}

}  // namespace
}  // namespace sentinel::itest
