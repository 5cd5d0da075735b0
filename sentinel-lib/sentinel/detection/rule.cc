#include "sentinel/detection/rule.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include <sys/stat.h>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/crypto/sha256.h"
#include "sentinel/detection/sigma.h"

namespace sentinel::detection {
namespace {

constexpr std::size_t kMaxIdLength = 128;
constexpr std::size_t kMaxNameLength = 512;
constexpr std::size_t kMaxTextLength = 64 * 1024;
constexpr std::size_t kMaxListItems = 64;
// A translated Sigma rule with a long value list (the corpus has one of
// 1,093 values) is longer than a hand-written query.
constexpr std::size_t kMaxQueryLength = 256 * 1024;

const std::set<std::string_view>& KnownKeys() {
  static const std::set<std::string_view> keys = {
      "id",         "name",  "description", "severity", "category", "tags",   "mitre",      "enabled",
      "dedup_keys", "query", "on",          "sigma_id", "author",   "status", "references", "falsepositives"};
  return keys;
}

Status FieldError(std::string_view origin, std::string_view field, std::string_view what) {
  return InvalidArgumentError(std::string(origin) + ": " + std::string(field) + ": " + std::string(what));
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_digit(id[0])) return false;
  return std::all_of(id.begin(), id.end(),
                     [&](char c) { return lower_digit(c) || c == '.' || c == '_' || c == '-'; });
}

// ATT&CK technique ids: T1234 or T1234.001.
bool ValidMitre(std::string_view t) {
  auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (t.size() == 5) return t[0] == 'T' && digits(t.substr(1));
  if (t.size() == 9) return t[0] == 'T' && digits(t.substr(1, 4)) && t[5] == '.' && digits(t.substr(6));
  return false;
}

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: return QuoteForMessage(n.Scalar());
    default: return "nothing";
  }
}

// Whether valid UTF-8 `s` holds a Unicode noncharacter: U+FDD0..U+FDEF, or the last two code
// points of any plane (U+FFFE, U+FFFF, U+1FFFE, ...). yaml-cpp writes each as U+FFFD, so a rule
// holding one could not be exported as it is (`rules export`, the stored YAML): fuzz/rule_fuzz
// found a query changed so, and with it the rule's checksum. They are refused when read.
bool HasNoncharacter(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0) return false;  // not reached: the caller checked IsValidUtf8
    if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu) return true;
    i += len;
  }
  return false;
}

constexpr std::string_view kNoncharacterError =
    "holds a Unicode noncharacter (U+FDD0..U+FDEF, U+FFFE, U+FFFF, ...), which YAML cannot carry";

Result<std::string> GetString(const YAML::Node& doc, std::string_view origin, const char* field,
                              bool required, std::size_t max_len) {
  const YAML::Node n = doc[field];
  if (!n.IsDefined() || n.IsNull()) {
    if (required) return FieldError(origin, field, "is required");
    return std::string();
  }
  if (!n.IsScalar()) return FieldError(origin, field, "expected a string, got " + Describe(n));
  std::string v = n.Scalar();
  if (required && Trim(v).empty()) return FieldError(origin, field, "must not be empty");
  if (v.size() > max_len) {
    return FieldError(origin, field, "longer than " + std::to_string(max_len) + " bytes");
  }
  if (!IsValidUtf8(v)) return FieldError(origin, field, "is not valid UTF-8");
  if (HasNoncharacter(v)) return FieldError(origin, field, kNoncharacterError);
  return v;
}

Result<std::vector<std::string>> GetList(const YAML::Node& doc, std::string_view origin, const char* field,
                                         std::size_t max_item = kMaxNameLength) {
  std::vector<std::string> out;
  const YAML::Node n = doc[field];
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsSequence()) return FieldError(origin, field, "expected a list of strings, got " + Describe(n));
  if (n.size() > kMaxListItems) {
    return FieldError(origin, field, "more than " + std::to_string(kMaxListItems) + " items");
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string where = std::string(field) + "[" + std::to_string(i) + "]";
    if (!n[i].IsScalar() || Trim(n[i].Scalar()).empty()) {
      return FieldError(origin, where, "expected a non-empty string, got " + Describe(n[i]));
    }
    std::string v = n[i].Scalar();
    if (v.size() > max_item || !IsValidUtf8(v)) {
      return FieldError(origin, where, "expected a short UTF-8 string");
    }
    if (HasNoncharacter(v)) return FieldError(origin, where, kNoncharacterError);
    if (!seen.insert(v).second) return FieldError(origin, where, "duplicate value " + QuoteForMessage(v));
    out.push_back(std::move(v));
  }
  return out;
}

