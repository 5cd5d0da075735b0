// Alert sinks: where alerts go (SPEC §7). Each sink type is a class behind
// the AlertSink interface; the agent's main registers the built-in types in
// a SinkRegistry explicitly (no static registration) and builds one sink per
// enabled `alerting.sinks` entry.
//
// A sink only moves bytes: retries, backoff, circuit breaking, recording and
// the dead-letter queue are the Dispatcher's (dispatcher.h). Each sink is
// driven by one worker thread: Deliver and Flush are never called
// concurrently on one sink; Cancel may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"

namespace sentinel::alerting {

// One delivery attempt of one alert to one sink.
struct DeliveryRequest {
  const Alert& alert;
  const std::string& json;   // alert.ToJson(), compact: the payload of every JSON-speaking sink
  int attempt = 1;           // 1 for the first attempt
  std::string delivery_key;  // "<alert id>:<sink name>", the same for every attempt (idempotency)
};

struct DeliveryResult {
  Status status;                   // OK: the peer accepted the alert
  std::optional<int> http_status;  // webhook: the response status, when one came
  bool permanent = false;          // retrying cannot help (e.g. HTTP 400): dead-letter now
  bool outcome_unknown = false;    // cut short by Cancel(): the peer may or may not have it
};

class AlertSink {
 public:
  explicit AlertSink(std::string name) : name_(std::move(name)) {}
  virtual ~AlertSink() = default;
  AlertSink(const AlertSink&) = delete;
  AlertSink& operator=(const AlertSink&) = delete;

  const std::string& name() const { return name_; }
  virtual std::string_view type() const = 0;

  // Delivers one alert; blocks at most about the sink's timeout.
  virtual DeliveryResult Deliver(const DeliveryRequest& request) = 0;

  // Makes what Deliver accepted durable (the file sink's fsync "batch"
  // policy). Called after a batch of deliveries, before their successes are
  // recorded; a failure turns the batch's successes into failures.
  virtual Status Flush() { return Status::Ok(); }

  // How many alerts the dispatcher may hand over before a Flush. Sinks that
  // talk to a network peer say 1, so an agent crash leaves at most one
  // attempt of unknown outcome per sink.
  virtual int MaxBatch() const { return 64; }

  // Asks a Deliver in progress (on the worker thread) to give up soon; it
  // then returns outcome_unknown. Thread-safe; used at shutdown.
  virtual void Cancel() {}

 private:
  std::string name_;
};

// What sinks may need from the process, injectable for tests.
struct SinkEnvironment {
  // Looks up an environment variable (secrets named by hmac_secret_env, password_env).
  std::function<std::optional<std::string>(const std::string&)> getenv;
  int stdout_fd = 1;  // where stdout sinks write
  // Text lines of stdout sinks coloured by severity: Process() sets it when
  // fd 1 is a terminal and neither NO_COLOR nor TERM=dumb says otherwise
  // (sentinel/base/terminal.h); a pipe or a file never gets escape codes.
  bool stdout_color = false;
  std::string hostname;  // syslog HOSTNAME, email Message-ID, OCSF device; "" = gethostname()
  // The fleet (config `fleet:`): the nats sink's servers, credentials and TLS.
  config::FleetConfig fleet;
  // This host's fleet id: "" = config::ResolveHostId(fleet). The nats sink's subject and Msg-Id,
  // OCSF finding uids when the fleet is configured.
  std::string host_id;
  // nats: how long one attempt waits out a broker outage before it fails like any other sink's
  // (retries, dead-letter queue); -1 = until JetStream takes the alert or the dispatcher stops
  // (the daemon). `sentinelagent --once` sets 0: its run is bounded by the retry policy.
  int64_t nats_outage_wait_ms = -1;

  static SinkEnvironment Process();  // the real environment, fd 1 (and whether to colour it), the host name
};

class SinkRegistry {
 public:
  using Factory =
      std::function<Result<std::unique_ptr<AlertSink>>(const config::SinkConfig&, const SinkEnvironment&)>;

  void Register(std::string type, Factory factory);
  bool Knows(const std::string& type) const { return factories_.count(type) > 0; }

  // One sink for `cfg` (whatever its `enabled`). InvalidArgument naming the
  // sink for an unknown type or a bad setting found only now (a secret
  // variable that is unset, an unreadable secret file).
  Result<std::unique_ptr<AlertSink>> Build(const config::SinkConfig& cfg, const SinkEnvironment& env) const;

 private:
  std::map<std::string, Factory> factories_;
};

// The sinks the agent delivers to: `alerting.sinks`, plus an implicit nats sink when the fleet is
// on (`fleet.servers` set), `fleet.forward` includes "alerts" and no sink of type nats is
// configured (SPEC §14: "forward: [alerts]" is what leaves the host). The implicit sink is named
// "fleet" ("fleet-nats" if a sink already has that name), format json, default timeout.
std::vector<config::SinkConfig> EffectiveSinks(const config::Config& cfg);

// Registers stdout, file, syslog, webhook, email and nats. A type whose feature this build left
// out (webhook, email: SENTINEL_SINK_*; nats: SENTINEL_FLEET) is registered with a factory that
// fails with Unimplemented naming the CMake option.
void RegisterBuiltinSinks(SinkRegistry& registry);

// The stdout sink's text line: time, severity, rule, alert id, title and the
// affected processes ("... ALERT HIGH proc-deleted-executable #3: ... |
// pid 42 implant (/tmp/implant (deleted))"), control characters escaped.
// With `color`, the escaped line is wrapped in the severity's SGR colour
// (low cyan, medium yellow, high red, critical bold red) and a reset: the only
// escape codes in it are ours.
std::string AlertTextLine(const Alert& alert, bool color = false);

}  // namespace sentinel::alerting
