#include "sentinel/ipc/handlers.h"

#include <exception>
#include <utility>

namespace sentinel::ipc {

nlohmann::json Answer(const Handlers& handlers, const Request& req, bool* unknown) {
  auto h = handlers.find(req.cmd);
  if (unknown != nullptr) *unknown = h == handlers.end();
  if (h == handlers.end()) {
    return MakeError(req.id, "unknown command \"" + req.cmd + "\" (expected " + kCommandsHelp + ")");
  }
  Result<nlohmann::json> result = InternalError("handler threw");
  try {
    result = h->second(req);
  } catch (const std::exception& e) {
    result = InternalError(std::string("handler failed: ") + e.what());
  }
  if (result.ok()) return MakeReply(req.id, std::move(result).value());
  return MakeError(req.id, result.status().message());
}

}  // namespace sentinel::ipc
