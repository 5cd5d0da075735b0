#include "sentinel/models/process.h"

#include <nlohmann/json.hpp>

#include "sentinel/base/strings.h"

namespace sentinel::models {

std::string EncodeCommandLine(const std::vector<std::string>& argv) {
  // Arguments are attacker-controlled bytes; invalid UTF-8 is replaced so the
  // column is always valid JSON text.
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& a : argv) arr.push_back(IsValidUtf8(a) ? a : SanitizeUtf8(a));
  return arr.dump();
}

}  // namespace sentinel::models
