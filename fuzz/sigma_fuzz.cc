// libFuzzer target for the Sigma translator (ConvertSigmaRule, sentinel/detection/sigma.h):
// a Sigma file's text -> native Rule. `sentinelcli rules convert|import|validate` and the
// agent's rules directories take such files from operators and from the community. A refusal
// is InvalidArgument with a message; a rule that translates survives `rules export` (RuleToYaml
// parsed again gives the same checksum) and its detection evaluates over any event.
//   cmake --preset fuzz && cmake --build build/fuzz --target sigma_fuzz
//   build/fuzz/fuzz/sigma_fuzz -max_total_time=60 <copy of fuzz/corpus/sigma>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/detection/rule.h"
#include "sentinel/detection/sigma.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "sigma_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sentinel::detection;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseSigmaRule(in, "fuzz.yml");
  if (!parsed.ok()) {
    Check(parsed.status().code() == sentinel::StatusCode::kInvalidArgument, "refusal is not InvalidArgument");
    Check(parsed.status().message().rfind("fuzz.yml: ", 0) == 0, "refusal does not name the file");
    return 0;
  }
  const Rule rule = SigmaToRule(*parsed, "fuzz.yml");
  auto again = ParseRule(RuleToYaml(rule), "fuzz.yaml");
  if (!again.ok()) {
    // Only a query over the native format's length limit may fail to read back.
    Check(rule.query.size() > 200 * 1024, again.status().message().c_str());
    return 0;
  }
  Check(again->Checksum() == rule.Checksum(), "checksum changed across RuleToYaml + ParseRule");
  SigmaEvent empty;
  SigmaEvent full;
  for (auto& v : full) v = std::string(in.substr(0, 64));
  (void)EvaluateSigma(parsed->detection, empty);
  (void)EvaluateSigma(parsed->detection, full);
  return 0;
}
