// Telling a Sigma rule from a native one: in every build, so that a build
// without the sigma feature refuses a Sigma file as such (sigma_absent.cc)
// rather than as a malformed native rule.
#include <yaml-cpp/yaml.h>

#include "sentinel/detection/sigma.h"

namespace sentinel::detection {

bool IsSigmaDocument(std::string_view yaml_text) {
  try {
    const YAML::Node doc = YAML::Load(std::string(yaml_text));
    return doc.IsMap() && doc["logsource"].IsDefined() && doc["detection"].IsDefined();
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace sentinel::detection
