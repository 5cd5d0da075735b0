// Configuration: the typed settings every SentinelD binary runs with, and how they are assembled
// from layers and validated before anything starts (SPEC §3).
//
// Layers, later wins: built-in defaults -> optional files (/etc, then the user's) -> --config FILE
// -> environment SENTINELD_<SECTION>__<KEY>[__<SUBKEY>] -> command-line overrides. Sections are
// merged key by key; lists (rules_dirs, keep_capabilities, sinks, to) are replaced whole by the
// layer that names them. Every key is checked (unknown keys, types, ranges, enums, sink shapes)
// and the first problem is reported as one line naming the source, the key path and what was
// expected, e.g.
//   config.yaml: collection.interval_secs: expected a positive integer, got "fast"
// A setting that needs a build-time feature this build lacks (sentinel/base/features.h: a
// webhook, email or nats sink, database.audit_signing_key, telemetry.http_listen, fleet.servers,
// fleet.trusted_keys, console.signing_key, an ebpf source) is refused the same way, naming the
// feature and its CMake option; the built-in defaults never need a missing feature
// (telemetry.http_listen defaults to "" in a build without the HTTP endpoint).
// All bad-configuration failures are InvalidArgument (the binaries exit 2 on them).
//
// The keys, their types, ranges and descriptions are declared once, in internal/schema.h;
// validation, the unknown-key lists, ToJson/ToYaml and Keys() are all driven from there. The
// defaults are the member initialisers below.
//
// Thread-safety: the structs are plain values. Load, ValidateFile, ToJson, ToYaml, Hash and Keys
// keep no shared state and may run concurrently. DefaultFiles and CurrentEnvironment read the
// process environment and must not race with setenv/putenv.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sentinel/base/features.h"
#include "sentinel/base/status.h"

