#include "sentinel/detection/query_worker.h"

#include <errno.h>  // program_invocation_name
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <climits>

#include <sqlite3.h>

#include <cerrno>
#include <cstring>
#include <span>

#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/crypto/hex.h"
#include "sentinel/detection/sigma_prefilter.h"
#include "sentinel/detection/sql_guard.h"
#include "sentinel/detection/syscall_filter.h"
#include "sentinel/storage/store.h"

extern char** environ;

namespace sentinel::detection {
namespace {

// The worker's end of the socketpair.
constexpr int kChannelFd = 3;
// Larger frames are a protocol error (a row is bounded by SQLite's length
// limit per value and by the worker's heap ceiling).
constexpr uint32_t kMaxFrame = 1u << 30;

enum Kind : uint8_t {
  kSetup = 1,
  kRunRule = 2,
  kRunQuery = 3,
  kLoadExecBatch = 4,
  kSigmaFilter = 5,
  kRunRules = 6,
  kReady = 10,
  kError = 11,
  kColumns = 12,
  kRow = 13,
  kDone = 14,
};

// The running binary itself, whatever its path (also after an upgrade
// replaced the file).
constexpr const char* kSelfExe = "/proc/self/exe";

// The path behind /proc/self/exe, read when main() starts. A process that
// changed its credentials (the agent dropping from root to privileges.user)
// is no longer dumpable, and /proc/self/exe of a non-dumpable process cannot
// be executed by its own unprivileged user: the worker is then started from
// this path instead.
std::string& SelfExePath() {
  static std::string path;
  return path;
}

// ---- wire encoding ------------------------------------------------------

class Out {
 public:
  explicit Out(uint8_t kind) {
    s_.resize(4);
    U8(kind);
  }
  void U8(uint8_t v) { s_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { Raw(&v, sizeof v); }
  void I64(int64_t v) { Raw(&v, sizeof v); }
  void F64(double v) { Raw(&v, sizeof v); }
  void Str(std::string_view v) {
    U32(static_cast<uint32_t>(v.size()));
    s_.append(v);
  }
  void OptI64(const std::optional<int64_t>& v) {
    U8(v ? 1 : 0);
    I64(v.value_or(0));
  }
  // The frame: length (of kind + payload) first.
  std::string Take() {
    const uint32_t n = static_cast<uint32_t>(s_.size() - 4);
    std::memcpy(s_.data(), &n, 4);
    return std::move(s_);
  }
  std::size_t size() const { return s_.size(); }

 private:
  void Raw(const void* p, std::size_t n) { s_.append(static_cast<const char*>(p), n); }
  std::string s_;
};

class In {
 public:
  explicit In(std::string_view s) : s_(s) {}
  uint8_t U8() {
    uint8_t v = 0;
    Raw(&v, 1);
    return v;
  }
  uint32_t U32() {
    uint32_t v = 0;
    Raw(&v, sizeof v);
    return v;
  }
  int64_t I64() {
    int64_t v = 0;
    Raw(&v, sizeof v);
    return v;
  }
  double F64() {
    double v = 0;
    Raw(&v, sizeof v);
    return v;
  }
  std::string Str() {
    const uint32_t n = U32();
    if (!ok_ || n > s_.size()) {
      ok_ = false;
      return {};
    }
    std::string v(s_.substr(0, n));
    s_.remove_prefix(n);
    return v;
  }
  std::optional<int64_t> OptI64() {
    const bool has = U8() != 0;
    const int64_t v = I64();
    return has ? std::optional<int64_t>(v) : std::nullopt;
  }
  bool ok() const { return ok_; }

