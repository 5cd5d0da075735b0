#include "sentinel/fleet/bundle.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/sigma.h"

namespace sentinel::fleet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Refusal Malformed(std::string message) {
  return Refusal{RefusalCode::kMalformed, std::move(message)};
}

bool IsIdToken(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

Result<std::string> ReadRuleFile(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return UnavailableError(path.string() + ": cannot read: " + ec.message());
  if (size > detection::kMaxRuleFileBytes) {
    return InvalidArgumentError(path.string() + ": larger than " +
                                std::to_string(detection::kMaxRuleFileBytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in) return UnavailableError(path.string() + ": cannot read");
  return buf.str();
}

// One rule file of a bundle, parsed (Sigma translated) as detection::LoadRuleFile does.
Result<detection::Rule> ParseBundleRule(const BundleRule& r) {
  if (!IsPlainRuleFileName(r.file)) {
    return InvalidArgumentError(
        QuoteForMessage(r.file) +
        ": not a plain rule file name ([A-Za-z0-9._-], no leading dot, .yaml or .yml)");
  }
  if (r.content.size() > detection::kMaxRuleFileBytes)
    return InvalidArgumentError(r.file + ": larger than " + std::to_string(detection::kMaxRuleFileBytes) +
                                " bytes");
  Result<detection::Rule> parsed = detection::IsSigmaDocument(r.content)
                                       ? detection::ConvertSigmaRule(r.content, r.file)
                                       : detection::ParseRule(r.content, r.file);
  if (!parsed.ok()) return parsed.status();
  parsed->source = detection::RuleSource::kUser;
  return parsed;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "writing " + path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

Status SyncDirectory(const fs::path& dir) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenDirectoryNoFollow(dir.string()));
  if (::fsync(fd.get()) != 0) return ErrnoError(errno, "syncing " + dir.string());
  return Status::Ok();
}

// Writes the bundle's files into `staging` (an empty directory), 0644 each.
Status WriteStaging(const Bundle& b, const fs::path& staging, const struct stat& owner) {
  for (const auto& r : b.rules) {
    if (!IsPlainRuleFileName(r.file))
      return InvalidArgumentError(QuoteForMessage(r.file) + ": not a plain file name");
    const std::string path = (staging / r.file).string();
    ASSIGN_OR_RETURN(UniqueFd fd, OpenRegularNoFollow(path, O_WRONLY | O_CREAT | O_EXCL, 0644));
    RETURN_IF_ERROR(WriteAll(fd.get(), r.content, path));
    if (::fchmod(fd.get(), 0644) != 0) return ErrnoError(errno, "chmod " + path);
    if (::geteuid() == 0 && ::fchown(fd.get(), owner.st_uid, owner.st_gid) != 0)
      return ErrnoError(errno, "chown " + path);
    if (::fsync(fd.get()) != 0) return ErrnoError(errno, "syncing " + path);
  }
  if (::chmod(staging.c_str(), 0755) != 0) return ErrnoError(errno, "chmod " + staging.string());
  if (::geteuid() == 0) RETURN_IF_ERROR(ChownNoFollow(staging.string(), S_IFDIR, owner.st_uid, owner.st_gid));
  return SyncDirectory(staging);
}

// Puts `staging` in the place of `dir`; afterwards `staging` holds the old set (or nothing).
Status SwapIn(const fs::path& staging, const fs::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return RefusedPathError(dir.string(), "not a directory");
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0)
      return ErrnoError(errno, "exchanging " + staging.string() + " with " + dir.string());
    return Status::Ok();
  }
  if (errno != ENOENT) return ErrnoError(errno, "lstat " + dir.string());
  if (::rename(staging.c_str(), dir.c_str()) != 0)
    return ErrnoError(errno, "renaming " + staging.string() + " to " + dir.string());
  return Status::Ok();
}

std::string FirstLine(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

}  // namespace

fs::path ReplayStorePath(const config::Config& cfg) {
  return FleetDataDir(cfg) / "fleet-nonces";
}

std::vector<detection::Rule> RulesOutsideFleet(const config::Config& cfg) {
  std::vector<std::string> dirs;
  const fs::path fleet = fs::weakly_canonical(FleetRulesDir(cfg));
  for (const auto& d : cfg.detection.rules_dirs) {
    std::error_code ec;
    if (fs::weakly_canonical(d, ec) != fleet) dirs.push_back(d);
  }
  return detection::LoadRuleSet(cfg.detection.builtin_rules, dirs).rules;
}

bool LooksLikeBundleEnvelope(std::string_view text) {
  const std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || text[start] != '{') return false;
  if (text.size() > kMaxBundleEnvelopeBytes) return text.find("\"kind\"") != std::string_view::npos;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  // Any envelope (a query one too, refused then as malformed): no rule file has these fields.
  return !j.is_discarded() && j.is_object() && (j.contains("kind") || j.contains("sig"));
}

