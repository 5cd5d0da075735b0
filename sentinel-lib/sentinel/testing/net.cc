#include "sentinel/testing/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <fstream>
#include <random>

namespace sentinel::testing {
namespace {

// Binds 127.0.0.1:`port` (0: the kernel picks) and returns the port bound,
// 0 when it was taken.
int TryBind(int type, int port) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(static_cast<uint16_t>(port));
  int bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    socklen_t len = sizeof sa;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) bound = ntohs(sa.sin_port);
  }
  ::close(fd);
  return bound;
}

// The first port the kernel hands out as the source of an outgoing
// connection (net.ipv4.ip_local_port_range), 32768 when unreadable.
int EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 0, hi = 0;
  if (in >> lo >> hi && lo > 0) return lo;
  return 32768;
}

}  // namespace

int FreePort(int type) {
  // Below the ephemeral range: no outgoing connection of any process (a
  // client retrying a server that is down, for one) is given this port as
  // its source, so a server stopped and started again on it can bind it.
  // Random, so that tests running in parallel rarely try the same one.
  constexpr int kLow = 10000;
  const int high = EphemeralLow() - 1;
  if (high - kLow >= 1000) {
    thread_local std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
    std::uniform_int_distribution<int> pick(kLow, high);
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (int port = TryBind(type, pick(rng)); port != 0) return port;
    }
  }
  return TryBind(type, 0);
}

}  // namespace sentinel::testing
