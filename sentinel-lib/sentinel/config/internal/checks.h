// Shape checks for configuration strings (host:port, URLs, syslog addresses, names). Private to
// the config module; the schema (schema.h) refers to them. Pure functions, thread-safe.
#pragma once

#include <string_view>

namespace sentinel::config::internal {

// Valid UTF-8 without control characters (C0, DEL). Applies to every configured string.
bool IsCleanText(std::string_view s);

bool IsNonEmpty(std::string_view s);
// Unix socket paths are limited to 108 bytes; the directory leaves room for the socket names.
bool IsSocketDir(std::string_view s);
// [A-Za-z_][A-Za-z0-9_.-]* with an optional trailing '$', at most 32 characters.
bool IsUserName(std::string_view s);
// One of the Linux capability names CAP_CHOWN .. CAP_CHECKPOINT_RESTORE (upper case).
bool IsCapabilityName(std::string_view s);
// A user name that is not "root" (privileges.user: the daemons never run as root).
bool IsServiceUserName(std::string_view s);
// A capability procmond may keep after dropping root: CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH.
bool IsKeepableCapability(std::string_view s);
// "" or host:port, host a name, an IPv4 address or a bracketed IPv6 address, port 1..65535.
bool IsHostPortOrEmpty(std::string_view s);
bool IsHostPort(std::string_view s);
// [A-Za-z0-9_.-]+, at most 64 characters.
bool IsSinkName(std::string_view s);
// udp://host:port, tcp://host:port or unix:///absolute/path.
bool IsSyslogAddress(std::string_view s);
// http:// or https:// followed by a host (and optional :port, path, query).
bool IsHttpUrl(std::string_view s);
// smtp:// or smtps:// followed by a host (and optional :port).
bool IsSmtpUrl(std::string_view s);
// nats://[user:pass@]host[:port] or tls://... (a NATS server URL).
bool IsNatsUrl(std::string_view s);
// "" or a fleet host id: one NATS subject token, [A-Za-z0-9_-]{1,64}.
bool IsHostIdOrEmpty(std::string_view s);
// An Ed25519 public key as 64 lowercase hex characters.
bool IsPublicKeyHex(std::string_view s);
// local@domain, optionally as "Display Name <local@domain>".
bool IsEmailAddress(std::string_view s);
// An HTTP header field name (RFC 9110 token).
bool IsHeaderName(std::string_view s);
// "" or an environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool IsEnvVarNameOrEmpty(std::string_view s);

}  // namespace sentinel::config::internal