 private:
  void Raw(void* p, std::size_t n) {
    if (!ok_ || s_.size() < n) {
      ok_ = false;
      return;
    }
    std::memcpy(p, s_.data(), n);
    s_.remove_prefix(n);
  }
  std::string_view s_;
  bool ok_ = true;
};

void PutLimits(Out& o, const GuardLimits& l) {
  o.I64(l.timeout_ms);
  o.I64(l.max_vm_steps);
  o.I64(l.max_length);
}

GuardLimits GetLimits(In& in) {
  GuardLimits l;
  l.timeout_ms = in.I64();
  l.max_vm_steps = in.I64();
  l.max_length = static_cast<int>(in.I64());
  return l;
}

void PutParam(Out& o, const QueryParam& p) {
  o.U8(static_cast<uint8_t>(p.type));
  o.I64(p.integer);
  o.Str(p.text);
}

QueryParam GetParam(In& in) {
  QueryParam p;
  const uint8_t t = in.U8();
  p.type = t == 1 ? QueryParam::Type::kInteger : t == 3 ? QueryParam::Type::kText : QueryParam::Type::kNull;
  p.integer = in.I64();
  p.text = in.Str();
  return p;
}

std::string ErrorFrame(const Status& s) {
  Out o(kError);
  o.U8(static_cast<uint8_t>(s.code()));
  o.Str(s.message());
  return o.Take();
}

Status StatusFromFrame(std::string_view payload) {
  In in(payload);
  const uint8_t code = in.U8();
  std::string msg = in.Str();
  if (!in.ok() || code == 0 || code > static_cast<uint8_t>(StatusCode::kInternal)) {
    return InternalError("query worker: malformed error frame");
  }
  return Status(static_cast<StatusCode>(code), std::move(msg));
}

// A rule's Sigma detection in a request (decision 70): a mode byte, 0 none,
// 1 the one this worker was sent before for the rule's id, 2 the encoded
// tree follows. `sent` is the parent's record of what the worker holds; it
// keeps the trees alive, so a pointer is never reused for another tree.
// RunRules' answer for a rule after the worker was lost.
constexpr std::string_view kNotRunMessage = "query worker: rule not run (the worker was lost before it)";

enum DetectionMode : uint8_t { kNoDetection = 0, kKnownDetection = 1, kNewDetection = 2 };

// A rule's definition in a request: a mode byte, 1 the one this worker was
// sent before for the rule's id (the query, source path and dedup keys are
// unchanged), 2 they follow. An exec batch sends the same few dozen rules
// every few hundred ms: their query texts (kilobytes each) cross once.
enum DefinitionMode : uint8_t { kKnownDefinition = 1, kNewDefinition = 2 };

bool SameDefinition(const Rule& a, const Rule& b) {
  return a.query == b.query && a.source_path == b.source_path && a.dedup_keys == b.dedup_keys;
}

void PutDefinition(Out& o, const Rule& rule, RulesSent& sent) {
  auto it = sent.find(rule.id);
  if (it != sent.end() && SameDefinition(it->second, rule)) {
    o.U8(kKnownDefinition);
    return;
  }
  o.U8(kNewDefinition);
  o.Str(rule.source_path);
  o.Str(rule.query);
  o.U32(static_cast<uint32_t>(rule.dedup_keys.size()));
  for (const auto& k : rule.dedup_keys) o.Str(k);
  Rule& held = sent[rule.id];
  held.id = rule.id;
  held.source_path = rule.source_path;
  held.query = rule.query;
  held.dedup_keys = rule.dedup_keys;
}

void PutDetection(Out& o, const Rule& rule, SigmaSent& sent) {
  if (!rule.sigma_detection) {
    o.U8(kNoDetection);
    return;
  }
  auto& held = sent[rule.id];
  if (held == rule.sigma_detection) {
    o.U8(kKnownDetection);
    return;
  }
  std::string bytes;
  EncodeSigmaExpr(*rule.sigma_detection, &bytes);
  o.U8(kNewDetection);
  o.Str(bytes);
  held = rule.sigma_detection;
}

// The body of a rule request: the rule, its run parameters and limits.
void PutRunRule(Out& o, const Rule& rule, const RunParams& params, const RunLimits& limits, SigmaSent& sent,
                RulesSent& rules_sent) {
  o.Str(rule.id);
  PutDefinition(o, rule, rules_sent);
  o.I64(params.now_ms);
  o.I64(params.last_run_ms);
  o.OptI64(params.scan_id);
  o.OptI64(params.prev_scan_id);
  PutLimits(o, limits.guard);
  o.I64(static_cast<int64_t>(limits.max_rows));
  PutDetection(o, rule, sent);
}

// One kRow of a rule as a JSON object keyed by `columns` (blobs as hex);
// nullopt when its width is not the number of columns. A truncated frame
// leaves `in` not ok.
std::optional<nlohmann::ordered_json> ReadRuleRow(In& in, const std::vector<std::string>& columns) {
  nlohmann::ordered_json row = nlohmann::ordered_json::object();
  const uint32_t n = in.U32();
  if (n != columns.size()) return std::nullopt;
  for (uint32_t i = 0; i < n && in.ok(); ++i) {
    const auto type = static_cast<WireCell::Type>(in.U8());
    auto& cell = row[columns[i]];
    switch (type) {
      case WireCell::Type::kInteger: cell = in.I64(); break;
      case WireCell::Type::kReal: cell = in.F64(); break;
      case WireCell::Type::kText: cell = in.Str(); break;
      case WireCell::Type::kBlob: {
        std::string b = in.Str();
        cell = crypto::ToHex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(b.data()), b.size()));
        break;
      }
      default: cell = nullptr; break;
    }
  }
  return row;
}

// ---- the worker process -------------------------------------------------

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Blocking read of one frame; nullopt on EOF or error.
std::optional<std::pair<uint8_t, std::string>> ReadFrameBlocking(int fd) {
  auto read_n = [fd](char* p, std::size_t n) {
    while (n > 0) {
      ssize_t r = ::read(fd, p, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  };
  uint32_t len = 0;
  if (!read_n(reinterpret_cast<char*>(&len), 4) || len == 0 || len > kMaxFrame) return std::nullopt;
  std::string body(len, '\0');
  if (!read_n(body.data(), len)) return std::nullopt;
  return std::make_pair(static_cast<uint8_t>(body[0]), body.substr(1));
}

void PutCell(Out& o, sqlite3_stmt* st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      o.U8(static_cast<uint8_t>(WireCell::Type::kInteger));
      o.I64(sqlite3_column_int64(st, i));
      break;
    case SQLITE_FLOAT:
      o.U8(static_cast<uint8_t>(WireCell::Type::kReal));
      o.F64(sqlite3_column_double(st, i));
      break;
    case SQLITE_TEXT: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
      const int n = sqlite3_column_bytes(st, i);
      o.U8(static_cast<uint8_t>(WireCell::Type::kText));
      o.Str(std::string_view(p ? p : "", p ? static_cast<std::size_t>(n) : 0));
      break;
    }
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(st, i));
      const int n = sqlite3_column_bytes(st, i);
      o.U8(static_cast<uint8_t>(WireCell::Type::kBlob));
      o.Str(std::string_view(p ? p : "", p ? static_cast<std::size_t>(n) : 0));
      break;
    }
    default: o.U8(static_cast<uint8_t>(WireCell::Type::kNull)); break;
  }
}

