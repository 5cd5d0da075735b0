#include "sentinel/storage/tables.h"

#include <gtest/gtest.h>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::storage {
namespace {

// The declared columns are exactly what the schema provides, in order.
TEST(TablesTest, DeclarationsMatchSchema) {
  testing::TempDir dir;
  auto store = EventStore::Open({dir.File("e.db"), OpenMode::kReadWrite, 1000});
  ASSERT_TRUE(store.ok());
  for (const TableSpec& t : RuleVisibleTables()) {
    auto st = (*store)->db().Prepare("SELECT name FROM pragma_table_info('" + std::string(t.name) +
                                     "') ORDER BY cid");
    ASSERT_TRUE(st.ok());
    std::vector<std::string> actual;
    while (*st->Step()) actual.push_back(st->ColumnText(0));
    std::vector<std::string> declared;
    for (const auto& c : t.columns) declared.emplace_back(c.name);
    EXPECT_EQ(actual, declared) << t.name;
  }
  for (const ExportSpec& e : ExportableTables()) {
    auto n = (*store)->db().QueryInt("SELECT count(*) FROM pragma_table_info('" + std::string(e.table) +
                                     "') WHERE name='" + std::string(e.time_column) + "'");
    EXPECT_EQ(n->value_or(0), 1) << e.table << "." << e.time_column;
  }
}

TEST(TablesTest, MarkdownListsEveryTable) {
  std::string md = RenderTablesMarkdown();
  for (const TableSpec& t : RuleVisibleTables())
    EXPECT_NE(md.find("`" + std::string(t.name) + "`"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::storage

namespace sentinel::storage {
namespace {

// docs/tables.md is generated from the declarations; it must not drift.
TEST(TablesTest, DocsAreUpToDate) {
  std::string path = std::string(SENTINEL_SOURCE_DIR) + "/docs/tables.md";
  std::string expected = RenderTablesMarkdown();
  std::string actual = testing::ReadFile(path);
  if (actual != expected) {
    std::string fresh = std::string(SENTINEL_BINARY_DIR) + "/tables.md";
    testing::WriteFile(fresh, expected);
    FAIL() << path << " is out of date; the generated version is at " << fresh << " (copy it over)";
  }
}

}  // namespace
}  // namespace sentinel::storage
