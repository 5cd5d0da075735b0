#include "sentinel/alerting/sink.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "sentinel/alerting/internal/formats.h"
#include "sentinel/alerting/sinks/sinks.h"
#include "sentinel/base/escape.h"
#include "sentinel/base/features.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/terminal.h"
#include "sentinel/base/time.h"
#include "sentinel/models/severity.h"

namespace sentinel::alerting {
namespace {

std::string ValueText(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "?";
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string_view SeverityColor(models::Severity s) {
  switch (s) {
    case models::Severity::kLow: return "\x1b[36m";
    case models::Severity::kMedium: return "\x1b[33m";
    case models::Severity::kHigh: return "\x1b[31m";
    case models::Severity::kCritical: return "\x1b[1;31m";
  }
  return "\x1b[31m";
}

constexpr std::string_view kColorReset = "\x1b[0m";

// The factory of a sink type whose feature this build left out (sentinel/base/features.h): it
// builds nothing and says which option would (the configuration refuses such a sink first).
[[maybe_unused]] SinkRegistry::Factory NotBuilt(Feature feature) {
  return [feature](const config::SinkConfig&, const SinkEnvironment&) -> Result<std::unique_ptr<AlertSink>> {
    return UnimplementedError(NotBuiltReason(feature));
  };
}

}  // namespace

std::string AlertTextLine(const Alert& a, bool color) {
  std::string line = FormatIso8601Ms(a.alert_time) + " ALERT " + ToUpper(models::SeverityName(a.severity)) +
                     " " + a.rule_id + " #" + std::to_string(a.id) + ": " + a.title;
  for (const auto& p : a.affected_processes) {
    line += " | pid " + ValueText(p.value("pid", nlohmann::ordered_json())) + " " +
            ValueText(p.value("name", nlohmann::ordered_json())) + " (" +
            ValueText(p.value("exe_path", nlohmann::ordered_json())) + ")";
  }
  // Hostile process names never reach the terminal (or a line-splitting
  // reader) raw: the one output escaper, base/escape.h. Colour is added
  // after escaping, so only our own codes are live.
  if (!color) return EscapeText(line);
  return std::string(SeverityColor(a.severity)) + EscapeText(line) + std::string(kColorReset);
}

namespace sinks {
std::string FleetHostId(const SinkEnvironment& env) {
  if (!env.host_id.empty()) return env.host_id;
  return env.fleet.servers.empty() ? std::string() : config::ResolveHostId(env.fleet);
}

OcsfSource OcsfSourceOf(const SinkEnvironment& env) {
  return {env.hostname, FleetHostId(env)};
}

std::string PayloadOf(const DeliveryRequest& req, const std::optional<OcsfSource>& ocsf) {
  return ocsf ? OcsfJsonText(req.alert, *ocsf) : req.json;
}

Result<size_t> MaxMessageBytes(const config::SinkConfig& cfg, size_t fallback) {
  if (cfg.max_message_bytes == 0) return fallback;
  if (cfg.max_message_bytes < static_cast<int64_t>(internal::kMinMessageBytes)) {
    return InvalidArgumentError("max_message_bytes: expected 0 (the default) or at least " +
                                std::to_string(internal::kMinMessageBytes) + ", got " +
                                std::to_string(cfg.max_message_bytes));
  }
  return static_cast<size_t>(cfg.max_message_bytes);
}
}  // namespace sinks

SinkEnvironment SinkEnvironment::Process() {
  SinkEnvironment env;
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): read at sink construction
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof host - 1) == 0) env.hostname = host;
  if (env.hostname.empty()) env.hostname = "localhost";
  env.stdout_color = DetectTerminal(env.stdout_fd, /*no_color_flag=*/false).color;
  return env;
}

void SinkRegistry::Register(std::string type, Factory factory) {
  factories_[std::move(type)] = std::move(factory);
}

Result<std::unique_ptr<AlertSink>> SinkRegistry::Build(const config::SinkConfig& cfg,
                                                       const SinkEnvironment& env) const {
  auto it = factories_.find(cfg.type);
  if (it == factories_.end()) {
    return InvalidArgumentError("sink " + QuoteForMessage(cfg.name) + ": no sink type " +
                                QuoteForMessage(cfg.type));
  }
  auto sink = it->second(cfg, env);
  if (!sink.ok()) return sink.status().WithContext("sink " + QuoteForMessage(cfg.name));
  return sink;
}

std::vector<config::SinkConfig> EffectiveSinks(const config::Config& cfg) {
  std::vector<config::SinkConfig> sinks = cfg.alerting.sinks;
  const auto& forward = cfg.fleet.forward;
  const bool forward_alerts = std::find(forward.begin(), forward.end(), "alerts") != forward.end();
  auto has = [&sinks](auto pred) { return std::any_of(sinks.begin(), sinks.end(), pred); };
  if (cfg.fleet.servers.empty() || !forward_alerts ||
      has([](const config::SinkConfig& s) { return s.type == "nats"; })) {
    return sinks;
  }
  config::SinkConfig fleet;
  fleet.name = has([](const config::SinkConfig& s) { return s.name == "fleet"; }) ? "fleet-nats" : "fleet";
  fleet.type = "nats";
  fleet.format = "json";
  sinks.push_back(std::move(fleet));
  return sinks;
}

// Only the sink types this build has are registered with their factory; a left-out one (its file
// is not compiled, its library not linked) is refused by name.
void RegisterBuiltinSinks(SinkRegistry& registry) {
  registry.Register("stdout", sinks::MakeStdoutSink);
  registry.Register("file", sinks::MakeFileSink);
  registry.Register("syslog", sinks::MakeSyslogSink);
#if SENTINEL_HAS_SINK_WEBHOOK
  registry.Register("webhook", sinks::MakeWebhookSink);
#else
  registry.Register("webhook", NotBuilt(Feature::kWebhook));
#endif
#if SENTINEL_HAS_SINK_EMAIL
  registry.Register("email", sinks::MakeEmailSink);
#else
  registry.Register("email", NotBuilt(Feature::kEmail));
#endif
#if SENTINEL_HAS_FLEET
  registry.Register("nats", sinks::MakeNatsSink);
#else
  registry.Register("nats", NotBuilt(Feature::kFleet));
#endif
}

}  // namespace sentinel::alerting
