// The configuration schema, declared once: every key with its type (the member it fills), its
// range or allowed values (the rule) and its description. Defaults are the member initialisers in
// config.h. Validation, unknown-key messages, ToJson, ToYaml and Keys() all walk these
// declarations with a visitor:
//
//   v(const Key& key, Member& member, const Rule& rule)
//
// where Rule is one of IntRule, BoolRule, StrRule, ListRule, MapRule, SectionRule (a nested
// mapping, described by its own Describe overload) or SinkListRule. Private to the config module.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <type_traits>

#include "sentinel/config/config.h"
#include "sentinel/config/internal/checks.h"

namespace sentinel::config::internal {

// Sink types, as bits in the order of kSinkTypes.
inline constexpr std::array<std::string_view, 6> kSinkTypes = {"stdout",  "file",  "syslog",
                                                               "webhook", "email", "nats"};
inline constexpr unsigned kStdoutSink = 1u << 0;
inline constexpr unsigned kFileSink = 1u << 1;
inline constexpr unsigned kSyslogSink = 1u << 2;
inline constexpr unsigned kWebhookSink = 1u << 3;
inline constexpr unsigned kEmailSink = 1u << 4;
inline constexpr unsigned kNatsSink = 1u << 5;
inline constexpr unsigned kAnySink = (1u << kSinkTypes.size()) - 1;

struct Key {
  std::string_view name;
  std::string_view doc;
  unsigned sink_types = kAnySink;  // inside a sink entry: the sink types the key belongs to
  bool required = false;           // inside a sink entry: must be given
  // A change takes effect only when the binaries restart: a SIGHUP reload keeps the running value
  // and warns (RestartOnlyChanges). On a section it covers every key of the section. Every other key is
  // re-applied by the binaries that use it on SIGHUP (procmond: collection.interval_secs, hash_executables,
  // max_hash_bytes, telemetry log keys; sentinelagent: detection, alerting, database retention and
  // maintenance, telemetry log keys). Marking a key here is all it takes to make a reload keep it.
  bool restart = false;
};

inline constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

struct IntRule {
  int64_t min;
  int64_t max = kNoLimit;
};
struct BoolRule {};
// A string: `choices` when non-empty (an enum), else `valid` decides and `expected` says what is
// wanted. Every string must also be IsCleanText.
struct StrRule {
  std::string_view expected;
  bool (*valid)(std::string_view) = nullptr;
  std::span<const std::string_view> choices = {};
};
// A list of distinct strings, each checked against `element`.
struct ListRule {
  StrRule element;
  std::string_view expected;
  bool non_empty = false;
};
struct MapRule {
  StrRule key;
  StrRule value;
  std::string_view expected;
};
struct SectionRule {};
struct SinkListRule {};

inline constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                               "error", "critical", "off"};
inline constexpr std::array<std::string_view, 2> kLogFormats = {"json", "text"};
inline constexpr std::array<std::string_view, 2> kStdoutFormats = {"text", "json"};
// file, webhook, nats: the native alert JSON or an OCSF Detection Finding (docs/alert-delivery.md).
inline constexpr std::array<std::string_view, 2> kFileFormats = {"json", "ocsf"};
inline constexpr std::array<std::string_view, 3> kForwardKinds = {"alerts", "scans", "events"};
inline constexpr std::array<std::string_view, 4> kRealtimeSources = {"auto", "ebpf", "netlink", "off"};
inline constexpr std::array<std::string_view, 3> kScanSources = {"auto", "ebpf", "proc"};
inline constexpr std::array<std::string_view, 3> kFsyncPolicies = {"always", "batch", "never"};
inline constexpr std::array<std::string_view, 5> kMinSeverities = {"", "low", "medium", "high", "critical"};
inline constexpr std::array<std::string_view, 20> kFacilities = {
    "kern",     "user", "mail",   "daemon", "auth",   "syslog", "lpr",    "news",   "uucp",   "cron",
    "authpriv", "ftp",  "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"};

