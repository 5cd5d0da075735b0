// What sentinelcli knows about the terminal it writes to: whether colour is
// allowed and how wide a table may be (SPEC §9). The detection itself is
// sentinel-lib's (sentinel/base/terminal.h), shared with the agent's stdout
// sink; these names keep the output layer's spelling.
//
// Thread-safety: as sentinel::DetectTerminal (reads the environment; call it
// once from main before starting threads).
#pragma once

#include "sentinel/base/terminal.h"

namespace sentinel::cli {

using sentinel::DetectTerminal;
using sentinel::TerminalInfo;

}  // namespace sentinel::cli
