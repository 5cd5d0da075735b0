#include "sentinel/models/process.h"

#include <nlohmann/json.hpp>

#include "sentinel/base/strings.h"

namespace sentinel::models {

namespace {

// Printable ASCII without '"' and '\\': the JSON string is the bytes quoted.
bool PlainJsonString(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace

std::string EncodeCommandLine(const std::vector<std::string>& argv) {
  // Arguments are attacker-controlled bytes; invalid UTF-8 is replaced so the
  // column is always valid JSON text. Written as nlohmann::json::dump writes
  // an array, with the common plain argument copied as it is (this runs for
  // every exec event procmond stores).
  std::string out = "[";
  for (const auto& a : argv) {
    if (out.size() > 1) out += ',';
    if (PlainJsonString(a)) {
      out += '"';
      out += a;
      out += '"';
    } else {
      out += nlohmann::json(IsValidUtf8(a) ? a : SanitizeUtf8(a)).dump();
    }
  }
  out += ']';
  return out;
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

std::shared_ptr<const EncodedArgv> EncodeArgv(const std::vector<std::string>& argv) {
  return std::make_shared<const EncodedArgv>(EncodedArgv{EncodeCommandLine(argv), JoinCommandLine(argv)});
}

}  // namespace sentinel::models
