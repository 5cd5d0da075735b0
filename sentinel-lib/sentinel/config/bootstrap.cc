#include "sentinel/config/bootstrap.h"

#include "sentinel/telemetry/log.h"

namespace sentinel::config {

Result<LoadedConfig> LoadProgramConfig(const ProgramConfigOptions& options) {
  LoadOptions opts;
  opts.optional_files = DefaultFiles();
  if (!options.config_file.empty()) opts.explicit_file = options.config_file;
  opts.environment = CurrentEnvironment();
  for (const auto& [key, value] : options.flag_overrides) {
    if (!value.empty()) opts.overrides.emplace_back(key, value);
  }
  return Load(opts);
}

void InitProgramLogging(std::string_view program, const Config& config) {
  auto level = telemetry::ParseLogLevel(config.telemetry.log_level);
  auto format = telemetry::ParseLogFormat(config.telemetry.log_format);
  telemetry::InitLogging(std::string(program), level.ok() ? *level : telemetry::LogLevel::kInfo,
                         format.ok() ? *format : telemetry::LogFormat::kJson);
}

}  // namespace sentinel::config
