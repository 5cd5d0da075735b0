// Factories of the built-in sink types; RegisterBuiltinSinks (sink.h) puts
// them in a registry. Private to the alerting module.
#pragma once

#include <memory>

#include "sentinel/alerting/ocsf.h"
#include "sentinel/alerting/sink.h"

namespace sentinel::alerting::sinks {

// cfg.max_message_bytes, or `fallback` when it is 0; INVALID_ARGUMENT when it
// is below internal::kMinMessageBytes.
Result<size_t> MaxMessageBytes(const config::SinkConfig& cfg, size_t fallback);

// env.host_id, else (fleet configured) config::ResolveHostId(env.fleet), else "".
std::string FleetHostId(const SinkEnvironment& env);
// Where alerts come from, for format: ocsf.
OcsfSource OcsfSourceOf(const SinkEnvironment& env);
// What a json|ocsf sink sends: req.json, or the OCSF Detection Finding when `ocsf` is set.
std::string PayloadOf(const DeliveryRequest& req, const std::optional<OcsfSource>& ocsf);

Result<std::unique_ptr<AlertSink>> MakeStdoutSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeFileSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeSyslogSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeWebhookSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeEmailSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeNatsSink(const config::SinkConfig& cfg, const SinkEnvironment& env);

}  // namespace sentinel::alerting::sinks