namespace sentinel::config {

// telemetry.http_listen's default: loopback port 9464 where the HTTP endpoint is built, none
// otherwise.
inline constexpr const char* kDefaultHttpListen = SENTINEL_HAS_HTTP ? "127.0.0.1:9464" : "";

struct RetryConfig {
  int max_attempts = 3;               // 1..100, the first attempt included
  int64_t initial_backoff_ms = 1000;  // delay before the first retry, doubled each time
  int64_t max_backoff_ms = 60000;     // never below initial_backoff_ms
  friend bool operator==(const RetryConfig&, const RetryConfig&) = default;
};

struct CircuitBreakerConfig {
  int failure_threshold = 5;  // consecutive failures that open the circuit
  int64_t open_secs = 60;     // how long it stays open before a trial delivery
  friend bool operator==(const CircuitBreakerConfig&, const CircuitBreakerConfig&) = default;
};

// One alert sink. Which fields apply depends on `type`; fields of another type are refused at load.
struct SinkConfig {
  std::string name, type;                      // type: stdout | file | syslog | webhook | email | nats
  std::string format = "text";                 // stdout: text|json ; file, webhook, nats: json|ocsf
  std::string path;                            // file
  std::string fsync = "batch";                 // file: always | batch | never (see docs/alert-delivery.md)
  int64_t rotate_bytes = 104857600;            // file: rotate when the file would grow past this; 0 never
  int64_t rotate_keep = 5;                     // file: rotated files kept (path.1 .. path.N)
  std::string address;                         // syslog: udp://host:port | tcp://host:port | unix:///path
  std::string facility = "auth";               // syslog: kern user mail daemon auth syslog lpr news uucp cron
                                               //   authpriv ftp local0..local7
  std::string url;                             // webhook: http:// or https://
  std::map<std::string, std::string> headers;  // webhook
  std::string hmac_secret_env;                 // webhook: environment variable holding the HMAC key
  std::string hmac_secret_file;                // webhook: file holding the HMAC key (not with _env)
  std::string signature_header = "X-Sentinel-Signature";  // webhook: header of the HMAC-SHA256
  bool tls_verify = true;       // webhook, email: verify the peer's certificate and name
  std::string ca_file;          // webhook, email: CA bundle; "" uses the system's
  int64_t timeout_ms = 5000;    // syslog (tcp/unix), webhook, email, nats (publish acknowledgement)
  std::string smtp_url, from;   // email: smtp:// or smtps://
  std::vector<std::string> to;  // email: non-empty
  bool starttls = false;        // email (smtp://): require STARTTLS
  std::string username;         // email: SMTP AUTH user ("" no authentication)
  std::string password_env;     // email: environment variable holding the password
  std::string min_severity;     // "" (all) | low | medium | high | critical ; every sink
  bool enabled = true;
  // syslog, webhook, email: largest message sent, a larger alert is cut to fit; 0 = the type's
  // default (syslog 8096, webhook and email 1048576).
  int64_t max_message_bytes = 0;
  friend bool operator==(const SinkConfig&, const SinkConfig&) = default;
};

struct DatabaseConfig {
#ifdef _WIN32
  // %ProgramData%\SentinelD on a standard Windows installation (docs/platforms.md).
  std::string path = "C:\\ProgramData\\SentinelD\\events.db";
  std::string audit_path = "C:\\ProgramData\\SentinelD\\audit.db";
#else
  std::string path = "/var/lib/sentineld/events.db";
  std::string audit_path = "/var/lib/sentineld/audit.db";
#endif
  std::string audit_signing_key;  // Ed25519 key file (sentinelcli audit keygen); "" = unsigned entries
  int64_t retention_days = 30;
  int64_t alert_retention_days = 365;
  int64_t busy_timeout_ms = 5000;
  int64_t maintenance_interval_secs = 3600;  // retention, PRAGMA optimize, WAL checkpoint (sentinelagent)
  friend bool operator==(const DatabaseConfig&, const DatabaseConfig&) = default;
};

struct CollectionConfig {
  int64_t interval_secs = 30;
  bool hash_executables = true;
  bool realtime_events = true;
  std::string realtime_source = "auto";  // auto | ebpf | netlink | off (docs/realtime.md)
  std::string scan_source = "auto";      // auto | ebpf | proc (docs/architecture.md)
  int64_t max_hash_bytes = 268435456;
  friend bool operator==(const CollectionConfig&, const CollectionConfig&) = default;
};

struct PrivilegesConfig {
  std::string user = "sentineld";
  std::vector<std::string> keep_capabilities = {"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"};
  friend bool operator==(const PrivilegesConfig&, const PrivilegesConfig&) = default;
};

struct DetectionConfig {
  int64_t interval_secs = 30;
  std::vector<std::string> rules_dirs = {"/etc/sentineld/rules.d"};
  int64_t rule_timeout_secs = 30;
  bool builtin_rules = true;
  // `on: exec` rules run at most this long after procmond reports new events (SPEC §12).
  int64_t realtime_batch_ms = 250;
  friend bool operator==(const DetectionConfig&, const DetectionConfig&) = default;
};

struct AlertingConfig {
  int64_t dedup_window_secs = 3600;
  RetryConfig retry;
  CircuitBreakerConfig circuit_breaker;
  std::vector<SinkConfig> sinks = {SinkConfig{.name = "console", .type = "stdout", .format = "text"}};
  friend bool operator==(const AlertingConfig&, const AlertingConfig&) = default;
};

// Where a fleet connection's TLS material is (SPEC §14); "" each = no TLS beyond the URL's scheme.
struct FleetTlsConfig {
  std::string ca, cert, key;
  friend bool operator==(const FleetTlsConfig&, const FleetTlsConfig&) = default;
};

// The host's side of the fleet (SPEC §14). Empty `servers` = fleet off: nothing changes for a
// single host.
struct FleetConfig {
  std::vector<std::string> servers;  // nats://host:port or tls://host:port
  std::string host_id;               // "" = ResolveHostId(): /etc/machine-id, else the hostname
  std::string credentials;           // NATS .creds file; or user:pass in the server URLs
  FleetTlsConfig tls;
  std::vector<std::string> trusted_keys;          // Ed25519 public keys, 64 lowercase hex each
  std::vector<std::string> forward = {"alerts"};  // subset of alerts | scans | events
  friend bool operator==(const FleetConfig&, const FleetConfig&) = default;
};

// The console's own settings (sentinelfleet only).
struct ConsoleConfig {
  std::string database = "/var/lib/sentineld/fleet.db";
  std::string signing_key;  // Ed25519 key file (the audit Signer's format, mode 0600)
  // The limits `sentinelfleet init` gives the alert, event and scan streams
  // (its --max-age / --max-bytes override them): 0 days and -1 bytes, none.
  int64_t stream_max_age_days = 0;
  int64_t stream_max_bytes = -1;
  // Where `serve` answers the web UI across hosts (webui/http_server.h); "" = no web UI.
  std::string http_listen;
  // Days `serve` keeps an alert after it arrived (each host's newest is always kept).
  int64_t alert_retention_days = 365;
  // Days after its last heartbeat arrived that `serve` forgets a host (its
  // hosts row and its sentineld_hosts key; its alerts stay); 0 = never.
  int64_t host_expiry_days = 0;
  friend bool operator==(const ConsoleConfig&, const ConsoleConfig&) = default;
};

struct TelemetryConfig {
  std::string log_level = "info";                // trace debug info warn error critical off
  std::string log_format = "json";               // json | text
  int64_t summary_interval_secs = 60;            // the daemons' periodic summary log line; 0 = none
  std::string http_listen = kDefaultHttpListen;  // host:port, "" disables
  bool web_ui = true;                            // the web UI and /api/ on http_listen (docs/web-ui.md)
  friend bool operator==(const TelemetryConfig&, const TelemetryConfig&) = default;
};

struct IpcConfig {
  std::string socket_dir = "/run/sentineld";
  friend bool operator==(const IpcConfig&, const IpcConfig&) = default;
};

// The whole effective configuration. A default-constructed Config is the built-in defaults.
struct Config {
  DatabaseConfig database;
  CollectionConfig collection;
  PrivilegesConfig privileges;
  DetectionConfig detection;
  AlertingConfig alerting;
  TelemetryConfig telemetry;
  IpcConfig ipc;
  FleetConfig fleet;
  ConsoleConfig console;
  friend bool operator==(const Config&, const Config&) = default;
};

struct LoadOptions {
  // Layer files in order, later wins. Missing files in `optional_files` are skipped silently (a
  // file that exists but cannot be read is an error); `explicit_file` (from --config) must exist
  // and be readable, else error.
  std::vector<std::string> optional_files;  // normally DefaultFiles()
  std::optional<std::string> explicit_file;
  // Environment as "NAME=VALUE" strings (pass CurrentEnvironment()); the
  // SENTINELD_<SECTION>__<KEY>[__<SUBKEY>] variables are applied, in name order. Every other
  // SENTINELD_ variable is an error naming it (a section without a key such as
  // SENTINELD_COLLECTION=5, an unknown section or key, an empty part), except the product's own
  // SENTINELD_SUPERVISOR_PID and SENTINELD_SKIP_SETUP, which are skipped.
  std::vector<std::string> environment;
  // Command-line overrides as dotted key path -> YAML scalar text, e.g. {"database.path",
  // "/tmp/e.db"}, applied last and in order.
  std::vector<std::pair<std::string, std::string>> overrides;
  // Which build-time features count as built: this build's (sentinel::Built). Tests of the
  // schema pass one that says every feature is, so that they run in any build.
  bool (*feature_built)(Feature) = &Built;
};

// {"/etc/sentineld/config.yaml", "$XDG_CONFIG_HOME/sentineld/config.yaml"} when XDG_CONFIG_HOME
// is an absolute path, else "$HOME/.config/sentineld/config.yaml"; the user file is left out when
// neither variable is set. Reads the process environment.
std::vector<std::string> DefaultFiles();

// The process environment (::environ) as "NAME=VALUE" strings.
std::vector<std::string> CurrentEnvironment();

struct LoadedConfig {
  Config config;
  // What was applied, in order: "built-in defaults", each file path read, "environment
  // SENTINELD_X__Y" per variable, "command line <key.path>" per override.
  std::vector<std::string> sources;
  std::string hash;  // Hash(config)
};

// Assembles and validates the configuration from `options`. Values from the environment and
// overrides are parsed as YAML (so "[/a, /b]" is a list, "5" an integer, "true" a boolean; an empty
// value is the empty string) and checked exactly like file values.
// Fails with InvalidArgument, message "<source>: <key path>: <what was expected>, got <value>",
// where <source> is the file path as given, "environment SENTINELD_X__Y" or "command line";
// "<file>: line L, column C: <parser message>" for malformed YAML; "<file>: cannot read: <errno
// text>" for an unreadable or missing explicit file. Files must be regular, at most 1 MiB, and
// hold one YAML document whose top level is a mapping (an empty or comment-only file is an empty
// layer).
Result<LoadedConfig> Load(const LoadOptions& options);

// Validates a single file on its own (on top of built-in defaults), for `sentinelcli config
// validate FILE`. Same failures as Load.
Result<LoadedConfig> ValidateFile(const std::string& path);

// The full effective config with the same key names and nesting as the YAML; a sink only carries
// the keys of its type. Canonical: ToJson(c).dump() is what Hash() hashes.
nlohmann::json ToJson(const Config& config);

// Same content as ToJson, as a YAML document in schema order; Load() of it gives the same Config.
std::string ToYaml(const Config& config);

// SHA-256 (lowercase hex) of the canonical JSON of `config` (sorted keys, no whitespace). Stable
// across runs and builds for the same effective configuration.
std::string Hash(const Config& config);

// One documented key, for generated docs and `config` commands.
struct KeyInfo {
  std::string path;           // "collection.interval_secs"; sink keys as "alerting.sinks[].url"
  std::string type;           // integer, boolean, string, list of strings, map of strings,
                              // section, list of sinks
  std::string default_value;  // JSON text of the built-in default; "" for required sink keys
  std::string expected;       // what validation accepts, worded as in error messages
  std::string description;
  std::vector<std::string> sink_types;  // sink keys: the sink types the key belongs to
  bool required = false;                // sink keys: must be given
  bool restart = false;                 // a reload (SIGHUP) keeps the running value
};

// Every key of the schema, sections before their keys, in declaration order.
std::vector<KeyInfo> Keys();

// The fleet host id (SPEC §14): `fleet.host_id` when set (validated at load), else the first line
// of `machine_id_path` (normally /etc/machine-id), else `hostname` (normally gethostname()); a
// derived id is mapped to one NATS subject token: bytes outside [A-Za-z0-9_-] become '_', cut to
// 64 bytes; "unknown-host" if nothing is left.
std::string ResolveHostId(const FleetConfig& fleet, const std::string& machine_id_path = "/etc/machine-id",
                          const std::string& hostname = "");

// Reloading (SIGHUP). Some keys are read once, at start-up, by code that cannot redo it in a
// running process (stores and sockets opened, sources opened as root, privileges dropped); they
// are marked restart-only next to their declaration in internal/schema.h (KeyInfo::restart):
// database.path, audit_path, audit_signing_key, busy_timeout_ms; collection.realtime_events,
// realtime_source, scan_source; privileges.*; telemetry.http_listen; ipc.socket_dir.
//
// The restart-only keys whose values differ between the running and a newly loaded
// configuration, as key paths in schema order (e.g. {"database.path", "privileges.user"}).
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& loaded);

// What a reload applies: `loaded` with every restart-only key set back to its value in `running`,
// so the process goes on with one consistent configuration (a dispatcher rebuilt for new sinks
// still writes to the running database.path).
Config ReloadableConfig(const Config& running, const Config& loaded);

}  // namespace sentinel::config