bool IsPlainRuleFileName(std::string_view name) {
  if (name.empty() || name.size() > kMaxRuleFileNameLen || name.front() == '.') return false;
  if (!std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      })) {
    return false;
  }
  return (name.ends_with(".yaml") && name.size() > 5) || (name.ends_with(".yml") && name.size() > 4);
}

std::string BundlePayloadJson(const Bundle& b) {
  json rules = json::array();
  for (const auto& r : b.rules) rules.push_back({{"file", r.file}, {"content", r.content}});
  json j = {{"bundle_id", b.bundle_id}, {"created_at", b.created_at}, {"rules", std::move(rules)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Verdict<Bundle> ParseBundlePayload(std::string_view payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Malformed("bundle: payload is not a JSON object");
  Bundle b;
  auto id = j.find("bundle_id");
  if (id == j.end() || !id->is_string() || !IsIdToken(id->get<std::string>()))
    return Malformed("bundle: bundle_id: expected 1..64 of [A-Za-z0-9-]");
  b.bundle_id = id->get<std::string>();
  auto created = j.find("created_at");
  if (created == j.end() || !created->is_number_integer())
    return Malformed("bundle: created_at: expected an integer");
  b.created_at = created->get<int64_t>();
  auto rules = j.find("rules");
  if (rules == j.end() || !rules->is_array() || rules->empty() || rules->size() > kMaxBundleRules)
    return Malformed("bundle: rules: expected a list of 1.." + std::to_string(kMaxBundleRules) +
                     " rule files");
  for (const auto& r : *rules) {
    auto file = r.is_object() ? r.find("file") : r.end();
    auto content = r.is_object() ? r.find("content") : r.end();
    if (!r.is_object() || file == r.end() || !file->is_string() || content == r.end() ||
        !content->is_string())
      return Malformed("bundle: rules: each entry needs file and content (strings)");
    b.rules.push_back({file->get<std::string>(), content->get<std::string>()});
  }
  return b;
}

Result<Bundle> PackBundleDir(const fs::path& dir, int64_t created_at) {
  ASSIGN_OR_RETURN(auto files, detection::ListRuleFiles(dir));
  if (files.empty()) return InvalidArgumentError(dir.string() + ": no *.yaml or *.yml rule files");
  if (files.size() > kMaxBundleRules) {
    return InvalidArgumentError(dir.string() + ": " + std::to_string(files.size()) +
                                " rule files, more than " + std::to_string(kMaxBundleRules) +
                                " a bundle holds");
  }
  Bundle b;
  b.bundle_id = NewUuid();
  b.created_at = created_at;
  for (const auto& f : files) {
    const std::string name = f.filename().string();
    if (!IsPlainRuleFileName(name))
      return InvalidArgumentError(f.string() + ": not a plain rule file name ([A-Za-z0-9._-])");
    ASSIGN_OR_RETURN(std::string text, ReadRuleFile(f));
    b.rules.push_back({name, std::move(text)});
  }
  return b;
}

std::string SignBundle(const audit::Signer& signer, const Bundle& b, int64_t issued_at) {
  return SignEnvelope(signer, EnvelopeKind::kBundle, BundlePayloadJson(b), issued_at);
}

Result<BundleCheck> ValidateBundle(const Bundle& b, const std::vector<detection::Rule>& others) {
  ASSIGN_OR_RETURN(auto schema, detection::OpenSchemaOnlyEventStore());
  BundleCheck check;
  std::set<std::string> files, ids;
  for (const auto& r : b.rules) {
    auto refuse = [&](const std::string& why) { check.refused.push_back({r.file, why}); };
    if (!files.insert(r.file).second) {
      refuse(QuoteForMessage(r.file) + ": appears twice in the bundle");
      continue;
    }
    auto rule = ParseBundleRule(r);
    if (rule.ok()) {
      if (Status s = detection::ValidateRuleQuery(*schema, *rule); !s.ok()) rule = s;
    }
    if (!rule.ok()) {
      refuse(rule.status().message());
      continue;
    }
    if (!ids.insert(rule->id).second) {
      refuse(r.file + ": id: " + QuoteForMessage(rule->id) + " appears twice in the bundle");
      continue;
    }
    auto clash = std::find_if(others.begin(), others.end(),
                              [&](const detection::Rule& o) { return o.id == rule->id; });
    if (clash != others.end()) {
      refuse(r.file + ": id: " + QuoteForMessage(rule->id) + " is already defined by " + clash->source_path);
      continue;
    }
    check.rules.push_back(std::move(*rule));
  }
  return check;
}

Status InstallBundle(const Bundle& b, const fs::path& dir) {
  const fs::path parent = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  struct stat owner {};
  if (::stat(parent.c_str(), &owner) != 0) return ErrnoError(errno, "stat " + parent.string());
  std::string tmpl = (parent / (dir.filename().string() + ".new-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoError(errno, "creating a directory like " + tmpl);
  const fs::path staging = tmpl;
  Status s = WriteStaging(b, staging, owner);
  if (s.ok()) s = SwapIn(staging, dir);
  if (s.ok()) s = SyncDirectory(parent);
  std::error_code ec;
  fs::remove_all(staging, ec);  // the old set, or the failed new one
  return s.ok() ? Status::Ok() : s.WithContext("installing bundle into " + dir.string());
}

json BundleStatus::ToJson() const {
  json refused_json = json::array();
  for (const auto& r : refused) refused_json.push_back({{"file", r.file}, {"error", r.error}});
  json j = {{"bundle_id", bundle_id},
            {"status", status},
            {"loaded", loaded},
            {"refused", std::move(refused_json)},
            {"at", at}};
  if (status != "applied") {
    j["code"] = refusal_code;
    j["message"] = message;
  }
  return j;
}

json BundleStatus::ToHeartbeatJson() const {
  BundleStatus bounded = *this;
  if (bounded.refused.size() > kHeartbeatRefused) bounded.refused.resize(kHeartbeatRefused);
  for (auto& r : bounded.refused) {
    r.file = r.file.substr(0, kHeartbeatText);
    r.error = r.error.substr(0, kHeartbeatText);
  }
  bounded.message = bounded.message.substr(0, kHeartbeatText);
  json j = bounded.ToJson();
  j["refused_count"] = refused.size();
  return j;
}

Result<BundleStatus> BundleStatus::FromJson(const json& j) {
  if (!j.is_object()) return InvalidArgumentError("bundle status: not a JSON object");
  BundleStatus s;
  s.bundle_id = j.value("bundle_id", "");
  s.status = j.value("status", "");
  s.loaded = j.value("loaded", int64_t{0});
  s.at = j.value("at", int64_t{0});
  s.refusal_code = j.value("code", "");
  s.message = j.value("message", "");
  if (auto it = j.find("refused"); it != j.end() && it->is_array()) {
    for (const auto& r : *it) {
      if (r.is_object()) s.refused.push_back({r.value("file", ""), r.value("error", "")});
    }
  }
  if (s.status != "applied" && s.status != "refused")
    return InvalidArgumentError("bundle status: status: unknown");
  return s;
}

namespace {

BundleStatus Refused(std::string bundle_id, RefusalCode code, std::string message, int64_t now) {
  BundleStatus s;
  s.bundle_id = std::move(bundle_id);
  s.status = "refused";
  s.refusal_code = std::string(RefusalCodeName(code));
  s.message = std::move(message);
  s.at = now;
  return s;
}

}  // namespace

BundleApplyResult ApplyBundleEnvelope(std::string_view wire, EnvelopeVerifier& verifier,
                                      const std::vector<detection::Rule>& others,
                                      const fs::path& fleet_rules_dir, int64_t now) {
  BundleApplyResult out;
  if (wire.size() <= kMaxBundleEnvelopeBytes) {
    if (auto e = ParseEnvelopeJson(wire); e.ok()) out.nonce = e->nonce;
  }
  auto env = verifier.Verify(EnvelopeKind::kBundle, wire);
  if (!env.ok()) {
    out.status = Refused("", env.refusal().code, env.refusal().message, now);
    return out;
  }
  out.key = env->key;
  auto bundle = ParseBundlePayload(env->payload);
  if (!bundle.ok()) {
    out.status = Refused("", bundle.refusal().code, bundle.refusal().message, now);
    return out;
  }
  auto check = ValidateBundle(*bundle, others);
  if (!check.ok()) {
    out.error = check.status();
    out.status = Refused(bundle->bundle_id, RefusalCode::kInternal, check.status().message(), now);
    return out;
  }
  if (!check->ok()) {
    out.status =
        Refused(bundle->bundle_id, RefusalCode::kBadRule,
                std::to_string(check->refused.size()) + " of " + std::to_string(bundle->rules.size()) +
                    " rule file(s) refused, first: " + FirstLine(check->refused.front().error),
                now);
    out.status.refused = check->refused;
    return out;
  }
  if (Status s = InstallBundle(*bundle, fleet_rules_dir); !s.ok()) {
    out.error = s;
    out.status = Refused(bundle->bundle_id, RefusalCode::kInternal, s.message(), now);
    return out;
  }
  out.status.bundle_id = bundle->bundle_id;
  out.status.status = "applied";
  out.status.loaded = static_cast<int64_t>(check->rules.size());
  out.status.at = now;
  return out;
}

}  // namespace sentinel::fleet