Status CheckMitre(std::string_view origin, const std::vector<std::string>& mitre) {
  for (std::size_t i = 0; i < mitre.size(); ++i) {
    if (!ValidMitre(mitre[i])) {
      return FieldError(
          origin, "mitre[" + std::to_string(i) + "]",
          "expected an ATT&CK technique id like T1059 or T1059.004, got " + QuoteForMessage(mitre[i]));
    }
  }
  return Status::Ok();
}

// The optional provenance fields of a translated rule (references and
// falsepositives are free text, so longer items than tags are accepted).
Status GetProvenance(const YAML::Node& doc, std::string_view origin, Rule* r) {
  ASSIGN_OR_RETURN(r->sigma_id, GetString(doc, origin, "sigma_id", false, kMaxIdLength));
  ASSIGN_OR_RETURN(r->author, GetString(doc, origin, "author", false, kMaxTextLength));
  ASSIGN_OR_RETURN(r->status, GetString(doc, origin, "status", false, kMaxNameLength));
  ASSIGN_OR_RETURN(r->references, GetList(doc, origin, "references", kMaxTextLength));
  ASSIGN_OR_RETURN(r->falsepositives, GetList(doc, origin, "falsepositives", kMaxTextLength));
  return Status::Ok();
}

// `enabled`: true or false (plain YAML booleans only); true when absent.
Result<bool> GetEnabled(const YAML::Node& doc, std::string_view origin) {
  const YAML::Node en = doc["enabled"];
  if (!en.IsDefined() || en.IsNull()) return true;
  const std::string v = en.IsScalar() ? en.Scalar() : "";
  if (en.IsScalar() && en.Tag() == "?" && (v == "true" || v == "false")) return v == "true";
  return FieldError(origin, "enabled", "expected true or false, got " + Describe(en));
}

// `on`: scan (default) or exec.
Result<RuleTrigger> GetTrigger(const YAML::Node& doc, std::string_view origin) {
  const YAML::Node n = doc["on"];
  if (!n.IsDefined() || n.IsNull()) return RuleTrigger::kScan;
  if (n.IsScalar() && n.Scalar() == "scan") return RuleTrigger::kScan;
  if (n.IsScalar() && n.Scalar() == "exec") return RuleTrigger::kExec;
  return FieldError(origin, "on", "expected scan or exec, got " + Describe(n));
}

// A query is exported as a literal block ("|"), the readable form, only when that block reads
// back as the same text: "|" cannot carry a query without its final newline, with several, or
// whose first line starts with a space (fuzz/rule_fuzz found `rules export` changing such a
// query, and with it the rule's checksum). Other queries are written double-quoted.
bool LiteralBlockKeeps(const std::string& text) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "q" << YAML::Value << YAML::Literal << text << YAML::EndMap;
  if (!e.good()) return false;
  try {
    // As RuleToYaml writes it: the block is the document's last value, and a newline ends the file.
    const YAML::Node n = YAML::Load(std::string(e.c_str()) + "\n");
    return n["q"].IsScalar() && n["q"].Scalar() == text;
  } catch (const YAML::Exception&) {
    return false;
  }
}

void EmitList(YAML::Emitter& e, const char* key, const std::vector<std::string>& v) {
  e << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& s : v) e << s;
  e << YAML::EndSeq;
}

