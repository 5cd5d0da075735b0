// Factories of the built-in sink types; RegisterBuiltinSinks (sink.h) puts
// them in a registry. Private to the alerting module.
#pragma once

#include <memory>

#include "sentinel/alerting/sink.h"

namespace sentinel::alerting::sinks {

// cfg.max_message_bytes, or `fallback` when it is 0; INVALID_ARGUMENT when it
// is below internal::kMinMessageBytes.
Result<size_t> MaxMessageBytes(const config::SinkConfig& cfg, size_t fallback);

Result<std::unique_ptr<AlertSink>> MakeStdoutSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeFileSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeSyslogSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeWebhookSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeEmailSink(const config::SinkConfig& cfg, const SinkEnvironment& env);

}  // namespace sentinel::alerting::sinks
