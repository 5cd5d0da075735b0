#include "sentinel/detection/regexp_function.h"

#include <gtest/gtest.h>

#include <string>

#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/sql_guard.h"

namespace sentinel::detection {
namespace {

class RegexpFunctionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = OpenSchemaOnlyEventStore();
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(*db);
  }

  // The first column of the one row of `sql`, run through the sandbox.
  Result<std::string> One(const std::string& sql) {
    ASSIGN_OR_RETURN(auto q, GuardedQuery::Prepare(*db_, sql, GuardLimits{}));
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return std::string("no row");
    if (q->statement().ColumnType(0) == 5) return std::string("NULL");
    return q->statement().ColumnText(0);
  }

  std::string Val(const std::string& sql) {
    auto r = One(sql);
    return r.ok() ? *r : "error: " + r.status().message();
  }

  std::unique_ptr<storage::Database> db_;
};

TEST_F(RegexpFunctionTest, SearchesUnanchoredWithRe2Syntax) {
  EXPECT_EQ(Val("SELECT regexp('\\s-O\\s', 'wget -O /tmp/x')"), "1");
  EXPECT_EQ(Val("SELECT regexp('^-O', 'wget -O /tmp/x')"), "0");
  EXPECT_EQ(Val("SELECT regexp('(?i)WGET', 'wget')"), "1");
  EXPECT_EQ(Val("SELECT regexp('WGET', 'wget')"), "0");
  // The REGEXP operator is the same function: `text REGEXP pattern`.
  EXPECT_EQ(Val("SELECT 'abc' REGEXP 'b.'"), "1");
  EXPECT_EQ(Val("SELECT regexp('a', NULL)"), "NULL");
  EXPECT_EQ(Val("SELECT regexp(NULL, 'a')"), "NULL");
}

TEST_F(RegexpFunctionTest, IsAllowedInTheSandboxOnEveryRuleConnection) {
  // Before the Sigma import the sandbox had no regexp: `x REGEXP y` failed
  // with "no such function". Now rules reading exec_events can use it.
  EXPECT_TRUE(IsAllowedFunction("regexp"));
  auto q = GuardedQuery::Prepare(*db_, "SELECT pid FROM exec_events WHERE regexp('-D', command_text)",
                                 GuardLimits{});
  EXPECT_TRUE(q.ok()) << q.status().message();
}

TEST_F(RegexpFunctionTest, APatternRe2RejectsIsAnErrorNamingIt) {
  auto r = One("SELECT regexp('(a)\\1', 'aa')");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("invalid pattern \"(a)\\\\1\""), std::string::npos)
      << r.status().message();
  auto huge = One("SELECT regexp('(x{1000}){1000}', 'x')");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("(x{1000}){1000}"), std::string::npos) << huge.status().message();
}

TEST_F(RegexpFunctionTest, IsLinearOnABacktrackingBomb) {
  // (a+)+$ over a long run of a's and a mismatch: exponential for a
  // backtracking engine, linear for RE2. The guard's step budget would stop
  // a runaway; this finishes well inside it.
  const std::string text(5000, 'a');
  auto r = One("SELECT regexp('(a+)+$', '" + text + "!')");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "0");
}

TEST(RegexpCompileTest, LimitsPatternSizeAndProgramSize) {
  EXPECT_TRUE(CompileRegexp("[0-9]{1,3}\\.[0-9]{1,3}").ok());
  EXPECT_FALSE(CompileRegexp(std::string(kMaxRegexpPatternBytes + 1, 'a')).ok());
  std::string many;
  for (int i = 0; i < 30; ++i) many += "[a-z]{1000}";
  auto big = CompileRegexp(many);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("instructions"), std::string::npos) << big.status().message();
}

TEST(RegexpRegisterTest, IsIdempotentPerConnection) {
  auto db = storage::Database::Open(":memory:", storage::OpenMode::kReadWrite);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(RegisterRegexpFunction((*db)->raw()).ok());
  ASSERT_TRUE(RegisterRegexpFunction((*db)->raw()).ok());
  auto n = (*db)->QueryInt("SELECT regexp('b', 'abc')");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->value_or(-1), 1);
}

}  // namespace
}  // namespace sentinel::detection
