// libFuzzer target for the rule loader (ParseRule, sentinel/detection/rule.h):
// a rule file's text -> Rule. `sentinelcli rules import` and rules.d take such
// files from operators; a rule that loads must survive `rules export`:
// RuleToYaml() parsed again gives the same rule (and the same checksum).
//   cmake --preset fuzz && cmake --build build/fuzz --target rule_fuzz
//   build/fuzz/fuzz/rule_fuzz -max_total_time=60 <copy of fuzz/corpus/rule>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sentinel/detection/rule.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string Escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// A field that changed across export and re-import, shown before aborting.
template <class T>
void Same(const char* field, const T& before, const T& after, const std::string& exported) {
  if (before == after) return;
  std::fprintf(stderr, "rule_fuzz: %s differs after RuleToYaml + ParseRule; exported YAML:\n%s\n", field,
               exported.c_str());
  if constexpr (std::is_same_v<T, std::string>) {
    std::fprintf(stderr, "rule_fuzz: before (%zu bytes): %s\nrule_fuzz: after (%zu bytes): %s\n",
                 before.size(), Escaped(before).c_str(), after.size(), Escaped(after).c_str());
  }
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sentinel::detection::ParseRule;
  using sentinel::detection::Rule;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto rule = ParseRule(in, "fuzz.yaml");
  if (!rule.ok()) {
    Check(rule.status().code() == sentinel::StatusCode::kInvalidArgument);
    Check(!rule.status().message().empty());
    return 0;
  }
  const std::string exported = sentinel::detection::RuleToYaml(*rule);
  auto again = ParseRule(exported, "fuzz.yaml");
  if (!again.ok()) {
    std::fprintf(stderr, "rule_fuzz: exported rule does not parse: %s\n%s\n",
                 again.status().message().c_str(), exported.c_str());
    std::abort();
  }
  const Rule& a = *rule;
  const Rule& b = *again;
  Same("id", a.id, b.id, exported);
  Same("name", a.name, b.name, exported);
  Same("description", a.description, b.description, exported);
  Same("severity", a.severity, b.severity, exported);
  Same("category", a.category, b.category, exported);
  Same("tags", a.tags, b.tags, exported);
  Same("mitre", a.mitre, b.mitre, exported);
  Same("enabled", a.enabled, b.enabled, exported);
  Same("dedup_keys", a.dedup_keys, b.dedup_keys, exported);
  Same("query", a.query, b.query, exported);
  Same("sigma_id", a.sigma_id, b.sigma_id, exported);
  Same("author", a.author, b.author, exported);
  Same("status", a.status, b.status, exported);
  Same("references", a.references, b.references, exported);
  Same("falsepositives", a.falsepositives, b.falsepositives, exported);
  Check(a.Checksum() == b.Checksum());
  return 0;
}