// The worker's answers, written in batches of up to 64 KiB or after 50 ms
// rather than one write per frame: the parent wakes once for many rows (or,
// for a kRunRules request, for many rules).
class Outbox {
 public:
  // False when the parent is gone.
  bool Add(const std::string& frame) {
    pending_ += frame;
    if (pending_.size() >= 65536 || MonotonicMs() - last_flush_ >= 50) return Flush();
    return true;
  }
  bool Flush() {
    last_flush_ = MonotonicMs();
    if (pending_.empty()) return true;
    const bool ok = WriteAll(kChannelFd, pending_);
    pending_.clear();
    return ok;
  }

 private:
  std::string pending_;
  int64_t last_flush_ = MonotonicMs();
};

// Steps `q` to the end, streaming rows into `box`; stops after max_rows
// (0 = no cap) with truncated set. `no_rows`: the result is known to be
// empty (the Sigma prefilter), only the columns and the end go out.
// `flush_columns`: the columns go out at once (a free query's caller waits
// for them). Returns false when the parent is gone.
bool StreamRows(GuardedQuery& q, std::size_t max_rows, const std::string& error_prefix, int64_t start_ms,
                Outbox& box, bool no_rows, bool flush_columns) {
  sqlite3_stmt* st = q.statement().raw();
  const int ncols = sqlite3_column_count(st);
  {
    Out cols(kColumns);
    cols.U32(static_cast<uint32_t>(ncols));
    for (int i = 0; i < ncols; ++i) {
      const char* name = sqlite3_column_name(st, i);
      cols.Str(name ? name : "");
    }
    if (!box.Add(cols.Take())) return false;
    if (flush_columns && !box.Flush()) return false;
  }
  std::size_t rows = 0;
  bool truncated = false;
  while (!no_rows) {
    auto more = q.Step();
    if (!more.ok()) {
      return box.Add(ErrorFrame(Status(more.status().code(), error_prefix + more.status().message())));
    }
    if (!*more) break;
    if (max_rows > 0 && rows >= max_rows) {
      truncated = true;
      break;
    }
    Out row(kRow);
    row.U32(static_cast<uint32_t>(ncols));
    for (int i = 0; i < ncols; ++i) PutCell(row, st, i);
    if (!box.Add(row.Take())) return false;
    ++rows;
  }
  Out done(kDone);
  done.U8(truncated ? 1 : 0);
  done.I64(MonotonicMs() - start_ms);
  return box.Add(done.Take());
}

// Compiled rule statements of this worker, by rule id, reused while the
// rule's query and dedup keys are the same (exec batches run the same rules
// every few hundred ms). Dropped when the snapshot is rebuilt.
struct CachedRule {
  std::string query;
  std::vector<std::string> dedup_keys;
  std::unique_ptr<GuardedQuery> statement;
};
struct RuleCache {
  std::map<std::string, CachedRule> compiled;
  // The definitions the parent sent, by rule id, for the worker's life
  // (PutDefinition).
  std::map<std::string, Rule> held;
};

// The rule a request names, as PutDefinition wrote it; nullptr when it
// claims a definition this worker was never sent.
const Rule* ReadDefinition(In& in, RuleCache& cache, std::string id) {
  const uint8_t mode = in.U8();
  if (mode == kKnownDefinition) {
    auto it = cache.held.find(id);
    return it == cache.held.end() ? nullptr : &it->second;
  }
  if (mode != kNewDefinition) return nullptr;
  Rule rule;
  rule.source_path = in.Str();
  rule.query = in.Str();
  const uint32_t nkeys = in.U32();
  for (uint32_t i = 0; i < nkeys && in.ok(); ++i) rule.dedup_keys.push_back(in.Str());
  rule.id = std::move(id);
  Rule& held = cache.held[rule.id];
  held = std::move(rule);
  return &held;
}

// The rule's statement, bound to `params` and armed with `limits`: from the
// cache when it holds this very rule, else compiled (and cached).
Result<GuardedQuery*> RuleStatement(storage::Database& db, RuleCache& rules, const Rule& rule,
                                    const RunParams& params, const GuardLimits& limits) {
  auto& cache = rules.compiled;
  auto it = cache.find(rule.id);
  if (it != cache.end() && it->second.query == rule.query && it->second.dedup_keys == rule.dedup_keys) {
    it->second.statement->Rearm(limits);
    RETURN_IF_ERROR(BindRuleParameters(rule, *it->second.statement, params));
    return it->second.statement.get();
  }
  if (it != cache.end()) cache.erase(it);
  ASSIGN_OR_RETURN(auto q, PrepareRule(db, rule, params, limits));
  GuardedQuery* raw = q.get();
  cache[rule.id] = CachedRule{rule.query, rule.dedup_keys, std::move(q)};
  return raw;
}

// The Sigma prefilter's view of the rows in exec_events (read once per batch
// or snapshot, for every Sigma rule) and the decoded detections by rule id.
struct SigmaState {
  std::optional<SigmaBatch> batch;  // nullopt: not read yet
  bool unusable = false;            // reading failed: run every SQL
  std::map<std::string, std::shared_ptr<const SigmaExpr>> detections;
  void NewRows() {
    batch.reset();
    unusable = false;
  }
};

// Reads a detection as PutDetection wrote it; nullptr when the rule has
// none, or the worker cannot use it (then its SQL runs).
std::shared_ptr<const SigmaExpr> ReadDetection(In& in, SigmaState& sigma, const std::string& rule_id) {
  const uint8_t mode = in.U8();
  if (mode == kKnownDetection) {
    auto it = sigma.detections.find(rule_id);
    return it == sigma.detections.end() ? nullptr : it->second;
  }
  if (mode != kNewDetection) {
    sigma.detections.erase(rule_id);
    return nullptr;
  }
  auto decoded = DecodePreparedSigmaExpr(in.Str());
  if (!decoded.ok()) {
    sigma.detections.erase(rule_id);
    return nullptr;
  }
  auto expr = std::make_shared<const SigmaExpr>(std::move(*decoded));
  sigma.detections[rule_id] = expr;
  return expr;
}

