// The `regexp(pattern, text)` SQL function of the rule sandbox (SPEC §13),
// backed by RE2: linear-time matching, no backtracking, so a hostile pattern
// or command line cannot stall a detection cycle.
//
// regexp(P, T) is 1 when RE2 finds P anywhere in T (an unanchored search;
// anchor with ^ and $), 0 when not, NULL when either argument is NULL.
// Flags go inline: (?i) case-insensitive, (?m) multi-line, (?s) dot matches
// newline. `T REGEXP P` is the same call. A pattern RE2 rejects, one longer
// than kMaxRegexpPatternBytes or one whose compiled program exceeds
// kMaxRegexpProgramSize is an SQL error naming the pattern.
//
// Compiled patterns are cached per connection (keyed by the pattern text,
// at most kRegexpCacheEntries) and per statement (SQLite's auxdata, so a
// constant pattern is looked up once per statement, not once per row).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <re2/re2.h>

#include "sentinel/base/status.h"

struct sqlite3;

namespace sentinel::detection {

inline constexpr std::size_t kMaxRegexpPatternBytes = 4096;
inline constexpr int kMaxRegexpProgramSize = 20'000;
inline constexpr std::size_t kRegexpCacheEntries = 128;
// RE2's memory budget per pattern (program and DFA cache; past it the DFA
// falls back to the NFA, still linear): the cache holds at most
// kRegexpCacheEntries of them.
inline constexpr int64_t kRegexpMaxMemBytes = int64_t{1} << 20;

// Compiles `pattern` as regexp() does (same options and limits).
// InvalidArgument names the pattern and RE2's reason.
Result<std::shared_ptr<const RE2>> CompileRegexp(std::string_view pattern);

// Registers regexp() on `db`. Idempotent: a connection that has it keeps its
// cache. GuardedQuery::Prepare calls it, so every connection that runs a rule
// or a `sentinelcli query` has it.
Status RegisterRegexpFunction(sqlite3* db);

}  // namespace sentinel::detection
