// Test helpers for loopback networking. Test-only.
#pragma once

#include <sys/socket.h>

namespace sentinel::testing {

// A loopback port of socket `type` (SOCK_STREAM or SOCK_DGRAM) that was free
// a moment ago: bound to 127.0.0.1, then released. Nothing listens on it,
// which makes it a dead peer; a peer about to start can also take it, at the
// usual small risk that another process takes it first. It is picked at
// random below the kernel's ephemeral range (ip_local_port_range), so the
// source port of an outgoing connection never takes it: a server stopped and
// restarted on it (NatsCluster::Restart) can bind it again.
int FreePort(int type = SOCK_STREAM);

}  // namespace sentinel::testing
