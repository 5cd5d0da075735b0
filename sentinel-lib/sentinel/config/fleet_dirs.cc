#include "sentinel/config/fleet_dirs.h"

#include <algorithm>
#include <system_error>

namespace sentinel::config {

namespace fs = std::filesystem;

fs::path FleetDataDir(const Config& cfg) {
  const fs::path parent = fs::path(cfg.database.path).parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

fs::path FleetRulesDir(const Config& cfg) {
  return FleetDataDir(cfg) / kFleetRulesDirName;
}

std::vector<std::string> RuleDirsWithFleet(const Config& cfg) {
  std::vector<std::string> dirs = cfg.detection.rules_dirs;
  const fs::path fleet = FleetRulesDir(cfg);
  std::error_code ec;
  if (fs::is_directory(fleet, ec) && std::find(dirs.begin(), dirs.end(), fleet.string()) == dirs.end())
    dirs.push_back(fleet.string());
  return dirs;
}

}  // namespace sentinel::config
