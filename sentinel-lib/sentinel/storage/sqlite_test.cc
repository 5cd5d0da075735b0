#include "sentinel/storage/sqlite.h"

#include <gtest/gtest.h>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::storage {
namespace {

using testing::TempDir;

TEST(SqliteTest, PrepareBindStep) {
  TempDir dir;
  auto db = Database::Open(dir.File("a.db"), OpenMode::kReadWrite);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t(a INTEGER, b TEXT)").ok());
  auto ins = (*db)->Prepare("INSERT INTO t VALUES(?, ?)");
  ASSERT_TRUE(ins.ok());
  ASSERT_TRUE(ins->BindInt(1, 7).ok());
  ASSERT_TRUE(ins->BindText(2, std::string("x\0y", 3)).ok());
  ASSERT_TRUE(ins->Run().ok());
  auto sel = (*db)->Prepare("SELECT a, b FROM t");
  ASSERT_TRUE(sel.ok());
  ASSERT_TRUE(*sel->Step());
  EXPECT_EQ(sel->ColumnInt(0), 7);
  EXPECT_EQ(sel->ColumnText(1), std::string("x\0y", 3));  // exact bytes survive
  EXPECT_FALSE(*sel->Step());
}

TEST(SqliteTest, ErrorsAreStatuses) {
  TempDir dir;
  auto db = Database::Open(dir.File("a.db"), OpenMode::kReadWrite);
  ASSERT_TRUE(db.ok());
  auto bad = (*db)->Prepare("SELEKT 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("syntax error"), std::string::npos);
}

TEST(SqliteTest, ReadOnlyMissingFileIsNotCreated) {
  TempDir dir;
  auto db = Database::Open(dir.File("missing.db"), OpenMode::kReadOnly);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(testing::FileExists(dir.File("missing.db")));
}

TEST(SqliteTest, TransactionRollsBackUnlessCommitted) {
  TempDir dir;
  auto db = Database::Open(dir.File("a.db"), OpenMode::kReadWrite);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t(a)").ok());
  {
    auto tx = Transaction::Begin(**db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES(1)").ok());
  }
  EXPECT_EQ((*db)->QueryInt("SELECT count(*) FROM t")->value(), 0);
  {
    auto tx = Transaction::Begin(**db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES(1)").ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  EXPECT_EQ((*db)->QueryInt("SELECT count(*) FROM t")->value(), 1);
}

TEST(SqliteTest, ExtensionLoadingIsOff) {
  TempDir dir;
  auto db = Database::Open(dir.File("a.db"), OpenMode::kReadWrite);
  ASSERT_TRUE(db.ok());
  auto r = (*db)->QueryText("SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')");
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace sentinel::storage
