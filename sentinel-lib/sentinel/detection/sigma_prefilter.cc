#include "sentinel/detection/sigma_prefilter.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>

#include "sentinel/detection/regexp_function.h"

namespace sentinel::detection {
namespace {

// Deeper trees are refused (the parser's own limits keep real rules far below).
constexpr int kMaxDepth = 64;

void PutU32(std::string* out, uint32_t v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

void PutStr(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  uint8_t U8() {
    if (s_.empty()) return Fail(), 0;
    const auto v = static_cast<uint8_t>(s_.front());
    s_.remove_prefix(1);
    return v;
  }
  uint32_t U32() { return Fixed<uint32_t>(); }
  int64_t I64() { return Fixed<int64_t>(); }
  std::string Str() {
    const uint32_t n = U32();
    if (!ok_ || n > s_.size()) return Fail(), std::string();
    std::string v(s_.substr(0, n));
    s_.remove_prefix(n);
    return v;
  }
  bool ok() const { return ok_; }
  bool done() const { return s_.empty(); }
  void Fail() { ok_ = false; }

 private:
  template <typename T>
  T Fixed() {
    T v{};
    if (s_.size() < sizeof v) return Fail(), T{};
    std::memcpy(&v, s_.data(), sizeof v);
    s_.remove_prefix(sizeof v);
    return v;
  }
  std::string_view s_;
  bool ok_ = true;
};

void EncodePredicate(const SigmaPredicate& p, std::string* out) {
  out->push_back(static_cast<char>(p.field));
  out->push_back(static_cast<char>(p.kind));
  PutU32(out, static_cast<uint32_t>(p.tokens.size()));
  for (const auto& t : p.tokens) {
    out->push_back(static_cast<char>(t.kind));
    PutStr(out, t.text);
  }
  out->push_back(p.cased ? 1 : 0);
  PutStr(out, p.regex);
  out->push_back(p.exists ? 1 : 0);
  out->append(reinterpret_cast<const char*>(&p.number), sizeof p.number);
}

Status DecodePredicate(Reader& in, SigmaPredicate* p) {
  const uint8_t field = in.U8(), kind = in.U8();
  if (field >= kSigmaFieldCount || kind > static_cast<uint8_t>(SigmaPredicate::Kind::kNumber)) in.Fail();
  p->field = static_cast<SigmaField>(field);
  p->kind = static_cast<SigmaPredicate::Kind>(kind);
  const uint32_t ntokens = in.U32();
  for (uint32_t i = 0; i < ntokens && in.ok(); ++i) {
    SigmaToken t;
    const uint8_t tk = in.U8();
    if (tk > static_cast<uint8_t>(SigmaToken::Kind::kAnyChar)) in.Fail();
    t.kind = static_cast<SigmaToken::Kind>(tk);
    t.text = in.Str();
    p->tokens.push_back(std::move(t));
  }
  p->cased = in.U8() != 0;
  p->regex = in.Str();
  p->exists = in.U8() != 0;
  p->number = in.I64();
  if (!in.ok()) return InternalError("query worker: malformed Sigma detection");
  if (p->kind == SigmaPredicate::Kind::kRegex) {
    ASSIGN_OR_RETURN(p->compiled, CompileRegexp(p->regex));
  }
  return Status::Ok();
}

Status Decode(Reader& in, int depth, SigmaExpr* e) {
  if (depth > kMaxDepth) return InternalError("query worker: Sigma detection nested too deeply");
  const uint8_t op = in.U8();
  if (op > static_cast<uint8_t>(SigmaExpr::Op::kPredicate)) in.Fail();
  e->op = static_cast<SigmaExpr::Op>(op);
  if (!in.ok()) return InternalError("query worker: malformed Sigma detection");
  if (e->op == SigmaExpr::Op::kPredicate) return DecodePredicate(in, &e->predicate);
  const uint32_t n = in.U32();
  const bool arity_ok = e->op == SigmaExpr::Op::kNot ? n == 1 : n >= 1;
  if (!in.ok() || !arity_ok) return InternalError("query worker: malformed Sigma detection");
  e->children.resize(n > 1'000'000 ? 0 : n);
  if (e->children.size() != n) return InternalError("query worker: malformed Sigma detection");
  for (auto& c : e->children) RETURN_IF_ERROR(Decode(in, depth + 1, &c));
  return Status::Ok();
}

}  // namespace

void EncodeSigmaExpr(const SigmaExpr& e, std::string* out) {
  out->push_back(static_cast<char>(e.op));
  if (e.op == SigmaExpr::Op::kPredicate) {
    EncodePredicate(e.predicate, out);
    return;
  }
  PutU32(out, static_cast<uint32_t>(e.children.size()));
  for (const auto& c : e.children) EncodeSigmaExpr(c, out);
}

Result<SigmaExpr> DecodeSigmaExpr(std::string_view bytes) {
  Reader in(bytes);
  SigmaExpr e;
  RETURN_IF_ERROR(Decode(in, 0, &e));
  if (!in.done()) return InternalError("query worker: malformed Sigma detection (trailing bytes)");
  return e;
}

Result<SigmaExpr> DecodePreparedSigmaExpr(std::string_view bytes) {
  ASSIGN_OR_RETURN(SigmaExpr e, DecodeSigmaExpr(bytes));
  PrepareSigmaExpr(&e);
  return e;
}

Result<SigmaBatch> ReadSigmaEvents(storage::Database& db) {
  std::string sql = "SELECT ";
  for (std::size_t f = 0; f < kSigmaFieldCount; ++f) {
    sql += (f ? ", " : "") + std::string(SigmaFieldColumn(static_cast<SigmaField>(f)));
  }
  sql += " FROM exec_events";
  ASSIGN_OR_RETURN(auto st, db.Prepare(sql));
  std::vector<SigmaEvent> events;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    SigmaEvent& e = events.emplace_back();
    for (std::size_t f = 0; f < kSigmaFieldCount; ++f) {
      const int i = static_cast<int>(f);
      // SQLite's text of the value, as the SQL's LIKE / regexp() read it.
      if (st.ColumnType(i) == SQLITE_NULL) continue;
      e[f] = st.ColumnText(i);
      // LIKE stops at a NUL, regexp() does not: such a batch runs the SQL alone.
      if (e[f]->find('\0') != std::string::npos) {
        return FailedPreconditionError("an exec_events value holds a NUL byte");
      }
    }
  }
  SigmaBatch batch;
  batch.folded.reserve(events.size());
  for (const auto& e : events) batch.folded.push_back(FoldSigmaEvent(e));
  batch.events = std::move(events);
  return batch;
}

bool AnySigmaMatch(const SigmaExpr& expr, const SigmaBatch& batch) {
  for (std::size_t i = 0; i < batch.events.size(); ++i) {
    if (EvaluateSigma(expr, batch.events[i], batch.folded[i])) return true;
  }
  return false;
}

}  // namespace sentinel::detection
