// The start of every SentinelD program: the configuration layered as SPEC §6 says (default
// files or --config, SENTINELD_ variables, then the program's own flags) and the logger set up
// from it. One implementation for procmond, sentinelagent and sentinelcli.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/config/config.h"

namespace sentinel::config {

struct ProgramConfigOptions {
  std::string config_file;  // --config; empty: DefaultFiles()
  // Flags that set a key, as dotted key path -> YAML scalar text; an empty value is skipped (the
  // flag was not given).
  std::vector<std::pair<std::string, std::string>> flag_overrides;
};

// Loads the configuration of a program from the default files (or --config), the process
// environment and its flags.
Result<LoadedConfig> LoadProgramConfig(const ProgramConfigOptions& options);

// Sets up structured logging for `program` (its name in every line) at the configured level and
// format; a value the schema let through but the logger does not know falls back to info/json.
void InitProgramLogging(std::string_view program, const Config& config);

}  // namespace sentinel::config
