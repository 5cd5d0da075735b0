// `sentinelcli export TABLE [--since T] [--until T] [--format jsonl|csv|json] [--output FILE]`
#pragma once

#include <string>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

struct ExportArgs {
  std::string table;
  std::string since, until;
  std::string format;  // default jsonl
  std::string output;  // empty: stdout
};

int RunExport(const CommandContext& ctx, const ExportArgs& args);

}  // namespace sentinel::cli
