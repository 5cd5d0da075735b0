// What sentinelcli and sentinelfleet share of their command lines (CLI11):
// naming an unknown command, and CLI11's error messages escaped like every
// other text they print (the arguments quoted in them are the user's, or a
// script's that took them from a host).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

namespace sentinel::cli {

// The global flags both programs take (SPEC §9): --config, --database (the
// program's own store), --format, --json, --no-color.
struct GlobalOptions {
  std::string config_file;
  std::string database;
  std::string format;  // empty: the command's default
  bool json = false;
  bool no_color = false;
};

// Adds them to `app`; `database_help` says which store --database names.
void AddGlobalOptions(CLI::App& app, GlobalOptions& global, const std::string& database_help);

// The first word of argv that is neither an option nor the value of one of
// `value_options` (global options that take a value, e.g. "--config"), or
// nullptr.
const char* FirstCommandWord(int argc, char** argv, std::initializer_list<std::string_view> value_options);

// The first command word (FirstCommandWord) when it is none of `commands`,
// else nullptr: the caller names it instead of CLI11's "A subcommand is
// required".
const char* UnknownCommandWord(int argc, char** argv, std::initializer_list<std::string_view> value_options,
                               std::initializer_list<std::string_view> commands);

// Makes `app` print CLI11's failure messages through EscapeText.
void EscapeFailureMessages(CLI::App& app);

}  // namespace sentinel::cli