void EmitProvenance(YAML::Emitter& e, const Rule& r) {
  auto text = [&](const char* key, const std::string& v) {
    if (!v.empty()) e << YAML::Key << key << YAML::Value << v;
  };
  auto list = [&](const char* key, const std::vector<std::string>& v) {
    if (v.empty()) return;
    e << YAML::Key << key << YAML::Value << YAML::BeginSeq;
    for (const auto& s : v) e << s;
    e << YAML::EndSeq;
  };
  text("sigma_id", r.sigma_id);
  text("author", r.author);
  text("status", r.status);
  list("references", r.references);
  list("falsepositives", r.falsepositives);
}

}  // namespace

std::string_view RuleSourceName(RuleSource s) {
  return s == RuleSource::kBuiltin ? "builtin" : "user";
}

std::string_view RuleTriggerName(RuleTrigger t) {
  return t == RuleTrigger::kExec ? "exec" : "scan";
}

std::string Rule::Checksum() const {
  std::string material = query;
  material.push_back('\0');
  for (const auto& k : dedup_keys) {
    material += k;
    material.push_back('\0');
  }
  if (on == RuleTrigger::kExec) material += "on=exec";
  return crypto::Sha256Hex(material);
}

Result<Rule> ParseRule(std::string_view yaml_text, std::string_view origin) {
  if (yaml_text.size() > kMaxRuleFileBytes) {
    return InvalidArgumentError(std::string(origin) + ": larger than " + std::to_string(kMaxRuleFileBytes) +
                                " bytes");
  }
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string(origin) + ": line " + std::to_string(e.mark.line + 1) +
                                ": not valid YAML: " + e.msg);
  }
  if (!doc.IsMap()) {
    return InvalidArgumentError(std::string(origin) + ": expected a mapping of rule fields, got " +
                                Describe(doc));
  }
  try {
    for (const auto& kv : doc) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
      if (!KnownKeys().count(key)) {
        return InvalidArgumentError(
            std::string(origin) + ": " + QuoteForMessage(key) +
            ": unknown field (expected id, name, description, severity, category, tags, "
            "mitre, enabled, dedup_keys, query, on, sigma_id, author, status, references, falsepositives)");
      }
    }
    Rule r;
    ASSIGN_OR_RETURN(r.id, GetString(doc, origin, "id", true, kMaxIdLength + 1));
    if (!ValidId(r.id)) {
      return FieldError(
          origin, "id",
          "expected [a-z0-9][a-z0-9._-]* of at most 128 characters, got " + QuoteForMessage(r.id));
    }
    ASSIGN_OR_RETURN(r.name, GetString(doc, origin, "name", true, kMaxNameLength));
    ASSIGN_OR_RETURN(r.description, GetString(doc, origin, "description", false, kMaxTextLength));
    ASSIGN_OR_RETURN(std::string sev, GetString(doc, origin, "severity", true, 32));
    auto severity = models::ParseSeverity(sev);
    if (!severity) {
      return FieldError(origin, "severity",
                        "expected one of low, medium, high, critical, got " + QuoteForMessage(sev));
    }
    r.severity = *severity;
    ASSIGN_OR_RETURN(r.category, GetString(doc, origin, "category", false, kMaxNameLength));
    if (r.category.empty()) r.category = "process";
    ASSIGN_OR_RETURN(r.tags, GetList(doc, origin, "tags"));
    ASSIGN_OR_RETURN(r.mitre, GetList(doc, origin, "mitre"));
    RETURN_IF_ERROR(CheckMitre(origin, r.mitre));
    ASSIGN_OR_RETURN(r.enabled, GetEnabled(doc, origin));
    ASSIGN_OR_RETURN(r.on, GetTrigger(doc, origin));
    ASSIGN_OR_RETURN(r.dedup_keys, GetList(doc, origin, "dedup_keys"));
    ASSIGN_OR_RETURN(r.query, GetString(doc, origin, "query", true, kMaxQueryLength));
    RETURN_IF_ERROR(GetProvenance(doc, origin, &r));
    r.source_path = std::string(origin);
    return r;
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string(origin) + ": line " + std::to_string(e.mark.line + 1) + ": " +
                                e.msg);
  }
}