// True when `expr` matches no row of exec_events: the rule's SQL would
// return nothing. False whenever that is not certain (no detection, the
// rows could not be read).
bool SigmaRulesOutBatch(storage::Database& db, SigmaState& sigma, const SigmaExpr* expr) {
  if (!expr || sigma.unusable) return false;
  if (!sigma.batch) {
    auto batch = ReadSigmaEvents(db);
    if (!batch.ok()) {
      sigma.unusable = true;
      return false;
    }
    sigma.batch = std::move(*batch);
  }
  return !AnySigmaMatch(*expr, *sigma.batch);
}

// kSigmaFilter: a count, then (rule id, detection) each; answers kReady
// with a byte per rule, 0 when its SQL would return nothing over the rows.
bool WorkerSigmaFilter(storage::Database& db, In& in, SigmaState& sigma) {
  const uint32_t n = in.U32();
  std::string verdicts;
  for (uint32_t i = 0; i < n && in.ok(); ++i) {
    const std::string id = in.Str();
    auto expr = ReadDetection(in, sigma, id);
    verdicts.push_back(SigmaRulesOutBatch(db, sigma, expr.get()) ? 0 : 1);
  }
  if (!in.ok() || verdicts.size() != n)
    return WriteAll(kChannelFd, ErrorFrame(InternalError("query worker: malformed Sigma filter request")));
  Out o(kReady);
  o.Str(verdicts);
  return WriteAll(kChannelFd, o.Take());
}

// One rule request's body from `in`, its answer into `box`. False when the
// parent is gone.
bool WorkerRunRule(storage::Database& db, In& in, RuleCache& cache, SigmaState& sigma, Outbox& box,
                   bool flush_columns) {
  const int64_t start = MonotonicMs();
  const Rule* held = ReadDefinition(in, cache, in.Str());
  if (!held) return box.Add(ErrorFrame(InternalError("query worker: a rule request names no rule it holds")));
  const Rule& rule = *held;
  RunParams params;
  params.now_ms = in.I64();
  params.last_run_ms = in.I64();
  params.scan_id = in.OptI64();
  params.prev_scan_id = in.OptI64();
  GuardLimits limits = GetLimits(in);
  const int64_t max_rows = in.I64();
  auto detection = ReadDetection(in, sigma, rule.id);
  if (!in.ok()) return box.Add(ErrorFrame(InternalError("query worker: malformed rule request")));
  auto q = RuleStatement(db, cache, rule, params, limits);
  if (!q.ok()) return box.Add(ErrorFrame(q.status()));
  const bool none = SigmaRulesOutBatch(db, sigma, detection.get());
  const bool ok = StreamRows(**q, static_cast<std::size_t>(std::max<int64_t>(max_rows, 0)),
                             "rule " + rule.id + ": ", start, box, none, flush_columns);
  // Not left active: the next batch rewrites exec_events.
  sqlite3_reset((*q)->statement().raw());
  return ok;
}

Status BindQueryParams(storage::Statement& st, const std::map<std::string, QueryParam>& user,
                       const std::map<std::string, QueryParam>& defaults) {
  auto bind = [&](int i, const QueryParam& p) {
    switch (p.type) {
      case QueryParam::Type::kInteger: return st.BindInt(i, p.integer);
      case QueryParam::Type::kText: return st.BindText(i, p.text);
      default: return st.BindOptionalInt(i, std::nullopt);
    }
  };
  std::map<std::string, bool> used;
  const int n = sqlite3_bind_parameter_count(st.raw());
  for (int i = 1; i <= n; ++i) {
    const char* raw_name = sqlite3_bind_parameter_name(st.raw(), i);
    if (!raw_name) {
      return InvalidArgumentError("positional parameter ?" + std::to_string(i) +
                                  " cannot be bound; use a named parameter (:name) and --param name=VALUE");
    }
    const std::string name = raw_name + 1;
    if (auto it = user.find(name); it != user.end()) {
      used[name] = true;
      RETURN_IF_ERROR(bind(i, it->second));
    } else if (auto d = defaults.find(name); d != defaults.end()) {
      RETURN_IF_ERROR(bind(i, d->second));
    } else {
      return InvalidArgumentError("parameter " + std::string(raw_name) + " has no value (use --param " +
                                  name + "=VALUE)");
    }
  }
  for (const auto& [name, v] : user) {
    if (!used.count(name)) {
      return InvalidArgumentError("--param " + name + ": the query has no parameter :" + name);
    }
  }
  return Status::Ok();
}

bool WorkerRunQuery(storage::Database& db, In& in) {
  const int64_t start = MonotonicMs();
  std::string sql = in.Str();
  std::map<std::string, QueryParam> user, defaults;
  for (uint32_t i = 0, n = in.U32(); i < n && in.ok(); ++i) {
    std::string name = in.Str();
    user[name] = GetParam(in);
  }
  for (uint32_t i = 0, n = in.U32(); i < n && in.ok(); ++i) {
    std::string name = in.Str();
    defaults[name] = GetParam(in);
  }
  GuardLimits limits = GetLimits(in);
  if (!in.ok())
    return WriteAll(kChannelFd, ErrorFrame(InternalError("query worker: malformed query request")));
  auto q = GuardedQuery::Prepare(db, sql, limits);
  if (!q.ok()) return WriteAll(kChannelFd, ErrorFrame(q.status()));
  if (Status s = BindQueryParams((*q)->statement(), user, defaults); !s.ok()) {
    return WriteAll(kChannelFd, ErrorFrame(s));
  }
  Outbox box;
  return StreamRows(**q, 0, "", start, box, false, true) && box.Flush();
}

