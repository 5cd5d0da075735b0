// Signed fleet requests (SPEC §14 "Trust", docs/fleet.md): the envelope that
// carries a live query or a rule bundle from the console to the hosts, its
// signature, and the checks a host makes before it obeys one.
//
// Wire form (compact JSON, UTF-8):
//   {"v":1,"kind":"query","key":"<64 hex>","issued_at":<unix s>,
//    "nonce":"<32 lowercase hex>","payload":"<payload JSON as a string>","sig":"<128 hex>"}
// `sig` is Ed25519 (audit::Signer) over the BLAKE3 of SigningInput(): the
// payload travels as a string, so no JSON canonicalisation is needed.
//
// Verification order (EnvelopeVerifier::Verify), each failure its own code:
//   size (oversized) -> JSON shape (malformed) -> v == 1 and kind (malformed)
//   -> key in the trusted keys (untrusted_key) -> signature (bad_signature)
//   -> issued_at within [now - 300 s, now + 60 s] (expired / from_future)
//   -> nonce never seen (replayed; the ReplayStore keeps it until
//      issued_at + 360 s, on disk, so a restart does not reopen the window).
// The payload's own checks (not_select for queries, bad_rule for bundles)
// come after (the agent's query runner, bundle.h). A host-side failure (the replay store
// cannot be written) refuses too, with code `internal`: fail closed.
//
// Thread-safety: free functions are pure. ReplayStore and EnvelopeVerifier
// are thread-safe (a mutex; the store also locks its file against other
// processes, e.g. `sentinelcli rules import` next to a running agent).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/audit/signer.h"
#include "sentinel/base/status.h"
#include "sentinel/base/time.h"
#include "sentinel/crypto/blake3.h"

