// `sentinelcli rules import BUNDLE` in a build without the fleet feature
// (SENTINEL_FLEET=OFF: no libsodium to check the signature, no bundle code):
// a file that holds a bundle envelope is still recognised, and refused with
// exit 2 naming the option rather than read as a malformed rule.
#include <sys/stat.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "sentinel/base/features.h"
#include "sentinelcli/commands/bundle_import.h"

namespace sentinel::cli {
namespace {

constexpr std::size_t kMaxRead = std::size_t{2} << 20;

}  // namespace

// As fleet::LooksLikeBundleEnvelope (sentinel/fleet/bundle.h): a JSON object
// with a "kind" or "sig" field, which no rule file has.
bool ReadBundleFile(const std::string& path, std::string* text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  std::string content;
  content.resize(kMaxRead);
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  content.resize(static_cast<std::size_t>(in.gcount()));
  const std::size_t start = content.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || content[start] != '{') return false;
  const nlohmann::json j = nlohmann::json::parse(content, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || (!j.contains("kind") && !j.contains("sig"))) return false;
  *text = std::move(content);
  return true;
}

int RunBundleImport(const CommandContext& ctx, const std::string& path, std::string_view) {
  return Fail(ctx, UnimplementedError(path + ": a signed rule bundle: " + NotBuiltReason(Feature::kFleet)));
}

}  // namespace sentinel::cli
