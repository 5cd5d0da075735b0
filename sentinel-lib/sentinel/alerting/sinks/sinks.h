// Factories of the built-in sink types; RegisterBuiltinSinks (sink.h) puts
// them in a registry. Private to the alerting module.
#pragma once

#include <memory>

#include "sentinel/alerting/sink.h"

namespace sentinel::alerting::sinks {

Result<std::unique_ptr<AlertSink>> MakeStdoutSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeFileSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeSyslogSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeWebhookSink(const config::SinkConfig& cfg, const SinkEnvironment& env);
Result<std::unique_ptr<AlertSink>> MakeEmailSink(const config::SinkConfig& cfg, const SinkEnvironment& env);

}  // namespace sentinel::alerting::sinks
