// Where a host keeps what the fleet sent (SPEC §14, sentinel/fleet/bundle.h), beside its event
// store: the data directory is the directory of database.path, and
//   <data dir>/fleet-rules   the installed rule bundle, loaded as one more rules directory
// In every build, so that rules a bundle installed keep loading in a build without the fleet
// feature (SENTINEL_FLEET=OFF) as they did before.
//
// Thread-safety: free functions keep no state (RuleDirsWithFleet reads the file system).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/config/config.h"

namespace sentinel::config {

inline constexpr std::string_view kFleetRulesDirName = "fleet-rules";

std::filesystem::path FleetDataDir(const Config& cfg);
std::filesystem::path FleetRulesDir(const Config& cfg);
// detection.rules_dirs, plus the fleet rules directory when it exists (so a host without a
// bundle loads exactly what it did before).
std::vector<std::string> RuleDirsWithFleet(const Config& cfg);

}  // namespace sentinel::config