// The scan the worker's `processes` snapshot holds (its exec_events too,
// until a batch replaces them).
struct WorkerSnapshot {
  bool built = false;
  std::optional<int64_t> scan_id;
};

// The schema versions of the store and of the temp tables; nullopt when
// one cannot be read.
std::optional<std::pair<int64_t, int64_t>> SchemaVersions(storage::Database& db) {
  auto main_version = db.QueryInt("PRAGMA main.schema_version");
  auto temp_version = db.QueryInt("PRAGMA temp.schema_version");
  if (!main_version.ok() || !temp_version.ok()) return std::nullopt;
  return std::make_pair(main_version->value_or(0), temp_version->value_or(0));
}

// kLoadExecBatch: after_id, up_to_id, the latest scan id. Rebuilds the
// snapshot only when the scan changed, then loads the batch; answers kReady
// with the number of exec rows.
bool WorkerLoadExecBatch(storage::Database& db, In& in, WorkerSnapshot& snap, RuleCache& cache,
                         SigmaState& sigma) {
  const int64_t after_id = in.I64();
  const int64_t up_to_id = in.I64();
  const std::optional<int64_t> scan_id = in.OptI64();
  if (!in.ok())
    return WriteAll(kChannelFd, ErrorFrame(InternalError("query worker: malformed batch request")));
  if (!snap.built || snap.scan_id != scan_id) {
    // A compiled rule stays only while the schema does: SQLite would
    // prepare it again by itself, without the sandbox's authorizer.
    const auto before = SchemaVersions(db);
    Status s = PrepareRuleSnapshot(db, scan_id);
    if (!s.ok() || !before || before != SchemaVersions(db)) cache.compiled.clear();
    if (!s.ok()) return WriteAll(kChannelFd, ErrorFrame(s));
    snap = {true, scan_id};
  }
  sigma.NewRows();
  auto rows = LoadExecBatch(db, after_id, up_to_id);
  if (!rows.ok()) return WriteAll(kChannelFd, ErrorFrame(rows.status()));
  Out o(kReady);
  o.I64(*rows);
  return WriteAll(kChannelFd, o.Take());
}

// Everything up to the filter: open, snapshot, warm-up.
Result<std::unique_ptr<storage::Database>> WorkerSetUp(In& in, WorkerSnapshot* snap) {
  const std::string path = in.Str();
  const int64_t busy = in.I64();
  const bool snapshot = in.U8() != 0;
  const std::optional<int64_t> scan_id = in.OptI64();
  *snap = {snapshot, scan_id};
  const int64_t ceiling = in.I64();
  const std::optional<int64_t> exec_since = in.OptI64();
  if (!in.ok()) return InternalError("query worker: malformed setup request");
  SetMemoryCeiling(ceiling > 0 ? ceiling : kDefaultMemoryCeiling);
  ASSIGN_OR_RETURN(auto db, storage::OpenStore(storage::DatabaseKind::kEvents,
                                               {path, storage::OpenMode::kReadOnly, busy}));
  if (snapshot) {
    RETURN_IF_ERROR(PrepareRuleSnapshot(*db, scan_id, exec_since));
  } else {
    // No temp file may be needed once the filter is on.
    RETURN_IF_ERROR(db->Exec("PRAGMA temp_store=MEMORY"));
  }
  // Opens the -wal and -shm files and reads the schema now: after the
  // filter no file can be opened.
  RETURN_IF_ERROR(db->QueryInt("SELECT count(*) FROM sqlite_schema").status());
  for (const char* warm : {"SELECT * FROM json_each('[]')", "SELECT * FROM json_tree('[]')"}) {
    sqlite3_exec(db->raw(), warm, nullptr, nullptr, nullptr);
  }
  // Defence in depth beside the guard's per-query limit.
  sqlite3_limit(db->raw(), SQLITE_LIMIT_LENGTH, GuardLimits{}.max_length);
  return db;
}

int WorkerMain(pid_t parent) {
  // Dies with its parent; exits at once if the parent is already gone.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) return 1;
  ::signal(SIGPIPE, SIG_IGN);
  // Nothing of the parent's but the channel and stdio.
  ::close_range(kChannelFd + 1, ~0u, 0);
  auto setup = ReadFrameBlocking(kChannelFd);
  if (!setup || setup->first != kSetup) return 1;
  In in(setup->second);
  WorkerSnapshot snap;
  auto db = WorkerSetUp(in, &snap);
  if (db.ok()) {
    if (Status s = InstallQueryWorkerFilter(kChannelFd); !s.ok()) db = s;
  }
  if (!db.ok()) {
    WriteAll(kChannelFd, ErrorFrame(db.status()));
    return 1;
  }
  if (!WriteAll(kChannelFd, Out(kReady).Take())) return 1;
  RuleCache cache;
  SigmaState sigma;
  while (true) {
    auto frame = ReadFrameBlocking(kChannelFd);
    if (!frame) return 0;  // the parent is done
    In req(frame->second);
    bool ok = false;
    if (frame->first == kRunRule) {
      Outbox box;
      ok = WorkerRunRule(**db, req, cache, sigma, box, true) && box.Flush();
    } else if (frame->first == kRunRules) {
      // Several rules in one request, their answers in order (a kError
      // ends a rule's answer like a kDone); written together where they
      // are small and quick.
      Outbox box;
      ok = true;
      for (uint32_t i = 0, n = req.U32(); ok && i < n; ++i)
        ok = WorkerRunRule(**db, req, cache, sigma, box, false);
      ok = ok && box.Flush();
    } else if (frame->first == kRunQuery) {
      ok = WorkerRunQuery(**db, req);
    } else if (frame->first == kLoadExecBatch) {
      ok = WorkerLoadExecBatch(**db, req, snap, cache, sigma);
    } else if (frame->first == kSigmaFilter) {
      ok = WorkerSigmaFilter(**db, req, sigma);
    }
    if (!ok) return 1;
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "ended";
}

}  // namespace

