#include "sentinel/fleet/nats_client.h"

#include <nats/nats.h>

namespace sentinel::fleet {

Result<std::unique_ptr<NatsClient>> NatsClient::Connect(const ConnectOptions& options) {
  if (options.servers.empty()) return InvalidArgumentError("NATS: no servers given");
  return UnimplementedError("NATS client not implemented yet");
}

}  // namespace sentinel::fleet
