// Command handlers of a control channel, whatever carries the frames: the
// Unix-domain socket (control_socket.h) or the Windows named pipe
// (pipe_server.h). Both answer a request the same way, through Answer().
//
// Thread-safety: Answer() is as thread-safe as the handlers it calls.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/ipc/frame.h"

namespace sentinel::ipc {

// A command handler: the request in, the "result" object out, or an error
// (sent as {"ok": false, "error": message}).
using Handler = std::function<Result<nlohmann::json>(const Request&)>;
using Handlers = std::map<std::string, Handler>;

// The commands a daemon's channel serves, as the unknown-command error lists them.
inline constexpr const char* kCommandsHelp = "health, scan-now, reload, stats";

// The reply to a parsed request: the handler's result, its error, "handler
// failed: ..." when it threw, or "unknown command ..." when none is named so.
// *unknown (when given) is set when the command was not found.
nlohmann::json Answer(const Handlers& handlers, const Request& req, bool* unknown = nullptr);

}  // namespace sentinel::ipc