std::optional<int> RunQueryWorkerIfRequested(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]) != kQueryWorkerArg) {
    char buf[PATH_MAX];
    const ssize_t n = ::readlink(kSelfExe, buf, sizeof(buf) - 1);
    if (n > 0) SelfExePath().assign(buf, static_cast<size_t>(n));
    return std::nullopt;
  }
  if (argc != 3) return 2;
  auto parent = ParseInt64(argv[2]);
  if (!parent) return 2;
  // _exit: no exit handlers (a sanitizer's leak check would clone, which
  // the filter forbids), nothing buffered to flush.
  ::_exit(WorkerMain(static_cast<pid_t>(*parent)));
}

// ---- the parent side ----------------------------------------------------

Result<std::unique_ptr<QueryWorker>> QueryWorker::Start(const WorkerSetup& setup) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return UnavailableError(std::string("query worker: socketpair: ") + std::strerror(errno));
  }
  int child_end = sv[1];
  if (child_end <= kChannelFd) {
    // dup2 onto itself would keep close-on-exec: move it out of the way.
    child_end = ::fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    ::close(sv[1]);
    if (child_end < 0) {
      ::close(sv[0]);
      return UnavailableError(std::string("query worker: fcntl: ") + std::strerror(errno));
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, child_end, kChannelFd);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  // Its own process group: a terminal's ^C goes to the parent, which decides.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  const std::string parent = std::to_string(::getpid());
  // argv[0] as the parent's, so `ps` names the program.
  std::string name = program_invocation_name ? program_invocation_name : kSelfExe;
  std::string flag(kQueryWorkerArg);
  char* argv[] = {name.data(), flag.data(), const_cast<char*>(parent.c_str()), nullptr};
  pid_t pid = -1;
  const std::string& self = SelfExePath();
  const int rc = posix_spawn(&pid, self.empty() ? kSelfExe : self.c_str(), &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(child_end);
  if (rc != 0) {
    ::close(sv[0]);
    return UnavailableError("query worker: cannot start " + (self.empty() ? std::string(kSelfExe) : self) +
                            ": " + std::strerror(rc));
  }
  std::unique_ptr<QueryWorker> w(new QueryWorker());
  w->pid_ = pid;
  w->fd_ = sv[0];

  Out o(kSetup);
  o.Str(setup.database_path);
  o.I64(setup.busy_timeout_ms);
  o.U8(setup.rule_snapshot ? 1 : 0);
  o.OptI64(setup.scan_id);
  o.I64(setup.memory_ceiling);
  o.OptI64(setup.exec_since_scan);
  RETURN_IF_ERROR(w->Send(o.Take()));
  const int64_t bound = setup.start_timeout_ms > 0 ? setup.start_timeout_ms : 30'000;
  ASSIGN_OR_RETURN(auto frame, w->Receive(MonotonicMs() + bound, bound));
  if (frame.first == kError) return w->Fail(StatusFromFrame(frame.second));
  if (frame.first != kReady) return w->Fail(InternalError("query worker: unexpected frame at start"));
  return w;
}

QueryWorker::~QueryWorker() {
  {
    std::lock_guard<std::mutex> lock(kill_mu_);
    KillLocked();
  }
  if (fd_ >= 0) ::close(fd_);
}

void QueryWorker::KillLocked() {
  if (pid_ <= 0 || reaped_) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

void QueryWorker::Cancel() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(kill_mu_);
  if (pid_ > 0 && !reaped_) ::kill(pid_, SIGKILL);  // reaped by the owner
}

Status QueryWorker::Fail(Status s) {
  usable_ = false;
  streaming_ = false;
  std::lock_guard<std::mutex> lock(kill_mu_);
  KillLocked();
  return s;
}

Status QueryWorker::Send(std::string_view frame) {
  while (!frame.empty()) {
    ssize_t n = ::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (cancelled_) return Fail(UnavailableError("query stopped: the worker was stopped"));
      return Fail(
          UnavailableError(std::string("query worker: cannot send the request: ") + std::strerror(errno)));
    }
    frame.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

Result<std::pair<uint8_t, std::string>> QueryWorker::Receive(int64_t deadline_ms, int64_t timeout_ms) {
  while (true) {
    ASSIGN_OR_RETURN(auto frame, TakeFrame());
    if (frame) return std::move(*frame);
    RETURN_IF_ERROR(ReadMore(deadline_ms, timeout_ms));
  }
}

Result<std::optional<QueryWorker::Frame>> QueryWorker::TakeFrame() {
  const std::size_t avail = buffer_.size() - pos_;
  if (avail < 4) return std::optional<Frame>();
  uint32_t len = 0;
  std::memcpy(&len, buffer_.data() + pos_, 4);
  if (len == 0 || len > kMaxFrame) return Fail(InternalError("query worker: malformed frame"));
  if (avail < 4 + static_cast<std::size_t>(len)) return std::optional<Frame>();
  Frame out{static_cast<uint8_t>(buffer_[pos_ + 4]), buffer_.substr(pos_ + 5, len - 1)};
  pos_ += 4 + len;
  if (pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  }
  return std::optional<Frame>(std::move(out));
}

Status QueryWorker::ReadMore(int64_t deadline_ms, int64_t timeout_ms) {
  if (pos_ > 0) {
    // Keep only the partial frame before reading more.
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  const int64_t left = deadline_ms - MonotonicMs();
  if (left <= 0) {
    return Fail(DeadlineExceededError("query stopped: exceeded its time limit of " +
                                      std::to_string(timeout_ms) + " ms (the query worker was killed)"));
  }
  pollfd pfd{fd_, POLLIN, 0};
  const int pr = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
  if (pr < 0 && errno != EINTR) {
    return Fail(UnavailableError(std::string("query worker: poll: ") + std::strerror(errno)));
  }
  if (pr <= 0) return Status::Ok();
  char chunk[65536];
  const ssize_t n = ::read(fd_, chunk, sizeof chunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return Status::Ok();
  if (n > 0) {
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return Status::Ok();
  }
  return WorkerGone();
}

Status QueryWorker::WorkerGone() {
  usable_ = false;
  streaming_ = false;
  if (cancelled_) {
    std::lock_guard<std::mutex> lock(kill_mu_);
    KillLocked();
    return UnavailableError("query stopped: the worker was stopped");
  }
  int status = 0;
  std::lock_guard<std::mutex> lock(kill_mu_);
  if (!reaped_) {
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  return UnavailableError("query worker " + DescribeExit(status) + " during the query");
}

Result<RuleResult> QueryWorker::RunRule(const Rule& rule, const RunParams& params, const RunLimits& limits) {
  if (!usable()) return UnavailableError("query worker: not usable");
  Out o(kRunRule);
  PutRunRule(o, rule, params, limits, sigma_sent_, rules_sent_);
  const int64_t start = MonotonicMs();
  SetRuleDeadline(start, limits);
  RETURN_IF_ERROR(Send(o.Take()));
  return ReceiveRuleResult(rule, start);
}

void QueryWorker::SetRuleDeadline(int64_t start, const RunLimits& limits) {
  timeout_ms_ = limits.guard.timeout_ms;
  // The guard's clock starts at the first step, after the compile; the
  // grace covers that and the worker's own clean stop.
  deadline_ms_ = timeout_ms_ > 0 ? start + timeout_ms_ + kWorkerKillGraceMs : INT64_MAX;
}

std::vector<Result<RuleResult>> QueryWorker::RunRules(const std::vector<const Rule*>& rules,
                                                      const RunParams& params, const RunLimits& limits) {
  std::vector<Result<RuleResult>> out;
  out.reserve(rules.size());
  auto rest_unavailable = [&] {
    while (out.size() < rules.size()) out.emplace_back(UnavailableError(std::string(kNotRunMessage)));
    return out;
  };
  if (!usable()) return rest_unavailable();
  Out o(kRunRules);
  o.U32(static_cast<uint32_t>(rules.size()));
  for (const Rule* r : rules) PutRunRule(o, *r, params, limits, sigma_sent_, rules_sent_);
  SetRuleDeadline(MonotonicMs(), limits);
  if (Status s = Send(o.Take()); !s.ok()) {
    out.emplace_back(s);
    return rest_unavailable();
  }
  for (const Rule* r : rules) {
    // Each rule has its own deadline, from when the one before it ended
    // (as the parent saw it: the worker writes answers in batches).
    out.push_back(ReceiveRuleResult(*r, -1));
    if (!usable()) return rest_unavailable();
    SetRuleDeadline(MonotonicMs(), limits);
  }
  return out;
}

bool QueryWorker::NotRun(const Status& s) {
  return s.code() == StatusCode::kUnavailable && s.message() == kNotRunMessage;
}

Result<RuleResult> QueryWorker::ReceiveRuleResult(const Rule& rule, int64_t start) {
  auto with_rule = [&](Status s) { return Status(s.code(), "rule " + rule.id + ": " + s.message()); };
  RuleResult result;
  while (true) {
    auto frame = Receive(deadline_ms_, timeout_ms_);
    if (!frame.ok()) return with_rule(frame.status());
    In in(frame->second);
    switch (frame->first) {
      case kError: return StatusFromFrame(frame->second);
      case kColumns:
        for (uint32_t i = 0, n = in.U32(); i < n && in.ok(); ++i) result.columns.push_back(in.Str());
        break;
      case kRow: {
        auto row = ReadRuleRow(in, result.columns);
        if (!row) return Fail(InternalError("query worker: row width mismatch"));
        result.rows.push_back(std::move(*row));
        break;
      }
      case kDone:
        result.truncated = in.U8() != 0;
        // The worker's own time when answers came in a batch (start < 0).
        result.duration_ms = in.I64();
        if (start >= 0) result.duration_ms = MonotonicMs() - start;
        if (!in.ok()) return Fail(InternalError("query worker: malformed frame"));
        return result;
      default: return Fail(InternalError("query worker: unexpected frame"));
    }
    if (!in.ok()) return Fail(InternalError("query worker: malformed frame"));
  }
}

Result<std::string> QueryWorker::Ask(const std::string& request, int64_t timeout_ms) {
  timeout_ms_ = timeout_ms;
  deadline_ms_ = timeout_ms > 0 ? MonotonicMs() + timeout_ms + kWorkerKillGraceMs : INT64_MAX;
  RETURN_IF_ERROR(Send(request));
  ASSIGN_OR_RETURN(auto frame, Receive(deadline_ms_, timeout_ms_));
  if (frame.first == kError) return StatusFromFrame(frame.second);
  if (frame.first != kReady) return Fail(InternalError("query worker: unexpected frame"));
  return std::move(frame.second);
}

Result<std::vector<bool>> QueryWorker::SigmaCandidates(const std::vector<Rule>& rules, int64_t timeout_ms) {
  std::vector<const Rule*> refs;
  refs.reserve(rules.size());
  for (const auto& r : rules) refs.push_back(&r);
  return SigmaCandidates(refs, timeout_ms);
}

Result<std::vector<bool>> QueryWorker::SigmaCandidates(const std::vector<const Rule*>& rules,
                                                       int64_t timeout_ms) {
  if (!usable()) return UnavailableError("query worker: not usable");
  Out o(kSigmaFilter);
  o.U32(static_cast<uint32_t>(rules.size()));
  for (const Rule* r : rules) {
    o.Str(r->id);
    PutDetection(o, *r, sigma_sent_);
  }
  ASSIGN_OR_RETURN(std::string reply, Ask(o.Take(), timeout_ms));
  In in(reply);
  const std::string verdicts = in.Str();
  if (!in.ok() || verdicts.size() != rules.size())
    return Fail(InternalError("query worker: malformed frame"));
  std::vector<bool> out;
  out.reserve(verdicts.size());
  for (char v : verdicts) out.push_back(v != 0);
  return out;
}

Result<int64_t> QueryWorker::LoadExecBatch(int64_t after_id, int64_t up_to_id, std::optional<int64_t> scan_id,
                                           int64_t timeout_ms) {
  if (!usable()) return UnavailableError("query worker: not usable");
  Out o(kLoadExecBatch);
  o.I64(after_id);
  o.I64(up_to_id);
  o.OptI64(scan_id);
  ASSIGN_OR_RETURN(std::string reply, Ask(o.Take(), timeout_ms));
  In in(reply);
  const int64_t rows = in.I64();
  if (!in.ok()) return Fail(InternalError("query worker: malformed frame"));
  return rows;
}

Result<std::vector<std::string>> QueryWorker::BeginQuery(const QueryRequest& request) {
  if (!usable()) return UnavailableError("query worker: not usable");
  Out o(kRunQuery);
  o.Str(request.sql);
  o.U32(static_cast<uint32_t>(request.user_params.size()));
  for (const auto& [name, p] : request.user_params) {
    o.Str(name);
    PutParam(o, p);
  }
  o.U32(static_cast<uint32_t>(request.default_params.size()));
  for (const auto& [name, p] : request.default_params) {
    o.Str(name);
    PutParam(o, p);
  }
  PutLimits(o, request.limits);
  timeout_ms_ = request.limits.timeout_ms;
  deadline_ms_ = timeout_ms_ > 0 ? MonotonicMs() + timeout_ms_ + kWorkerKillGraceMs : INT64_MAX;
  RETURN_IF_ERROR(Send(o.Take()));
  ASSIGN_OR_RETURN(auto frame, Receive(deadline_ms_, timeout_ms_));
  if (frame.first == kError) return StatusFromFrame(frame.second);
  if (frame.first != kColumns) return Fail(InternalError("query worker: unexpected frame"));
  In in(frame.second);
  std::vector<std::string> columns;
  for (uint32_t i = 0, n = in.U32(); i < n && in.ok(); ++i) columns.push_back(in.Str());
  if (!in.ok()) return Fail(InternalError("query worker: malformed frame"));
  streaming_ = true;
  return columns;
}

Result<bool> QueryWorker::NextRow(std::vector<WireCell>* row) {
  if (!streaming_) return false;
  ASSIGN_OR_RETURN(auto frame, Receive(deadline_ms_, timeout_ms_));
  In in(frame.second);
  switch (frame.first) {
    case kError: streaming_ = false; return StatusFromFrame(frame.second);
    case kDone: streaming_ = false; return false;
    case kRow: {
      const uint32_t n = in.U32();
      row->resize(n);
      for (uint32_t i = 0; i < n && in.ok(); ++i) {
        WireCell& c = (*row)[i];
        c.type = static_cast<WireCell::Type>(in.U8());
        switch (c.type) {
          case WireCell::Type::kInteger: c.integer = in.I64(); break;
          case WireCell::Type::kReal: c.real = in.F64(); break;
          case WireCell::Type::kText:
          case WireCell::Type::kBlob: c.bytes = in.Str(); break;
          default: c.type = WireCell::Type::kNull; break;
        }
      }
      if (!in.ok()) return Fail(InternalError("query worker: malformed frame"));
      return true;
    }
    default: return Fail(InternalError("query worker: unexpected frame"));
  }
}

Result<std::map<std::string, QueryParam>> StandardQueryParams(storage::Database& db, int64_t now_ms) {
  RunParams run;
  RETURN_IF_ERROR(FillScanIds(db, &run));
  auto integer = [](std::optional<int64_t> v) {
    QueryParam p;
    if (v) {
      p.type = QueryParam::Type::kInteger;
      p.integer = *v;
    }
    return p;
  };
  return std::map<std::string, QueryParam>{{"now_ms", integer(now_ms)},
                                           {"last_run_ms", integer(0)},
                                           {"scan_id", integer(run.scan_id)},
                                           {"prev_scan_id", integer(run.prev_scan_id)}};
}

}  // namespace sentinel::detection
