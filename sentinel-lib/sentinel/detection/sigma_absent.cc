// The Sigma entry points of a build without the sigma feature
// (SENTINEL_SIGMA=OFF; sigma.h): every Sigma file is refused naming the
// option, and the query worker's prefilter (sigma_prefilter.h) has nothing
// to work on, since no rule carries a Sigma detection here.
#include <cstdlib>

#include "sentinel/base/features.h"
#include "sentinel/detection/sigma.h"
#include "sentinel/detection/sigma_prefilter.h"

namespace sentinel::detection {
namespace {

Status NotBuilt(std::string_view origin) {
  return InvalidArgumentError(std::string(origin) + ": Sigma rule: " + NotBuiltReason(Feature::kSigma));
}

}  // namespace

Result<SigmaRule> ParseSigmaRule(std::string_view, std::string_view origin) {
  return NotBuilt(origin);
}

Result<Rule> ConvertSigmaRule(std::string_view, std::string_view origin) {
  return NotBuilt(origin);
}

bool SigmaPrefilterApplies(const SigmaExpr&) {
  return false;
}

void EncodeSigmaExpr(const SigmaExpr&, std::string*) {
  std::abort();  // no SigmaExpr is ever made in this build
}

Result<SigmaExpr> DecodeSigmaExpr(std::string_view) {
  return InternalError("a Sigma detection in a worker request: " + NotBuiltReason(Feature::kSigma));
}

Result<SigmaExpr> DecodePreparedSigmaExpr(std::string_view bytes) {
  return DecodeSigmaExpr(bytes);
}

Result<SigmaBatch> ReadSigmaEvents(storage::Database&) {
  return FailedPreconditionError("the Sigma prefilter: " + NotBuiltReason(Feature::kSigma));
}

bool AnySigmaMatch(const SigmaExpr&, const SigmaBatch&) {
  return true;  // nothing is ruled out: the rule's SQL runs
}

}  // namespace sentinel::detection
