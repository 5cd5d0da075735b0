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
//
// regexp() is part of the sigma feature (RE2, SENTINEL_SIGMA; docs/decisions.md
// #82): a build without it links regexp_absent.cc, which registers nothing,
// so a query calling regexp() (or using REGEXP) is refused when it is
// prepared, and RegexpUnavailableReason() names the option for that refusal.
// No built-in rule uses it.
//
// Thread-safety: RegisterRegexpFunction per connection, from the thread that
// owns it; CompileRegexp and RegexpUnavailableReason from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sentinel/base/status.h"

struct sqlite3;
namespace re2 {
class RE2;
}  // namespace re2

namespace sentinel::detection {

inline constexpr std::size_t kMaxRegexpPatternBytes = 4096;
inline constexpr int kMaxRegexpProgramSize = 20'000;
inline constexpr std::size_t kRegexpCacheEntries = 128;
// RE2's memory budget per pattern (program and DFA cache; past it the DFA
// falls back to the NFA, still linear): the cache holds at most
// kRegexpCacheEntries of them.
inline constexpr int64_t kRegexpMaxMemBytes = int64_t{1} << 20;

// Compiles `pattern` as regexp() does (same options and limits).
// InvalidArgument names the pattern and RE2's reason; Unimplemented in a
// build without the sigma feature.
Result<std::shared_ptr<const re2::RE2>> CompileRegexp(std::string_view pattern);

// Registers regexp() on `db`. Idempotent: a connection that has it keeps its
// cache. GuardedQuery::Prepare calls it, so every connection that runs a rule
// or a `sentinelcli query` has it (in a build without the sigma feature it
// registers nothing and succeeds).
Status RegisterRegexpFunction(sqlite3* db);

// "" where regexp() is built; otherwise why a query calling it is refused,
// naming the sigma feature and its CMake option.
std::string RegexpUnavailableReason();

}  // namespace sentinel::detection
