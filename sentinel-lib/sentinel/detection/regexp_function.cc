#include "sentinel/detection/regexp_function.h"

#include <re2/re2.h>
#include <sqlite3.h>

#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "sentinel/base/strings.h"

namespace sentinel::detection {
namespace {

// A connection's compiled patterns. Owned by SQLite (the function's user
// data), destroyed when the connection closes.
struct RegexpCache {
  sqlite3* db = nullptr;
  std::unordered_map<std::string, std::shared_ptr<const RE2>> compiled;
};

// Connections that have regexp() (GuardedQuery::Prepare runs for every
// query; registering again would drop the cache).
std::mutex& RegisteredMutex() {
  static std::mutex m;
  return m;
}
std::unordered_set<sqlite3*>& Registered() {
  static std::unordered_set<sqlite3*> s;
  return s;
}

void DestroyCache(void* p) {
  auto* cache = static_cast<RegexpCache*>(p);
  {
    std::lock_guard<std::mutex> lock(RegisteredMutex());
    Registered().erase(cache->db);
  }
  delete cache;
}

void DeleteAux(void* p) {
  delete static_cast<std::shared_ptr<const RE2>*>(p);
}

// The compiled pattern of argument 0: the statement's auxdata, else the
// connection's cache, else compiled now. nullptr after reporting an error.
const RE2* PatternOf(sqlite3_context* ctx, sqlite3_value* arg) {
  if (auto* aux = static_cast<std::shared_ptr<const RE2>*>(sqlite3_get_auxdata(ctx, 0))) return aux->get();
  auto* cache = static_cast<RegexpCache*>(sqlite3_user_data(ctx));
  const char* text = reinterpret_cast<const char*>(sqlite3_value_text(arg));
  std::string pattern(text ? text : "", static_cast<std::size_t>(sqlite3_value_bytes(arg)));
  std::shared_ptr<const RE2> re;
  auto it = cache->compiled.find(pattern);
  if (it != cache->compiled.end()) {
    re = it->second;
  } else {
    auto compiled = CompileRegexp(pattern);
    if (!compiled.ok()) {
      sqlite3_result_error(ctx, compiled.status().message().c_str(), -1);
      return nullptr;
    }
    re = *compiled;
    if (cache->compiled.size() >= kRegexpCacheEntries) cache->compiled.clear();
    cache->compiled.emplace(std::move(pattern), re);
  }
  sqlite3_set_auxdata(ctx, 0, new std::shared_ptr<const RE2>(re), DeleteAux);
  return re.get();
}

void RegexpFunction(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  const RE2* re = PatternOf(ctx, argv[0]);
  if (re == nullptr) return;
  const char* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[1]));
  const auto len = static_cast<std::size_t>(sqlite3_value_bytes(argv[1]));
  const bool hit = RE2::PartialMatch(re2::StringPiece(text ? text : "", len), *re);
  sqlite3_result_int(ctx, hit ? 1 : 0);
}

}  // namespace

Result<std::shared_ptr<const RE2>> CompileRegexp(std::string_view pattern) {
  const std::string shown = QuoteForMessage(pattern.substr(0, 200));
  if (pattern.size() > kMaxRegexpPatternBytes) {
    return InvalidArgumentError("regexp(): pattern " + shown + " is longer than " +
                                std::to_string(kMaxRegexpPatternBytes) + " bytes");
  }
  RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(kRegexpMaxMemBytes);
  auto re = std::make_shared<const RE2>(re2::StringPiece(pattern.data(), pattern.size()), opts);
  if (!re->ok()) return InvalidArgumentError("regexp(): invalid pattern " + shown + ": " + re->error());
  if (re->ProgramSize() > kMaxRegexpProgramSize) {
    return InvalidArgumentError("regexp(): pattern " + shown + " compiles to " +
                                std::to_string(re->ProgramSize()) + " instructions (at most " +
                                std::to_string(kMaxRegexpProgramSize) + ")");
  }
  return std::shared_ptr<const RE2>(std::move(re));
}

Status RegisterRegexpFunction(sqlite3* db) {
  {
    std::lock_guard<std::mutex> lock(RegisteredMutex());
    if (Registered().count(db)) return Status::Ok();
  }
  // Not under the lock: SQLite calls DestroyCache itself when registration fails.
  auto* cache = new RegexpCache{db, {}};
  const int rc = sqlite3_create_function_v2(db, "regexp", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, cache,
                                            RegexpFunction, nullptr, nullptr, DestroyCache);
  if (rc != SQLITE_OK) return InternalError(std::string("cannot register regexp(): ") + sqlite3_errmsg(db));
  std::lock_guard<std::mutex> lock(RegisteredMutex());
  Registered().insert(db);
  return Status::Ok();
}

std::string RegexpUnavailableReason() {
  return "";
}

}  // namespace sentinel::detection
