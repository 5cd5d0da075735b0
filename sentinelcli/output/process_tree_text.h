// A process tree (the JSON shape of sentinel/history/process_tree.h,
// docs/process-tree.md) as text for a terminal, like `ps --forest` /
// `pstree`: one line per process, indented under its parent.
//
//   2026-05-01T09:00:00.000Z  pid 1  root  /sbin/init
//   └─ 2026-05-01T10:05:03.120Z  pid 4242  alice  exit 0  sh -c ./stage.sh
//      │  · exec 2026-05-01T10:05:03.125Z  sh ./stage.sh
//      ├─ 2026-05-01T10:05:03.130Z  pid 4243  alice  exit 0  curl -o /tmp/x http://10.0.0.5/x
//      └─ ▶ 2026-05-01T10:05:03.300Z  pid 4244  alice  exit 3  /tmp/x  [ALERT #12 high proc-exec-from-tmp]
//
// Per line: start time (UTC), pid, user (name, else "uid N", else "?"),
// "exit N" when the exit event was seen, the arguments joined by spaces
// (an empty argument or one holding a space in single quotes; no argv:
// "[name]"), then the alerts attached. The target is marked "▶ ". A
// process that exec'd more than once lists each exec under it. Children
// the limits left out are one line ("… 3 more children not shown"); a
// truncated tree ends with a line saying so.
//
// Everything from the host (argv, names, paths, users, alert titles and
// rules) goes through the one output escaper (base EscapeText), so no
// control character or bidi override reaches the terminal. With
// term.color the alert tags are coloured by severity (critical bold red,
// high red, medium yellow, low cyan) and the target line is bold; without
// it the output holds no escape code. With term.width > 0 the arguments
// are cut with "…" so the line fits (the rest of the line is kept; the
// arguments keep at least 12 columns); never in JSON.
//
// Thread-safety: pure; the stream is used by the calling thread only.
#pragma once

#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinelcli/output/terminal.h"

namespace sentinel::cli {

// Writes `tree` ({"target", "at", "root", "truncated"}). INVALID_ARGUMENT
// when it has no "root" object; write errors as RowWriter's.
Status WriteProcessTreeText(std::ostream& out, const nlohmann::ordered_json& tree, const TerminalInfo& term);

}  // namespace sentinel::cli
