#include "sentinelcli/output/command_line.h"

#include <string>

#include "sentinel/base/escape.h"

namespace sentinel::cli {

const char* FirstCommandWord(int argc, char** argv, std::initializer_list<std::string_view> value_options) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    bool takes_value = false;
    for (std::string_view o : value_options) takes_value = takes_value || a == o;
    if (takes_value) {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    return argv[i];
  }
  return nullptr;
}

const char* UnknownCommandWord(int argc, char** argv, std::initializer_list<std::string_view> value_options,
                               std::initializer_list<std::string_view> commands) {
  const char* word = FirstCommandWord(argc, argv, value_options);
  if (word == nullptr) return nullptr;
  for (std::string_view c : commands) {
    if (c == word) return nullptr;
  }
  return word;
}

void AddGlobalOptions(CLI::App& app, GlobalOptions& global, const std::string& database_help) {
  app.add_option("--config", global.config_file, "Configuration file (layered over the defaults)");
  app.add_option("--database", global.database, database_help);
  app.add_option("--format", global.format, "Output format: table, json or csv");
  app.add_flag("--json", global.json, "Same as --format json");
  app.add_flag("--no-color", global.no_color, "No colour in table output");
}

void EscapeFailureMessages(CLI::App& app) {
  app.failure_message([](const CLI::App* failed, const CLI::Error& e) {
    std::string text = CLI::FailureMessage::simple(failed, e);
    const std::string_view what = e.what();
    if (text.compare(0, what.size(), what) == 0) text.replace(0, what.size(), EscapeText(what));
    return text;
  });
}

}  // namespace sentinel::cli
