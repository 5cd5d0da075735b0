// `sentinelcli rules ...` (SPEC §9): list, show, validate, test, enable,
// disable, import and export detection rules.
//
// The rule set is what the agent would load: the built-in rules (unless
// detection.builtin_rules is false) and the files of detection.rules_dirs.
// list/show/validate/test/export never write anything; enable/disable write
// the operator override in detection_rules (an explicit write connection to
// an existing event store); import copies validated files into the first
// rules directory. A running agent picks changes up on SIGHUP or at its next
// start; the override is read at every detection cycle.
#pragma once

#include <string>
#include <vector>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

int RunRulesList(const CommandContext& ctx);
int RunRulesShow(const CommandContext& ctx, const std::string& id);
int RunRulesValidate(const CommandContext& ctx, const std::vector<std::string>& files);
// `rules test ID|FILE [--since T]`: without --since over the latest scan
// (an `on: exec` rule over the scan's processes as exec_events); with it
// (exec rules only) over the stored exec events since T, as the real-time
// detector evaluates them. Never creates an alert.
int RunRulesTest(const CommandContext& ctx, const std::string& id_or_file, const std::string& since = "");
int RunRulesEnable(const CommandContext& ctx, const std::string& id, bool enabled);
int RunRulesImport(const CommandContext& ctx, const std::string& path);
int RunRulesExport(const CommandContext& ctx, const std::string& output_dir);
// `rules coverage [--builtin] [--markdown]`: the ATT&CK tactics and
// techniques the rule set covers (mitre ids under the tactics of each rule's
// tags), as rows (--format), or as the Markdown table docs/rules.md holds.
int RunRulesCoverage(const CommandContext& ctx, bool builtin_only, bool markdown);
// `rules convert FILE|DIR [--output DIR]` (SPEC §13): translates Sigma rules
// (a directory is searched recursively for *.yml / *.yaml) into native rules
// checked in the sandbox; prints them as YAML documents separated by `---`,
// or writes <id>.yaml into output_dir. Each refused file is one stderr line
// naming the file, the construct and why; exit 2 if any was refused.
int RunRulesConvert(const CommandContext& ctx, const std::string& path, const std::string& output_dir);

}  // namespace sentinel::cli
