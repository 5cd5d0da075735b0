// Signed rule bundles (SPEC §14 "Rule bundles", docs/fleet.md): a set of
// rule files (DRL or Sigma, as `sentinelcli rules import` accepts) packed
// into the payload of a `bundle` envelope (envelope.h), checked whole and
// installed whole into the agent's fleet rules directory, or not at all.
//
// Payload: {"bundle_id":"<uuid>","created_at":<unix s>,
//           "rules":[{"file":"x.yaml","content":"<yaml>"},...]}
//
// Every file name comes from the sender and is checked as a plain name
// (IsPlainRuleFileName): no directory part, no "..", no leading dot, only
// [A-Za-z0-9._-], ending in .yaml or .yml. Every rule is parsed (a Sigma
// rule is translated) and its query compiled in the SQL sandbox against the
// event-store schema (detection::ValidateRuleQuery), as the agent loads
// rules. Ids must be unique in the bundle and must not reuse an id of a rule
// outside the fleet rules directory (built-ins, detection.rules_dirs).
//
// Installing: the files are written into a fresh sibling directory
// "<dir>.new-XXXXXX", synced, and swapped with the old directory in one step
// (renameat2 RENAME_EXCHANGE; a plain rename when there was none), then the
// old set is removed: a reader (the agent's rule load) sees the old set or
// the new one, never a mix. Run as root (sentinelcli), the new files are
// given to the owner of the parent directory (the agent's service user).
//
// Thread-safety: free functions keep no state; two installs into the same
// directory must not run concurrently (the agent has one bundle thread; the
// CLI takes the replay store's lock first).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/audit/signer.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/config/fleet_dirs.h"
#include "sentinel/detection/rule.h"
#include "sentinel/fleet/envelope.h"

namespace sentinel::fleet {

inline constexpr std::size_t kMaxBundleRules = 1000;
inline constexpr std::size_t kMaxRuleFileNameLen = 128;

// Where a host keeps what the fleet sent, beside its event store (the data
// directory is the directory of database.path):
//   <data dir>/fleet-rules   the installed bundle, loaded as one more rules directory
//   <data dir>/fleet-nonces  the replay store (envelope.h)
// The rules directory's paths are config's (sentinel/config/fleet_dirs.h: in
// every build, so installed rules load without the fleet feature too).
using config::FleetDataDir;
using config::FleetRulesDir;
using config::kFleetRulesDirName;
using config::RuleDirsWithFleet;
std::filesystem::path ReplayStorePath(const config::Config& cfg);
// The rules a bundle must not clash with: built-ins (when enabled) and
// detection.rules_dirs, without the fleet rules directory itself.
std::vector<detection::Rule> RulesOutsideFleet(const config::Config& cfg);

// True when `text` holds a signed envelope rather than a rule file: a JSON
// object with a "kind" or "sig" field, which no rule file has (or too large
// to be one but starting like one, so that it is refused as oversized rather
// than read as YAML). A query envelope is then refused as not a bundle.
bool LooksLikeBundleEnvelope(std::string_view text);

struct BundleRule {
  std::string file;     // a plain file name (IsPlainRuleFileName)
  std::string content;  // the rule file's text
};

struct Bundle {
  std::string bundle_id;
  int64_t created_at = 0;  // unix s
  std::vector<BundleRule> rules;
};

// True for a plain rule file name: 1..kMaxRuleFileNameLen of [A-Za-z0-9._-],
// not starting with '.', ending in ".yaml" or ".yml".
bool IsPlainRuleFileName(std::string_view name);

std::string BundlePayloadJson(const Bundle& b);
// Shape checks (malformed): bundle_id 1..64 of [A-Za-z0-9-], created_at an
// integer, 1..kMaxBundleRules rules each with string file and content.
// File names are NOT judged here (ValidateBundle refuses bad ones per file).
Verdict<Bundle> ParseBundlePayload(std::string_view payload);

// Reads the *.yaml / *.yml files of `dir` (not recursive, sorted) into a
// bundle with a new bundle_id. InvalidArgument when there are none, a file
// is larger than detection::kMaxRuleFileBytes, or there are too many.
Result<Bundle> PackBundleDir(const std::filesystem::path& dir, int64_t created_at);

// The wire form of a signed `bundle` envelope for `b` (envelope.h).
std::string SignBundle(const audit::Signer& signer, const Bundle& b, int64_t issued_at);

struct RuleRefusal {
  std::string file;   // as sent (attacker text: quote it when printing)
  std::string error;  // why
};

struct BundleCheck {
  std::vector<detection::Rule> rules;  // the accepted rules, in bundle order
  std::vector<RuleRefusal> refused;    // empty: the bundle may be installed
  bool ok() const { return refused.empty(); }
};

// Validates every rule of `b` (all of them, so the report lists every bad
// file): file name, size, parse (a Sigma rule is translated, as
// detection::LoadRuleFile does), sandbox compile against the event-store
// schema, ids unique in the bundle and not taken by `others` (the rules from
// outside the fleet directory). Status errors are host-side failures (no
// schema), not refusals.
Result<BundleCheck> ValidateBundle(const Bundle& b, const std::vector<detection::Rule>& others);

// Replaces the contents of `dir` with exactly the bundle's files (mode 0644,
// directory 0755), atomically (see above). The parent of `dir` must exist.
Status InstallBundle(const Bundle& b, const std::filesystem::path& dir);

// What became of the last bundle, as the heartbeat reports it:
//   {"bundle_id","status":"applied|refused","loaded":N,"refused":[{"file","error"}],"at":<unix>}
// plus "code" and "message" when refused.
struct BundleStatus {
  std::string bundle_id;  // "" when the envelope itself was refused before the payload was read
  std::string status;     // "applied" | "refused"
  int64_t loaded = 0;
  std::vector<RuleRefusal> refused;
  std::string refusal_code;  // the envelope/bundle RefusalCodeName when refused ("" when applied)
  std::string message;       // why, when refused
  int64_t at = 0;
  nlohmann::json ToJson() const;
  // ToJson bounded for the heartbeat (a KV value the console may cap at
  // 64 KiB): the first kHeartbeatRefused refused files, texts cut at
  // kHeartbeatText bytes, and "refused_count" with the full number.
  static constexpr std::size_t kHeartbeatRefused = 20;
  static constexpr std::size_t kHeartbeatText = 512;
  nlohmann::json ToHeartbeatJson() const;
  static Result<BundleStatus> FromJson(const nlohmann::json& j);
};

// Everything a host does with a bundle envelope: verify it (`verifier`),
// parse the payload, validate every rule, install into `fleet_rules_dir`.
// `others` are the rules outside the fleet directory; `now` stamps the status.
struct BundleApplyResult {
  BundleStatus status;
  std::string key;    // the signer (64 hex) when the envelope verified
  std::string nonce;  // the envelope's nonce when it parsed
  Status error;       // a host-side failure (install could not write): status is "refused" then too
};
BundleApplyResult ApplyBundleEnvelope(std::string_view wire, EnvelopeVerifier& verifier,
                                      const std::vector<detection::Rule>& others,
                                      const std::filesystem::path& fleet_rules_dir, int64_t now);

}  // namespace sentinel::fleet
