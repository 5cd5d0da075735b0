// regexp() in a build without the sigma feature (SENTINEL_SIGMA=OFF, no RE2;
// regexp_function.h): nothing is registered, so SQLite refuses a query that
// calls it when the sandbox prepares it, and the sandbox says why.
#include "sentinel/base/features.h"
#include "sentinel/detection/regexp_function.h"

namespace sentinel::detection {

Result<std::shared_ptr<const re2::RE2>> CompileRegexp(std::string_view) {
  return UnimplementedError(RegexpUnavailableReason());
}

Status RegisterRegexpFunction(sqlite3*) {
  return Status::Ok();
}

std::string RegexpUnavailableReason() {
  return "regexp() is part of the sigma feature: " + NotBuiltReason(Feature::kSigma);
}

}  // namespace sentinel::detection
