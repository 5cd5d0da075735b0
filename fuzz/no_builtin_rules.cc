// The fuzz targets that compile rule.cc do so without the generated built-in
// rules (rules/*.yaml are their seeds instead): an empty set.
#include <vector>

#include "sentinel/detection/rule.h"

namespace sentinel::detection {
const std::vector<EmbeddedRuleFile>& EmbeddedRuleFiles() {
  static const std::vector<EmbeddedRuleFile> none;
  return none;
}
}  // namespace sentinel::detection
