// The filters of GET /api/alerts, shared by the agent (its event store) and
// the console (every host's alerts): docs/web-ui.md "API".
//
//   severity  low|medium|high|critical: this severity and above (as
//             `sentinelcli alerts list --severity`)
//   rule      a rule id, exactly
//   status    open|acknowledged|closed
//   since, until  alert_time bounds (inclusive), as the CLI's --since:
//             ISO-8601, relative (15m, 2h, 7d) or epoch milliseconds
//   q         text looked for (case-insensitive for ASCII) in the title,
//             rule id, description and affected processes (names, paths)
//   host      a host id (console only)
//   limit     1..kMaxAlertLimit (default kDefaultAlertLimit)
//   offset    0..kMaxAlertOffset, for the next page
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/models/severity.h"
#include "sentinel/webui/http.h"

namespace sentinel::webui {

inline constexpr int64_t kDefaultAlertLimit = 100;
inline constexpr int64_t kMaxAlertLimit = 500;
inline constexpr int64_t kMaxAlertOffset = 100000;
inline constexpr size_t kMaxSearchBytes = 200;

struct AlertQuery {
  std::optional<models::Severity> min_severity;
  std::optional<std::string> rule;
  std::optional<std::string> status;
  std::optional<int64_t> since_ms;
  std::optional<int64_t> until_ms;
  std::optional<std::string> text;
  std::optional<std::string> host;
  int64_t limit = kDefaultAlertLimit;
  int64_t offset = 0;
};

// Parses the query string of /api/alerts; `with_host` admits `host` (a
// fleet host id). `error` is set for the first bad parameter.
struct ParsedAlertQuery {
  AlertQuery query;
  std::optional<ParamError> error;
};
ParsedAlertQuery ParseAlertQuery(std::string_view raw_query, bool with_host, int64_t now_ms);

// The severity names at or above `min`, lowest first ("high" -> high, critical).
std::vector<std::string> SeveritiesFrom(models::Severity min);

// `text` as a LIKE pattern matching it anywhere, with '\' escaping % _ and '\'
// (use with ESCAPE '\').
std::string ContainsPattern(std::string_view text);

// A path /api/alerts/<id>[/<rest>]: the id's text and the rest ("" or
// "/tree"); nullopt for any other path.
struct AlertPath {
  std::string id_text;
  std::string rest;
};
std::optional<AlertPath> MatchAlertPath(std::string_view path);

}  // namespace sentinel::webui