namespace sentinel::fleet {

inline constexpr int kEnvelopeVersion = 1;
inline constexpr std::size_t kMaxQueryEnvelopeBytes = std::size_t{64} << 10;  // 64 KiB
inline constexpr std::size_t kMaxBundleEnvelopeBytes = std::size_t{1} << 20;  // 1 MiB
inline constexpr int64_t kMaxEnvelopeAgeSecs = 300;                           // older: expired
inline constexpr int64_t kMaxEnvelopeFutureSecs = 60;                         // further ahead: from_future
inline constexpr int64_t kNonceKeepSecs = 360;   // a nonce is remembered until issued_at + this
inline constexpr std::size_t kNonceHexLen = 32;  // 16 random bytes
inline constexpr std::string_view kSigningDomain = "sentineld-fleet-v1";

enum class EnvelopeKind { kQuery, kBundle };
std::string_view EnvelopeKindName(EnvelopeKind kind);  // "query" | "bundle"
std::size_t MaxEnvelopeBytes(EnvelopeKind kind);

// Why a signed request was refused. The code strings are the wire contract
// (reply chunks' error.code, heartbeat, audit entries).
enum class RefusalCode {
  kOversized,
  kMalformed,
  kUntrustedKey,
  kBadSignature,
  kExpired,
  kFromFuture,
  kReplayed,
  kNotSelect,  // query: the SQL is not a single read-only SELECT the sandbox accepts
  kBadRule,    // bundle: a rule file is invalid (name, parse, sandbox, duplicate id)
  kInternal,   // the host could not check (replay store unwritable): refused, fail closed
};
// "oversized", "malformed", "untrusted_key", "bad_signature", "expired",
// "from_future", "replayed", "not_select", "bad_rule", "internal".
std::string_view RefusalCodeName(RefusalCode code);

struct Refusal {
  RefusalCode code = RefusalCode::kMalformed;
  std::string message;  // names what was wrong; attacker text in it is quoted (QuoteForMessage)
  std::string_view code_name() const { return RefusalCodeName(code); }
};

// Either a value or the refusal that stopped it.
template <typename T>
class [[nodiscard]] Verdict {
 public:
  Verdict(T value) : v_(std::move(value)) {}            // NOLINT(google-explicit-constructor)
  Verdict(Refusal refusal) : v_(std::move(refusal)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return std::holds_alternative<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T* operator->() { return &std::get<T>(v_); }
  const T& operator*() const { return std::get<T>(v_); }
  const Refusal& refusal() const { return std::get<Refusal>(v_); }

 private:
  std::variant<T, Refusal> v_;
};

// The bytes whose BLAKE3 is signed:
//   "sentineld-fleet-v1\n" + kind + "\n" + key + "\n" + decimal(issued_at) + "\n" + nonce + "\n" + payload
std::string SigningInput(std::string_view kind, std::string_view key_hex, int64_t issued_at,
                         std::string_view nonce, std::string_view payload);
crypto::Blake3Digest SigningDigest(std::string_view kind, std::string_view key_hex, int64_t issued_at,
                                   std::string_view nonce, std::string_view payload);

// 16 fresh random bytes (libsodium) as 32 lowercase hex characters.
std::string NewNonce();
// A random (version 4) UUID, lowercase, for query_id / bundle_id.
std::string NewUuid();

// The fields of an envelope, as sent.
struct Envelope {
  int v = kEnvelopeVersion;
  std::string kind;
  std::string key;  // 64 lowercase hex
  int64_t issued_at = 0;
  std::string nonce;
  std::string payload;
  std::string sig;  // 128 lowercase hex
};
std::string EnvelopeToJson(const Envelope& e);  // compact wire form
// Shape only (all fields present with the right JSON types); no trust checks.
Result<Envelope> ParseEnvelopeJson(std::string_view wire);

// Signs `payload` as a `kind` envelope issued at `issued_at` (unix seconds)
// with a fresh nonce; returns the wire form.
std::string SignEnvelope(const audit::Signer& signer, EnvelopeKind kind, std::string_view payload,
                         int64_t issued_at);

// Nonces already obeyed, persisted in one small file (lines "<nonce> <keep_until>"),
// rewritten atomically (temporary file, fsync, rename) under an flock of
// "<path>.lock", pruned of expired entries on every write. The file and the
// lock are created mode 0600 when missing.
class ReplayStore {
 public:
  // Most nonces held at once; beyond, Remember fails (ResourceExhausted).
  static constexpr std::size_t kMaxEntries = 100'000;

  // Opens (or prepares to create) the store at `path`; its directory must
  // exist. Errors name the path.
  static Result<std::unique_ptr<ReplayStore>> Open(const std::string& path);

  // Records `nonce` until `keep_until` (unix s). AlreadyExists when it is
  // held and not expired at `now`; other errors when the file cannot be
  // read or written (the caller refuses the request then).
  Status Remember(std::string_view nonce, int64_t keep_until, int64_t now);

  const std::string& path() const { return path_; }

 private:
  explicit ReplayStore(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::mutex mu_;
};

// What a verified envelope carries.
struct VerifiedEnvelope {
  EnvelopeKind kind = EnvelopeKind::kQuery;
  std::string key;  // the trusted key that signed it (64 lowercase hex): the actor in audit entries
  int64_t issued_at = 0;
  std::string nonce;
  std::string payload;
};

class EnvelopeVerifier {
 public:
  // `trusted_keys`: 64 lowercase hex each (fleet.trusted_keys; a malformed
  // entry is ignored — config validation refuses it earlier). `replay` and
  // `clock` must outlive the verifier; `clock` is injectable for tests.
  EnvelopeVerifier(const std::vector<std::string>& trusted_keys, ReplayStore* replay, const Clock& clock);

  // All the envelope checks above, in order, for an envelope that must be
  // of `expected` kind. On success the nonce is remembered.
  Verdict<VerifiedEnvelope> Verify(EnvelopeKind expected, std::string_view wire);

  bool has_trusted_keys() const { return !trusted_.empty(); }