inline constexpr int64_t kDaySecs = 86400;
inline constexpr int64_t kDayMs = kDaySecs * 1000;

inline constexpr BoolRule kBool;
inline constexpr StrRule kPath{"a non-empty path", IsNonEmpty};
inline constexpr StrRule kSocketDir{"a directory path of at most 90 bytes", IsSocketDir};
inline constexpr StrRule kServiceUser{
    "an unprivileged user name, not root ([A-Za-z_][A-Za-z0-9_.-]*, at most 32 characters)",
    IsServiceUserName};
inline constexpr StrRule kLogLevel{"", nullptr, kLogLevels};
inline constexpr StrRule kLogFormat{"", nullptr, kLogFormats};
inline constexpr StrRule kRealtimeSource{"", nullptr, kRealtimeSources};
inline constexpr StrRule kScanSource{"", nullptr, kScanSources};
inline constexpr StrRule kHttpListen{"\"\" or host:port with port 1..65535", IsHostPortOrEmpty};
inline constexpr StrRule kSinkName{"a sink name of [a-zA-Z0-9_.-]+", IsSinkName};
inline constexpr StrRule kSinkType{"", nullptr, kSinkTypes};
inline constexpr StrRule kStdoutFormat{"", nullptr, kStdoutFormats};
inline constexpr StrRule kFileFormat{"", nullptr, kFileFormats};
inline constexpr StrRule kSyslogAddress{"udp://host:port, tcp://host:port or unix:///absolute/path",
                                        IsSyslogAddress};
