// The tables and views that detection rules and `sentinelcli query` may
// read, declared once. The SQL sandbox's allow-list, the schema tests and
// docs/tables.md derive from this list; adding a column to a view without
// declaring it here fails the schema test.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace sentinel::storage {

struct ColumnSpec {
  std::string_view name;
  std::string_view type;  // INTEGER, REAL, TEXT
  std::string_view description;
};

struct TableSpec {
  std::string_view name;
  std::string_view description;
  std::span<const ColumnSpec> columns;
};

// Rule-visible tables and views of the event store.
std::span<const TableSpec> RuleVisibleTables();
const TableSpec* FindRuleVisibleTable(std::string_view name);

// Tables `sentinelcli export` accepts (rule-visible ones plus alerts and
// delivery history), with the column that --since/--until filter on.
struct ExportSpec {
  std::string_view table;
  std::string_view time_column;
  std::string_view order_by;
};
std::span<const ExportSpec> ExportableTables();
const ExportSpec* FindExportable(std::string_view name);

// Markdown reference of RuleVisibleTables(), for docs/tables.md.
std::string RenderTablesMarkdown();

}  // namespace sentinel::storage