 private:
  std::optional<Refusal> CheckTrust(const Envelope& e, audit::PublicKey* key) const;
  std::optional<Refusal> CheckTime(const Envelope& e, int64_t now) const;

  std::vector<audit::PublicKey> trusted_;
  ReplayStore* replay_;
  const Clock& clock_;
};

// ---- Live queries (payload of a `query` envelope, and the replies) ----

inline constexpr int64_t kDefaultQueryMaxRows = 10'000;
inline constexpr int64_t kMaxQueryMaxRows = 100'000;                        // a larger max_rows is malformed
inline constexpr std::size_t kMaxReplyChunkBytes = std::size_t{256} << 10;  // each reply chunk's JSON

// {"query_id":"<uuid>","sql":"SELECT ...","hosts":["all"]|["id1",...],"max_rows":10000}
struct QueryRequest {
  std::string query_id;
  std::string sql;
  std::vector<std::string> hosts = {"all"};
  int64_t max_rows = kDefaultQueryMaxRows;
};
std::string QueryPayloadJson(const QueryRequest& q);
// Shape checks only (malformed): query_id 1..64 of [A-Za-z0-9-], sql a
// non-empty string, hosts a non-empty list of strings, max_rows in
// 1..kMaxQueryMaxRows (absent: the default). The SQL itself is the sandbox's
// business (not_select, on the host).
Verdict<QueryRequest> ParseQueryPayload(std::string_view payload);
// True when `hosts` names "all" or `host_id`.
bool QueryAddresses(const QueryRequest& q, std::string_view host_id);
// True for a reply subject a host answers on: "_INBOX." followed by tokens of
// [A-Za-z0-9_-] separated by single dots, at most 256 bytes. Anything else
// (a stream's subject such as "sentineld.alerts.x", wildcards) gets no reply:
// a request must not make a host publish where its sender chooses.
bool IsReplyInbox(std::string_view subject);

// One reply chunk (host -> the request's reply subject):
//   {"query_id","host_id","seq":0,"columns":[...],"rows":[[...],...],"final":false}
// the last has "final":true,"row_count":N,"truncated":bool; a refusal or SQL
// error is one final chunk with "error":{"code","message"} (code: a
// RefusalCodeName or "sql_error").
struct QueryError {
  std::string code;
  std::string message;
};
struct QueryChunk {
  std::string query_id;
  std::string host_id;
  int64_t seq = 0;
  std::vector<std::string> columns;
  nlohmann::json rows = nlohmann::json::array();  // array of arrays (null, integer, real, text)
  bool final = false;
  int64_t row_count = 0;   // final only
  bool truncated = false;  // final only
  std::optional<QueryError> error;
};
std::string QueryChunkJson(const QueryChunk& c);
Result<QueryChunk> ParseQueryChunk(std::string_view json);

// Packs rows into chunks whose JSON stays within kMaxReplyChunkBytes (a
// single row larger than that is replaced by a row of nulls and counted as
// truncated, so no chunk ever exceeds the bound).
class ChunkWriter {
 public:
  ChunkWriter(std::string query_id, std::string host_id, std::vector<std::string> columns,
              std::size_t max_chunk_bytes = kMaxReplyChunkBytes);
  // Adds one row; returns the wire form of a full chunk to send when the row
  // did not fit in the current one.
  std::optional<std::string> Add(nlohmann::json row);
  // The last chunk (final:true, row_count, truncated).
  std::string Finish(bool truncated);
  // A single final error chunk.
  static std::string Error(const std::string& query_id, const std::string& host_id, const QueryError& error);

 private:
  std::string Flush(bool final, bool truncated);
  QueryChunk chunk_;
  std::size_t max_bytes_;
  std::size_t pending_bytes_ = 0;
  int64_t rows_total_ = 0;
  bool oversized_row_ = false;
};

}  // namespace sentinel::fleet