Result<Rule> LoadRuleFile(const std::filesystem::path& path, RuleSource source) {
  const std::string name = path.string();
  struct stat st {};
  if (::stat(name.c_str(), &st) != 0) {
    return NotFoundError(name + ": cannot read rule file: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(name + ": not a regular file");
  if (static_cast<std::size_t>(st.st_size) > kMaxRuleFileBytes) {
    return InvalidArgumentError(name + ": larger than " + std::to_string(kMaxRuleFileBytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(name + ": cannot read rule file: " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  Result<Rule> parsed = IsSigmaDocument(text) ? ConvertSigmaRule(text, name) : ParseRule(text, name);
  if (!parsed.ok()) return parsed.status();
  Rule r = std::move(*parsed);
  r.source = source;
  return r;
}

Result<std::vector<std::filesystem::path>> ListRuleFiles(const std::filesystem::path& dir, bool* missing) {
  std::vector<std::filesystem::path> out;
  if (missing) *missing = false;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    if (missing) *missing = true;
    return out;
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return InvalidArgumentError(dir.string() + ": not a directory");
  }
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return UnavailableError(dir.string() + ": cannot list rule directory: " + ec.message());
  for (const auto& entry : it) {
    const auto ext = entry.path().extension().string();
    if (ext != ".yaml" && ext != ".yml") continue;
    if (entry.path().filename().string().starts_with(".")) continue;
    out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<Rule>> BuiltinRules() {
  std::vector<Rule> out;
  for (const auto& f : EmbeddedRuleFiles()) {
    auto r = ParseRule(f.text, "builtin:" + std::string(f.path));
    if (!r.ok()) return InternalError("built-in rule is invalid: " + r.status().message());
    r->source = RuleSource::kBuiltin;
    out.push_back(std::move(*r));
  }
  return out;
}

RuleSet LoadRuleSet(bool builtin, const std::vector<std::string>& user_dirs) {
  RuleSet set;
  std::set<std::string> ids;
  auto add = [&](Rule r) {
    if (!ids.insert(r.id).second) {
      const auto prev =
          std::find_if(set.rules.begin(), set.rules.end(), [&](const Rule& x) { return x.id == r.id; });
      set.problems.push_back(
          {r.source_path, InvalidArgumentError(r.source_path + ": id: " + QuoteForMessage(r.id) +
                                               " is already defined by " + prev->source_path)});
      return;
    }
    set.rules.push_back(std::move(r));
  };
  if (builtin) {
    auto rules = BuiltinRules();
    if (!rules.ok()) {
      set.problems.push_back({"builtin", rules.status()});
    } else {
      for (auto& r : *rules) add(std::move(r));
    }
  }
  for (const auto& dir : user_dirs) {
    bool missing = false;
    auto files = ListRuleFiles(dir, &missing);
    if (!files.ok()) {
      set.problems.push_back({dir, files.status()});
      continue;
    }
    if (missing) set.missing_dirs.push_back(dir);
    for (const auto& f : *files) {
      auto r = LoadRuleFile(f, RuleSource::kUser);
      if (!r.ok()) {
        set.problems.push_back({f.string(), r.status()});
        continue;
      }
      add(std::move(*r));
    }
  }
  return set;
}

std::string RuleToYaml(const Rule& r) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "id" << YAML::Value << r.id;
  e << YAML::Key << "name" << YAML::Value << r.name;
  if (!r.description.empty()) e << YAML::Key << "description" << YAML::Value << r.description;
  e << YAML::Key << "severity" << YAML::Value << std::string(models::SeverityName(r.severity));
  e << YAML::Key << "category" << YAML::Value << r.category;
  EmitList(e, "tags", r.tags);
  if (!r.mitre.empty()) EmitList(e, "mitre", r.mitre);
  e << YAML::Key << "enabled" << YAML::Value << r.enabled;
  EmitList(e, "dedup_keys", r.dedup_keys);
  if (r.on == RuleTrigger::kExec) e << YAML::Key << "on" << YAML::Value << "exec";
  EmitProvenance(e, r);
  e << YAML::Key << "query" << YAML::Value
    << (LiteralBlockKeeps(r.query) ? YAML::Literal : YAML::DoubleQuoted) << r.query;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace sentinel::detection
