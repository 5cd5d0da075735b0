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

std::string JoinCommandLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out.push_back(' ');
    out += a;
  }
  return out;
}

std::string EncodeEnvironment(const std::vector<std::pair<std::string, std::string>>& env) {
  // Names and values come from the watched program's own memory.
  nlohmann::ordered_json obj = nlohmann::ordered_json::object();
  for (const auto& [name, value] : env) {
    obj[IsValidUtf8(name) ? name : SanitizeUtf8(name)] = IsValidUtf8(value) ? value : SanitizeUtf8(value);
  }
  return obj.dump();
}

}  // namespace sentinel::models
