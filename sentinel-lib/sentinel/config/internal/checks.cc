#include "sentinel/config/internal/checks.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <initializer_list>

#include "sentinel/base/strings.h"

namespace sentinel::config::internal {
namespace {

// linux/capability.h, 0 .. CAP_LAST_CAP (40) as of Linux 5.9+.
constexpr std::array<std::string_view, 41> kCapabilities = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

// Room for "/<component>.sock" under the directory within sun_path's 108 bytes.
constexpr size_t kMaxSocketDirBytes = 90;

bool IsAlnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

bool AllOf(std::string_view s, bool (*pred)(char)) {
  return std::all_of(s.begin(), s.end(), pred);
}

bool IsPort(std::string_view s) {
  if (s.empty() || s.size() > 5 || !AllOf(s, [](char c) { return c >= '0' && c <= '9'; })) return false;
  auto port = ParseInt64(s);
  return port && *port >= 1 && *port <= 65535;
}

// A DNS name or an IPv4 address; deliberately permissive about labels ('_' is seen in the wild).
bool IsHostName(std::string_view s) {
  return !s.empty() && s.size() <= 253 &&
         AllOf(s, [](char c) { return IsAlnum(c) || c == '.' || c == '-' || c == '_'; });
}

bool IsIpv6Literal(std::string_view s) {
  return s.find(':') != std::string_view::npos && AllOf(s, [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
         });
}

bool IsHost(std::string_view s) {
  if (StartsWith(s, "[")) return EndsWith(s, "]") && IsIpv6Literal(s.substr(1, s.size() - 2));
  return IsHostName(s);
}

// host or host:port (an IPv6 host in brackets).
bool IsHostOptionalPort(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || (StartsWith(s, "[") && EndsWith(s, "]"))) return IsHost(s);
  return IsHostPort(s);
}

// scheme://[userinfo@]host[:port][/path][?query][#fragment] for one of `schemes`.
bool IsUrl(std::string_view s, std::initializer_list<std::string_view> schemes) {
  if (s.find(' ') != std::string_view::npos) return false;
  for (std::string_view scheme : schemes) {
    if (!StartsWith(s, scheme)) continue;
    std::string_view rest = s.substr(scheme.size());
    std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos) authority = authority.substr(at + 1);
    return IsHostOptionalPort(authority);
  }
  return false;
}

}  // namespace

bool IsCleanText(std::string_view s) {
  if (!IsValidUtf8(s)) return false;
  return std::none_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7F;
  });
}

bool IsNonEmpty(std::string_view s) {
  return !s.empty();
}

bool IsSocketDir(std::string_view s) {
  return !s.empty() && s.size() <= kMaxSocketDirBytes;
}

bool IsUserName(std::string_view s) {
  if (EndsWith(s, "$")) s.remove_suffix(1);
  if (s.empty() || s.size() > 32) return false;
  if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return AllOf(s, [](char c) { return IsAlnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool IsCapabilityName(std::string_view s) {
  return std::find(kCapabilities.begin(), kCapabilities.end(), s) != kCapabilities.end();
}

bool IsServiceUserName(std::string_view s) {
  return IsUserName(s) && s != "root";
}

bool IsKeepableCapability(std::string_view s) {
  return s == "CAP_SYS_PTRACE" || s == "CAP_DAC_READ_SEARCH";
}

bool IsHostPort(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  return IsHost(s.substr(0, colon)) && IsPort(s.substr(colon + 1));
}

bool IsHostPortOrEmpty(std::string_view s) {
  return s.empty() || IsHostPort(s);
}

bool IsSinkName(std::string_view s) {
  return !s.empty() && s.size() <= 64 &&
         AllOf(s, [](char c) { return IsAlnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool IsSyslogAddress(std::string_view s) {
  if (StartsWith(s, "udp://") || StartsWith(s, "tcp://")) return IsHostPort(s.substr(6));
  if (StartsWith(s, "unix://")) {
    std::string_view path = s.substr(7);
    return path.size() > 1 && path[0] == '/' && path.size() < 108;
  }
  return false;
}

bool IsHttpUrl(std::string_view s) {
  return IsUrl(s, {"http://", "https://"});
}

bool IsSmtpUrl(std::string_view s) {
  return IsUrl(s, {"smtp://", "smtps://"});
}

bool IsNatsUrl(std::string_view s) {
  return IsUrl(s, {"nats://", "tls://"});
}

bool IsHostIdOrEmpty(std::string_view s) {
  return s.empty() || (s.size() <= 64 && AllOf(s, [](char c) { return IsAlnum(c) || c == '_' || c == '-'; }));
}

bool IsPublicKeyHex(std::string_view s) {
  return s.size() == 64 && AllOf(s, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsEmailAddress(std::string_view s) {
  size_t open = s.find('<');
  if (open != std::string_view::npos) {
    if (!EndsWith(s, ">")) return false;
    s = s.substr(open + 1, s.size() - open - 2);
  }
  size_t at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return false;
  return std::none_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '<' || c == '>'; });
}

bool IsHeaderName(std::string_view s) {
  static constexpr std::string_view kTokenPunct = "!#$%&'*+-.^_`|~";
  return !s.empty() &&
         AllOf(s, [](char c) { return IsAlnum(c) || kTokenPunct.find(c) != std::string_view::npos; });
}

}  // namespace sentinel::config::internal

namespace sentinel::config::internal {

bool IsEnvVarNameOrEmpty(std::string_view s) {
  if (s.empty()) return true;
  if (!(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) return false;
  return AllOf(s, [](char c) { return c == '_' || IsAlnum(c); });
}

}  // namespace sentinel::config::internal