inline constexpr StrRule kFacility{"", nullptr, kFacilities};
inline constexpr StrRule kHttpUrl{"an http:// or https:// URL with a host", IsHttpUrl};
inline constexpr StrRule kSmtpUrl{"an smtp:// or smtps:// URL with a host", IsSmtpUrl};
inline constexpr StrRule kEmailAddress{"an email address", IsEmailAddress};
inline constexpr StrRule kMinSeverity{"", nullptr, kMinSeverities};
inline constexpr StrRule kFsyncPolicy{"", nullptr, kFsyncPolicies};
inline constexpr StrRule kEnvVarName{"\"\" or an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                                     IsEnvVarNameOrEmpty};
inline constexpr StrRule kOptionalPath{"\"\" or a path"};
inline constexpr StrRule kHeaderName{"an HTTP header name", IsHeaderName};
inline constexpr StrRule kOptionalText{"text"};
inline constexpr ListRule kPathList{kPath, "a list of paths"};
inline constexpr ListRule kNatsServerList{StrRule{"a nats:// or tls:// URL with a host", IsNatsUrl},
                                          "a list of NATS server URLs"};
inline constexpr StrRule kHostId{"\"\" or a host id of [A-Za-z0-9_-], at most 64 characters",
                                 IsHostIdOrEmpty};
inline constexpr ListRule kTrustedKeyList{
    StrRule{"an Ed25519 public key as 64 lowercase hex characters", IsPublicKeyHex},
    "a list of Ed25519 public keys (64 lowercase hex each)"};
inline constexpr ListRule kForwardList{StrRule{"", nullptr, kForwardKinds},
                                       "a list of what leaves the host (alerts, scans, events)"};
// What procmond may keep after the drop (docs/decisions.md #19): reading every
// /proc/PID and hashing every executable. Nothing it does after the drop needs more.
inline constexpr ListRule kKeepCapabilityList{
    StrRule{"CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH (the only capabilities procmond may keep after "
            "dropping root)",
            IsKeepableCapability},
    "a list of capability names"};
inline constexpr ListRule kEmailList{kEmailAddress, "a non-empty list of email addresses",
                                     /*non_empty=*/true};
inline constexpr MapRule kHeaders{StrRule{"an HTTP header name", IsHeaderName}, StrRule{"a header value"},
                                  "a mapping of header names to values"};

// C is T or const T, so one declaration serves readers and writers.
template <class C, class T>
concept Of = std::same_as<std::remove_const_t<C>, T>;

template <class V, Of<RetryConfig> C>
void Describe(V& v, C& c) {
  v({"max_attempts", "delivery attempts per alert and sink, the first included"}, c.max_attempts,
    IntRule{1, 100});
  v({"initial_backoff_ms", "delay before the first retry; doubles with each retry"}, c.initial_backoff_ms,
    IntRule{1, kDayMs});
  v({"max_backoff_ms", "upper bound of the retry delay (at least initial_backoff_ms)"}, c.max_backoff_ms,
    IntRule{1, kDayMs});
}

template <class V, Of<CircuitBreakerConfig> C>
void Describe(V& v, C& c) {
  v({"failure_threshold", "consecutive failures that open a sink's circuit"}, c.failure_threshold,
    IntRule{1, 10000});
  v({"open_secs", "how long an open circuit rejects deliveries before a trial"}, c.open_secs,
    IntRule{1, kDaySecs});
}

// Sink keys, in this order: those of every sink, of stdout and of file sinks
// (SinkBasics), then those of syslog, webhook and email sinks
// (SinkTransport). Keys are listed for every type they belong to; `format`
// has a different rule per type.
template <class V, Of<SinkConfig> C>
void DescribeSinkBasics(V& v, C& c) {
  v({.name = "name",
     .doc = "unique name, used in deliveries, metrics and the dead-letter queue",
     .required = true},
    c.name, kSinkName);
  v({.name = "type", .doc = "stdout, file, syslog, webhook, email or nats", .required = true}, c.type,
    kSinkType);
  v({.name = "min_severity", .doc = "deliver only alerts at least this severe; \"\" delivers all"},
    c.min_severity, kMinSeverity);
  v({.name = "enabled", .doc = "false keeps the definition but delivers nothing"}, c.enabled, kBool);
  v({.name = "format", .doc = "text (one line per alert) or json", .sink_types = kStdoutSink}, c.format,
    kStdoutFormat);
  v({.name = "format",
     .doc = "json: the alert object (file: one per line); ocsf: an OCSF 1.1 Detection Finding",
     .sink_types = kFileSink | kWebhookSink | kNatsSink},
    c.format, kFileFormat);
  v({.name = "path", .doc = "file the alerts are appended to", .sink_types = kFileSink, .required = true},
    c.path, kPath);
  v({.name = "fsync",
     .doc =
         "always: fsync after each alert; batch: once per batch, before the deliveries are recorded; never",
     .sink_types = kFileSink},
    c.fsync, kFsyncPolicy);
  v({.name = "rotate_bytes",
     .doc = "rename the file to path.1 (path.1 to path.2, ...) before it grows past this size; 0 never",
     .sink_types = kFileSink},
    c.rotate_bytes, IntRule{0});
  v({.name = "rotate_keep", .doc = "rotated files kept", .sink_types = kFileSink}, c.rotate_keep,
    IntRule{1, 1000});
}

template <class V, Of<SinkConfig> C>
void DescribeSinkTransport(V& v, C& c) {
  v({.name = "address",
     .doc = "syslog receiver (RFC 5424 messages)",
     .sink_types = kSyslogSink,
     .required = true},
    c.address, kSyslogAddress);
  v({.name = "facility", .doc = "syslog facility", .sink_types = kSyslogSink}, c.facility, kFacility);
  v({.name = "url",
     .doc = "endpoint the alert JSON is POSTed to",
     .sink_types = kWebhookSink,
     .required = true},
    c.url, kHttpUrl);
  v({.name = "headers", .doc = "extra HTTP request headers", .sink_types = kWebhookSink}, c.headers,
    kHeaders);
  v({.name = "hmac_secret_env",
     .doc = "environment variable holding the key of an HMAC-SHA256 signature of the body",
     .sink_types = kWebhookSink},
    c.hmac_secret_env, kEnvVarName);
  v({.name = "hmac_secret_file",
     .doc = "file holding the HMAC key (trailing newline ignored); not together with hmac_secret_env",
     .sink_types = kWebhookSink},
    c.hmac_secret_file, kOptionalPath);
  v({.name = "signature_header",
     .doc = "header carrying \"sha256=<hex HMAC>\" when a secret is set",
     .sink_types = kWebhookSink},
    c.signature_header, kHeaderName);
  v({.name = "tls_verify",
     .doc = "verify the server certificate and host name (https://, smtps://, STARTTLS)",
     .sink_types = kWebhookSink | kEmailSink},
    c.tls_verify, kBool);
  v({.name = "ca_file",
     .doc = "CA certificates to verify against; \"\" uses the system store",
     .sink_types = kWebhookSink | kEmailSink},
    c.ca_file, kOptionalPath);
  v({.name = "timeout_ms",
     .doc = "time limit of one delivery attempt (syslog: connect and send over tcp or unix)",
     .sink_types = kSyslogSink | kWebhookSink | kEmailSink | kNatsSink},
    c.timeout_ms, IntRule{1, 600000});
  v({.name = "max_message_bytes",
     .doc = "largest message sent (syslog: the whole RFC 5424 message, webhook: the body, email: the "
            "whole mail, nats: the payload); a larger alert is cut to fit, marked \"truncated\": true; 0 = "
            "8096 for syslog, 1048576 for webhook and email, 1000000 for nats; at least 1024",
     .sink_types = kSyslogSink | kWebhookSink | kEmailSink | kNatsSink},
    c.max_message_bytes, IntRule{0, 67108864});
  v({.name = "smtp_url", .doc = "mail server", .sink_types = kEmailSink, .required = true}, c.smtp_url,
    kSmtpUrl);
  v({.name = "from", .doc = "sender address", .sink_types = kEmailSink, .required = true}, c.from,
    kEmailAddress);
  v({.name = "to", .doc = "recipient addresses", .sink_types = kEmailSink, .required = true}, c.to,
    kEmailList);
  v({.name = "starttls", .doc = "require STARTTLS on an smtp:// server", .sink_types = kEmailSink},
    c.starttls, kBool);
  v({.name = "username",
     .doc = "SMTP AUTH user; \"\" sends without authentication",
     .sink_types = kEmailSink},
    c.username, kOptionalText);
  v({.name = "password_env",
     .doc = "environment variable holding the SMTP AUTH password",
     .sink_types = kEmailSink},
    c.password_env, kEnvVarName);
}

template <class V, Of<SinkConfig> C>
void Describe(V& v, C& c) {
  DescribeSinkBasics(v, c);
  DescribeSinkTransport(v, c);
}

template <class V, Of<DatabaseConfig> C>
void Describe(V& v, C& c) {
  v({.name = "path", .doc = "event store (SQLite, WAL)", .restart = true}, c.path, kPath);
  v({.name = "audit_path", .doc = "audit ledger (SQLite, WAL); a different file from path", .restart = true},
    c.audit_path, kPath);
  v({.name = "audit_signing_key",
     .doc = "Ed25519 private key file (mode 0600) to sign audit entries with; \"\" signs nothing",
     .restart = true},
    c.audit_signing_key, kOptionalPath);
  v({"retention_days", "days process snapshots and events are kept"}, c.retention_days, IntRule{1, 36500});
  v({"alert_retention_days", "days alerts are kept"}, c.alert_retention_days, IntRule{1, 36500});
  v({.name = "busy_timeout_ms",
     .doc = "how long a connection waits for a lock held by another",
     .restart = true},
    c.busy_timeout_ms, IntRule{1, 600000});
  v({"maintenance_interval_secs",
     "period of retention, PRAGMA optimize and WAL checkpoints (run by sentinelagent, in small batches)"},
    c.maintenance_interval_secs, IntRule{1, 7 * kDaySecs});
}

template <class V, Of<CollectionConfig> C>
void Describe(V& v, C& c) {
  v({"interval_secs", "period of the full /proc scan"}, c.interval_secs, IntRule{1, kDaySecs});
  v({"hash_executables", "SHA-256 of each process's executable"}, c.hash_executables, kBool);
  // The sources are opened as root, before the privilege drop: only a restart can reopen them.
  v({.name = "realtime_events",
     .doc = "real-time exec/exit events; false turns them off whatever realtime_source says",
     .restart = true},
    c.realtime_events, kBool);
  v({.name = "realtime_source",
     .doc = "where real-time events come from: auto (ebpf, else netlink, else off with a warning), ebpf, "
            "netlink, off",
     .restart = true},
    c.realtime_source, kRealtimeSource);
  v({.name = "scan_source",
     .doc = "where each scan samples every process: auto (ebpf, else proc with a warning), ebpf (the BPF "
            "task iterator; needs root and BTF), proc (/proc/PID/stat)",
     .restart = true},
    c.scan_source, kScanSource);
  v({"max_hash_bytes", "larger executables are not hashed (the reason is recorded)"}, c.max_hash_bytes,
    IntRule{0});
}

template <class V, Of<PrivilegesConfig> C>
void Describe(V& v, C& c) {
  v({"user", "unprivileged user procmond and sentinelagent switch to after start (never root)"}, c.user,
    kServiceUser);
  v({"keep_capabilities",
     "capabilities procmond keeps after dropping root: CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH or neither"},
    c.keep_capabilities, kKeepCapabilityList);
}

template <class V, Of<DetectionConfig> C>
void Describe(V& v, C& c) {
  v({"interval_secs", "how often every enabled rule runs"}, c.interval_secs, IntRule{1, kDaySecs});
  v({"rules_dirs", "directories of user rules (*.yaml)"}, c.rules_dirs, kPathList);
  v({"rule_timeout_secs", "time limit of one rule run"}, c.rule_timeout_secs, IntRule{1, 3600});
  v({"builtin_rules", "load the rules shipped with SentinelD"}, c.builtin_rules, kBool);
  v({"realtime_batch_ms",
     "longest wait between exec events being written and `on: exec` rules evaluating them"},
    c.realtime_batch_ms, IntRule{10, 10000});
}

template <class V, Of<AlertingConfig> C>
void Describe(V& v, C& c) {
  v({"dedup_window_secs", "a finding with the same dedup key within this window raises no new alert; 0 off"},
    c.dedup_window_secs, IntRule{0, 366 * kDaySecs});
  v({"retry", "per-sink retry with exponential backoff"}, c.retry, SectionRule{});
  v({"circuit_breaker", "per-sink circuit breaker"}, c.circuit_breaker, SectionRule{});
  v({"sinks", "where alerts are delivered"}, c.sinks, SinkListRule{});
}

template <class V, Of<TelemetryConfig> C>
void Describe(V& v, C& c) {
  v({"log_level", "least severe log level written"}, c.log_level, kLogLevel);
  v({"log_format", "log lines on stderr as json or text"}, c.log_format, kLogFormat);
  v({"summary_interval_secs",
     "period of the daemons' one-line info summary of what they did since the last one; 0 none"},
    c.summary_interval_secs, IntRule{0, kDaySecs});
  v({.name = "http_listen",
     .doc = "address of the web UI, /api/, /health and /metrics; \"\" disables",
     .restart = true},
    c.http_listen, kHttpListen);
  v({.name = "web_ui",
     .doc = "serve the read-only web UI and its API on http_listen (false: /metrics and /health only)",
     .restart = true},
    c.web_ui, kBool);
}

template <class V, Of<IpcConfig> C>
void Describe(V& v, C& c) {
  v({.name = "socket_dir", .doc = "directory of the Unix-domain control sockets", .restart = true},
    c.socket_dir, kSocketDir);
}

template <class V, Of<FleetTlsConfig> C>
void Describe(V& v, C& c) {
  v({"ca", "CA certificates the NATS servers' certificates are verified against; \"\" = system store"}, c.ca,
    kOptionalPath);
  v({"cert", "client certificate (mutual TLS); \"\" = none"}, c.cert, kOptionalPath);
  v({"key", "private key of the client certificate"}, c.key, kOptionalPath);
}

// The fleet connection is made once, at start-up: the whole section is restart-only.
template <class V, Of<FleetConfig> C>
void Describe(V& v, C& c) {
  v({"servers", "NATS servers (nats:// or tls://); empty = the fleet is off"}, c.servers, kNatsServerList);
  v({"host_id",
     "this host's id in the fleet; \"\" = /etc/machine-id, else the host name (mapped to [A-Za-z0-9_-])"},
    c.host_id, kHostId);
  v({"credentials", "NATS .creds file (user JWT and nkey seed); \"\" = none or user:pass in the URLs"},
    c.credentials, kOptionalPath);
  v({"tls", "TLS to the NATS servers"}, c.tls, SectionRule{});
  v({"trusted_keys", "Ed25519 public keys whose signed queries and rule bundles this host obeys"},
    c.trusted_keys, kTrustedKeyList);
  v({"forward", "what leaves the host: alerts, scans, events"}, c.forward, kForwardList);
}

template <class V, Of<ConsoleConfig> C>
void Describe(V& v, C& c) {
  v({"database", "the console's store (SQLite) of every host's alerts and heartbeats"}, c.database, kPath);
  v({"signing_key", "Ed25519 private key file (mode 0600) queries and rule bundles are signed with"},
    c.signing_key, kOptionalPath);
  v({"stream_max_age_days",
     "days the alert, event and scan streams keep a message (sentinelfleet init; 0: no age limit)"},
    c.stream_max_age_days, IntRule{0, 36500});
  v({"stream_max_bytes", "bytes each of those streams may hold, oldest dropped first (-1: no limit)"},
    c.stream_max_bytes, IntRule{-1});
  v({"http_listen", "address of `sentinelfleet serve`'s web UI (host:port, loopback advised); \"\" = off"},
    c.http_listen, kHttpListen);
  v({"alert_retention_days",
     "days `sentinelfleet serve` keeps an alert after it arrived (each host's newest stays)"},
    c.alert_retention_days, IntRule{1, 36500});
  v({"host_expiry_days",
     "days after its last heartbeat that `sentinelfleet serve` forgets a host (its alerts stay); 0 = never"},
    c.host_expiry_days, IntRule{0, 36500});
}

template <class V, Of<Config> C>
void Describe(V& v, C& c) {
  v({"database", "event store and audit ledger"}, c.database, SectionRule{});
  v({"collection", "process scans (procmond)"}, c.collection, SectionRule{});
  // Root is gone after the drop: no key of the section can be changed without a restart.
  v({.name = "privileges",
     .doc = "who the daemons become after start and what procmond keeps",
     .restart = true},
    c.privileges, SectionRule{});
  v({"detection", "detection rules (sentinelagent)"}, c.detection, SectionRule{});
  v({"alerting", "alert deduplication and delivery"}, c.alerting, SectionRule{});
  v({"telemetry", "logs, health and metrics"}, c.telemetry, SectionRule{});
  v({"ipc", "control sockets"}, c.ipc, SectionRule{});
  v({.name = "fleet", .doc = "reporting to a fleet over NATS JetStream (SPEC §14)", .restart = true}, c.fleet,
    SectionRule{});
  v({"console", "the fleet console, sentinelfleet"}, c.console, SectionRule{});
}

// A sink of `type` before its keys are applied: the type's own defaults (a file sink writes json).
inline SinkConfig DefaultSink(std::string_view type) {
  SinkConfig sink;
  sink.type = type;
  if (type == "file" || type == "webhook" || type == "nats") sink.format = "json";
  return sink;
}

}  // namespace sentinel::config::internal
