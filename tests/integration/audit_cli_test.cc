// The audit ledger through the real binaries (SPEC §8, §9): procmond,
// sentinelagent and sentinelcli record their security-relevant steps in one
// chain; `sentinelcli audit verify` accepts it and finds the first tampered
// entry of a modified copy (exit 3).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;

class AuditCliTest : public ::testing::Test {
 protected:
  std::vector<std::string> Env() const {
    return {"SENTINELD_DATABASE__PATH=" + sb_.File("events.db"),
            "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit.db"),
            "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]"};
  }
  std::vector<std::string> Actions() const {
    RunResult r = sb_.Cli({"audit", "list", "--limit", "0", "--json"}, Env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> out;
    for (const auto& e : json::parse(r.out)) out.push_back(e["actor"].get<std::string>() + ":" + e["action"].get<std::string>());
    return out;
  }
  Sandbox sb_;
};

bool Has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

TEST_F(AuditCliTest, ComponentsRecordTheirStepsInOneVerifiableChain) {
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  ASSERT_EQ(sb_.Agent({"--once", "--no-collector"}, Env()).exit_code, 0);
  ASSERT_EQ(sb_.Cli({"query", "SELECT count(*) FROM processes"}, Env()).exit_code, 0);
  EXPECT_EQ(sb_.Cli({"query", "SELECT * FROM sqlite_master"}, Env()).exit_code, 2);

  std::vector<std::string> actions = Actions();
  for (const char* want : {"procmond:component_start", "procmond:config_loaded", "procmond:component_stop",
                           "sentinelagent:component_start", "sentinelagent:config_loaded",
                           "sentinelagent:rule_loaded", "sentinelagent:component_stop",
                           "sentinelcli:query_executed", "sentinelcli:query_rejected"}) {
    EXPECT_TRUE(Has(actions, want)) << want;
  }
  if (::geteuid() == 0) {
    EXPECT_TRUE(Has(actions, "procmond:privileges_dropped"));
  }

  RunResult ok = sb_.Cli({"audit", "verify"}, Env());
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_TRUE(Contains(ok.out, "intact")) << ok.out;
}

TEST_F(AuditCliTest, VerifyFindsTheFirstTamperedEntry) {
  ASSERT_EQ(sb_.Procmond({"--once"}, Env()).exit_code, 0);
  ASSERT_EQ(sb_.Cli({"query", "SELECT 1 AS one"}, Env()).exit_code, 0);
  ASSERT_EQ(sb_.Cli({"query", "SELECT 2 AS two"}, Env()).exit_code, 0);
  const int64_t n = QueryInt(sb_.File("audit.db"), "SELECT max(sequence) FROM audit_ledger").value_or(0);
  ASSERT_GE(n, 4);
  // Someone edits what a query was.
  ExecSql(sb_.File("audit.db"), "UPDATE audit_ledger SET event_data = replace(event_data, 'SELECT 1', 'SELECT 9') "
                                "WHERE action = 'query_executed'");
  RunResult bad = sb_.Cli({"audit", "verify"}, Env());
  EXPECT_EQ(bad.exit_code, 3) << bad.out << bad.err;
  const int64_t edited = QueryInt(sb_.File("audit.db"),
                                  "SELECT min(sequence) FROM audit_ledger WHERE event_data LIKE '%SELECT 9%'")
                             .value_or(-1);
  EXPECT_TRUE(Contains(bad.out + bad.err, "first bad sequence " + std::to_string(edited))) << bad.out << bad.err;

  // A missing ledger is a runtime failure, not tampering.
  RunResult missing = sb_.Cli({"audit", "verify"}, {"SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("none.db")});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_FALSE(testing::FileExists(sb_.File("none.db")));
}

TEST_F(AuditCliTest, CliNeverCreatesALedger) {
  ASSERT_EQ(sb_.Procmond({"--once", "--database", sb_.File("events.db")},
                         {"SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("procmond-audit.db")})
                .exit_code,
            0);
  ASSERT_EQ(sb_.Cli({"query", "SELECT 1 AS one"}, Env()).exit_code, 0);
  EXPECT_FALSE(testing::FileExists(sb_.File("audit.db")));
}

}  // namespace
}  // namespace sentinel::itest
