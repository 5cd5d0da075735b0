#include "sentinel/fleet/envelope.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <limits>

#include "sentinel/base/hex.h"
#include "sentinel/base/strings.h"

namespace sentinel::fleet {
namespace {

using nlohmann::json;

Refusal Refuse(RefusalCode code, std::string message) {
  return Refusal{code, std::move(message)};
}

void RandomBytes(std::span<uint8_t> out) {
  // sodium_init is idempotent and thread-safe; it fails only without a
  // random source, and randombytes_buf then aborts rather than return
  // predictable bytes.
  [[maybe_unused]] const int ready = sodium_init();
  randombytes_buf(out.data(), out.size());
}

bool IsLowerHex(std::string_view s, std::size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Compact JSON that survives invalid UTF-8 in its strings (U+FFFD).
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Reads a required field of a given JSON type; false when absent or of another type.
template <typename T>
bool Field(const json& j, const char* name, T* out) {
  auto it = j.find(name);
  if (it == j.end()) return false;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return false;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return false;
  } else {
    if (!it->is_number_integer()) return false;
  }
  *out = it->get<T>();
  return true;
}

constexpr std::array<const char*, 7> kEnvelopeFields = {"v",     "kind",    "key", "issued_at",
                                                        "nonce", "payload", "sig"};

bool IsIdToken(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

}  // namespace

std::string_view EnvelopeKindName(EnvelopeKind kind) {
  return kind == EnvelopeKind::kQuery ? "query" : "bundle";
}

std::size_t MaxEnvelopeBytes(EnvelopeKind kind) {
  return kind == EnvelopeKind::kQuery ? kMaxQueryEnvelopeBytes : kMaxBundleEnvelopeBytes;
}

std::string_view RefusalCodeName(RefusalCode code) {
  switch (code) {
    case RefusalCode::kOversized: return "oversized";
    case RefusalCode::kMalformed: return "malformed";
    case RefusalCode::kUntrustedKey: return "untrusted_key";
    case RefusalCode::kBadSignature: return "bad_signature";
    case RefusalCode::kExpired: return "expired";
    case RefusalCode::kFromFuture: return "from_future";
    case RefusalCode::kReplayed: return "replayed";
    case RefusalCode::kNotSelect: return "not_select";
    case RefusalCode::kBadRule: return "bad_rule";
    case RefusalCode::kInternal: return "internal";
  }
  return "internal";
}

std::string SigningInput(std::string_view kind, std::string_view key_hex, int64_t issued_at,
                         std::string_view nonce, std::string_view payload) {
  std::string in;
  in.reserve(kSigningDomain.size() + kind.size() + key_hex.size() + nonce.size() + payload.size() + 32);
  in.append(kSigningDomain).append("\n");
  in.append(kind).append("\n");
  in.append(key_hex).append("\n");
  in.append(std::to_string(issued_at)).append("\n");
  in.append(nonce).append("\n");
  in.append(payload);
  return in;
}

crypto::Blake3Digest SigningDigest(std::string_view kind, std::string_view key_hex, int64_t issued_at,
                                   std::string_view nonce, std::string_view payload) {
  crypto::Blake3Hasher h;
  h.Update(SigningInput(kind, key_hex, issued_at, nonce, payload));
  return h.Finalize();
}

std::string NewNonce() {
  std::array<uint8_t, kNonceHexLen / 2> b{};
  RandomBytes(b);
  return ToHex(b);
}

std::string NewUuid() {
  std::array<uint8_t, 16> b{};
  RandomBytes(b);
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string h = ToHex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
         h.substr(20);
}

std::string EnvelopeToJson(const Envelope& e) {
  json j = json::object();
  j["v"] = e.v;
  j["kind"] = e.kind;
  j["key"] = e.key;
  j["issued_at"] = e.issued_at;
  j["nonce"] = e.nonce;
  j["payload"] = e.payload;
  j["sig"] = e.sig;
  return Dump(j);
}

Result<Envelope> ParseEnvelopeJson(std::string_view wire) {
  json j = json::parse(wire, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError("envelope: not a JSON object");
  for (const auto& [name, value] : j.items()) {
    if (std::find(kEnvelopeFields.begin(), kEnvelopeFields.end(), name) == kEnvelopeFields.end())
      return InvalidArgumentError("envelope: unknown field " + QuoteForMessage(name));
  }
  Envelope e;
  int64_t v = 0;
  if (!Field(j, "v", &v) || !Field(j, "kind", &e.kind) || !Field(j, "key", &e.key) ||
      !Field(j, "issued_at", &e.issued_at) || !Field(j, "nonce", &e.nonce) ||
      !Field(j, "payload", &e.payload) || !Field(j, "sig", &e.sig)) {
    return InvalidArgumentError(
        "envelope: needs v, issued_at (integers) and kind, key, nonce, payload, sig (strings)");
  }
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
    return InvalidArgumentError("envelope: v: out of range");
  e.v = static_cast<int>(v);
  return e;
}

std::string SignEnvelope(const audit::Signer& signer, EnvelopeKind kind, std::string_view payload,
                         int64_t issued_at) {
  Envelope e;
  e.kind = std::string(EnvelopeKindName(kind));
  e.key = signer.PublicKeyHex();
  e.issued_at = issued_at;
  e.nonce = NewNonce();
  e.payload = std::string(payload);
  const audit::Signature sig = signer.Sign(SigningDigest(e.kind, e.key, e.issued_at, e.nonce, e.payload));
  e.sig = ToHex(sig);
  return EnvelopeToJson(e);
}

// ---- EnvelopeVerifier ----

EnvelopeVerifier::EnvelopeVerifier(const std::vector<std::string>& trusted_keys, ReplayStore* replay,
                                   const Clock& clock)
    : replay_(replay), clock_(clock) {
  for (const auto& hex : trusted_keys) {
    audit::PublicKey k{};
    if (audit::ParsePublicKeyHex(hex, &k)) trusted_.push_back(k);
  }
}

std::optional<Refusal> EnvelopeVerifier::CheckTrust(const Envelope& e, audit::PublicKey* key) const {
  if (!audit::ParsePublicKeyHex(e.key, key))
    return Refuse(RefusalCode::kMalformed, "envelope: key: expected 64 lowercase hex characters");
  if (std::find(trusted_.begin(), trusted_.end(), *key) == trusted_.end())
    return Refuse(RefusalCode::kUntrustedKey, "signed by an untrusted key " + e.key);
  if (e.sig.empty()) return Refuse(RefusalCode::kBadSignature, "not signed (empty sig)");
  audit::Signature sig{};
  if (!audit::ParseSignatureHex(e.sig, &sig))
    return Refuse(RefusalCode::kBadSignature, "sig: expected 128 lowercase hex characters");
  if (!audit::VerifySignature(*key, SigningDigest(e.kind, e.key, e.issued_at, e.nonce, e.payload), sig))
    return Refuse(RefusalCode::kBadSignature, "the signature does not match key " + e.key);
  return std::nullopt;
}

std::optional<Refusal> EnvelopeVerifier::CheckTime(const Envelope& e, int64_t now) const {
  if (e.issued_at < now - kMaxEnvelopeAgeSecs) {
    return Refuse(RefusalCode::kExpired, "issued at " + std::to_string(e.issued_at) + ", more than " +
                                             std::to_string(kMaxEnvelopeAgeSecs) + " s before now (" +
                                             std::to_string(now) + ")");
  }
  if (e.issued_at > now + kMaxEnvelopeFutureSecs) {
    return Refuse(RefusalCode::kFromFuture, "issued at " + std::to_string(e.issued_at) + ", more than " +
                                                std::to_string(kMaxEnvelopeFutureSecs) + " s after now (" +
                                                std::to_string(now) + ")");
  }
  return std::nullopt;
}

Verdict<VerifiedEnvelope> EnvelopeVerifier::Verify(EnvelopeKind expected, std::string_view wire) {
  const std::string_view kind = EnvelopeKindName(expected);
  if (wire.size() > MaxEnvelopeBytes(expected)) {
    return Refuse(RefusalCode::kOversized, std::string(kind) + " envelope of " + std::to_string(wire.size()) +
                                               " bytes, more than " +
                                               std::to_string(MaxEnvelopeBytes(expected)));
  }
  auto e = ParseEnvelopeJson(wire);
  if (!e.ok()) return Refuse(RefusalCode::kMalformed, e.status().message());
  if (e->v != kEnvelopeVersion)
    return Refuse(RefusalCode::kMalformed, "envelope: v: unsupported version " + std::to_string(e->v));
  if (e->kind != kind)
    return Refuse(RefusalCode::kMalformed,
                  "envelope: kind: expected " + std::string(kind) + ", got " + QuoteForMessage(e->kind));
  if (!IsLowerHex(e->nonce, kNonceHexLen))
    return Refuse(RefusalCode::kMalformed, "envelope: nonce: expected 32 lowercase hex characters");
  audit::PublicKey key{};
  if (auto r = CheckTrust(*e, &key)) return *r;
  const int64_t now = clock_.NowMs() / 1000;
  if (auto r = CheckTime(*e, now)) return *r;
  if (replay_ == nullptr) return Refuse(RefusalCode::kInternal, "no replay store");
  Status s = replay_->Remember(e->nonce, e->issued_at + kNonceKeepSecs, now);
  if (s.code() == StatusCode::kAlreadyExists)
    return Refuse(RefusalCode::kReplayed, "nonce " + e->nonce + " was already used");
  if (!s.ok()) return Refuse(RefusalCode::kInternal, "replay store: " + s.message());
  return VerifiedEnvelope{expected, e->key, e->issued_at, e->nonce, std::move(e->payload)};
}

// ---- Live queries ----

std::string QueryPayloadJson(const QueryRequest& q) {
  json j = json::object();
  j["query_id"] = q.query_id;
  j["sql"] = q.sql;
  j["hosts"] = q.hosts;
  j["max_rows"] = q.max_rows;
  return Dump(j);
}

namespace {

std::optional<Refusal> ParseHosts(const json& j, std::vector<std::string>* hosts) {
  auto it = j.find("hosts");
  if (it == j.end()) return std::nullopt;  // default: all
  if (!it->is_array() || it->empty())
    return Refuse(RefusalCode::kMalformed, "query: hosts: expected a non-empty list of host ids");
  hosts->clear();
  for (const auto& h : *it) {
    if (!h.is_string()) return Refuse(RefusalCode::kMalformed, "query: hosts: expected strings");
    hosts->push_back(h.get<std::string>());
  }
  return std::nullopt;
}

}  // namespace

Verdict<QueryRequest> ParseQueryPayload(std::string_view payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Refuse(RefusalCode::kMalformed, "query: payload is not a JSON object");
  QueryRequest q;
  if (!Field(j, "query_id", &q.query_id) || !IsIdToken(q.query_id))
    return Refuse(RefusalCode::kMalformed, "query: query_id: expected 1..64 of [A-Za-z0-9-]");
  if (!Field(j, "sql", &q.sql) || q.sql.empty())
    return Refuse(RefusalCode::kMalformed, "query: sql: expected a non-empty string");
  if (auto r = ParseHosts(j, &q.hosts)) return *r;
  if (j.contains("max_rows") &&
      (!Field(j, "max_rows", &q.max_rows) || q.max_rows < 1 || q.max_rows > kMaxQueryMaxRows)) {
    return Refuse(RefusalCode::kMalformed,
                  "query: max_rows: expected an integer in 1.." + std::to_string(kMaxQueryMaxRows));
  }
  return q;
}

bool QueryAddresses(const QueryRequest& q, std::string_view host_id) {
  return std::any_of(q.hosts.begin(), q.hosts.end(),
                     [&](const std::string& h) { return h == "all" || h == host_id; });
}

bool IsReplyInbox(std::string_view subject) {
  constexpr std::string_view kPrefix = "_INBOX.";
  if (subject.size() > 256 || !subject.starts_with(kPrefix)) return false;
  std::string_view rest = subject.substr(kPrefix.size());
  bool token_start = true;
  for (char c : rest) {
    if (c == '.') {
      if (token_start) return false;  // empty token
      token_start = true;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
    token_start = false;
  }
  return !token_start;
}

std::string QueryChunkJson(const QueryChunk& c) {
  json j = json::object();
  j["query_id"] = c.query_id;
  j["host_id"] = c.host_id;
  j["seq"] = c.seq;
  j["columns"] = c.columns;
  j["rows"] = c.rows;
  j["final"] = c.final;
  if (c.final && !c.error) {
    j["row_count"] = c.row_count;
    j["truncated"] = c.truncated;
  }
  if (c.error) j["error"] = {{"code", c.error->code}, {"message", c.error->message}};
  return Dump(j);
}

Result<QueryChunk> ParseQueryChunk(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError("query reply: not a JSON object");
  QueryChunk c;
  if (!Field(j, "query_id", &c.query_id) || !Field(j, "host_id", &c.host_id) || !Field(j, "seq", &c.seq) ||
      !Field(j, "final", &c.final)) {
    return InvalidArgumentError(
        "query reply: needs query_id, host_id (strings), seq (integer), final (boolean)");
  }
  if (auto it = j.find("columns"); it != j.end() && it->is_array()) {
    for (const auto& col : *it) c.columns.push_back(col.is_string() ? col.get<std::string>() : Dump(col));
  }
  if (auto it = j.find("rows"); it != j.end() && it->is_array()) c.rows = *it;
  if (j.contains("row_count")) Field(j, "row_count", &c.row_count);
  if (j.contains("truncated")) Field(j, "truncated", &c.truncated);
  if (auto it = j.find("error"); it != j.end() && it->is_object()) {
    QueryError err;
    Field(*it, "code", &err.code);
    Field(*it, "message", &err.message);
    c.error = std::move(err);
  }
  return c;
}

ChunkWriter::ChunkWriter(std::string query_id, std::string host_id, std::vector<std::string> columns,
                         std::size_t max_chunk_bytes)
    : max_bytes_(max_chunk_bytes) {
  chunk_.query_id = std::move(query_id);
  chunk_.host_id = std::move(host_id);
  chunk_.columns = std::move(columns);
}

std::optional<std::string> ChunkWriter::Add(json row) {
  // The chunk's own fields at their longest (a final chunk, 20-digit counters).
  QueryChunk frame = chunk_;
  frame.rows = json::array();
  frame.final = true;
  frame.seq = std::numeric_limits<int64_t>::max();
  frame.row_count = std::numeric_limits<int64_t>::max();
  frame.truncated = false;
  const std::size_t overhead = QueryChunkJson(frame).size();
  std::size_t row_bytes = Dump(row).size() + 1;  // and its comma
  if (overhead + row_bytes > max_bytes_) {
    // One row alone would break the bound: its cells become nulls.
    json nulls = json::array();
    for (std::size_t i = 0; i < chunk_.columns.size(); ++i) nulls.push_back(nullptr);
    row = std::move(nulls);
    row_bytes = Dump(row).size() + 1;
    oversized_row_ = true;
  }
  std::optional<std::string> full;
  if (!chunk_.rows.empty() && overhead + pending_bytes_ + row_bytes > max_bytes_) full = Flush(false, false);
  chunk_.rows.push_back(std::move(row));
  pending_bytes_ += row_bytes;
  ++rows_total_;
  return full;
}

std::string ChunkWriter::Finish(bool truncated) {
  return Flush(true, truncated || oversized_row_);
}

std::string ChunkWriter::Flush(bool final, bool truncated) {
  chunk_.final = final;
  chunk_.row_count = rows_total_;
  chunk_.truncated = truncated;
  std::string out = QueryChunkJson(chunk_);
  chunk_.rows = json::array();
  ++chunk_.seq;
  pending_bytes_ = 0;
  return out;
}

std::string ChunkWriter::Error(const std::string& query_id, const std::string& host_id,
                               const QueryError& error) {
  QueryChunk c;
  c.query_id = query_id;
  c.host_id = host_id;
  c.final = true;
  c.error = error;
  return QueryChunkJson(c);
}

}  // namespace sentinel::fleet
