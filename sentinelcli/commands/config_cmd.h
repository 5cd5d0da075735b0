// `sentinelcli config show` and `sentinelcli config validate [FILE]`.
#pragma once

#include <string>

#include "sentinelcli/commands/context.h"

namespace sentinel::cli {

// Webhook header values and URL passwords are replaced by <redacted>.
config::Config RedactSecrets(config::Config c);

// ctx.config is already loaded (a load failure never reaches here).
int RunConfigShow(const CommandContext& ctx);
// With a FILE: validates that file alone over the defaults. Without: the
// layered configuration the binaries would use (already loaded in ctx).
int RunConfigValidate(const CommandContext& ctx, const std::string& file);

}  // namespace sentinel::cli
