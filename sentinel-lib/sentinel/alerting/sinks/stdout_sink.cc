// stdout: one line per alert, text (AlertTextLine, coloured by severity when
// SinkEnvironment::stdout_color says fd 1 is a terminal that wants colour) or
// JSON (never coloured).
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "sentinel/alerting/sinks/sinks.h"
#include "sentinel/base/escape.h"

namespace sentinel::alerting::sinks {
namespace {

// Lines of several stdout sinks (and threads) never interleave.
std::mutex& StdoutMutex() {
  static std::mutex mu;
  return mu;
}

Status WriteAll(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

class StdoutSink final : public AlertSink {
 public:
  StdoutSink(const config::SinkConfig& cfg, int fd, bool color)
      : AlertSink(cfg.name), json_(cfg.format == "json"), color_(color && !json_), fd_(fd) {}
  std::string_view type() const override { return "stdout"; }

  DeliveryResult Deliver(const DeliveryRequest& req) override {
    std::string line = json_ ? HardenJsonText(req.json) : AlertTextLine(req.alert, color_);
    line += '\n';
    std::lock_guard lock(StdoutMutex());
    return {WriteAll(fd_, line, "writing to standard output")};
  }

 private:
  bool json_;
  bool color_;
  int fd_;
};

}  // namespace

Result<std::unique_ptr<AlertSink>> MakeStdoutSink(const config::SinkConfig& cfg, const SinkEnvironment& env) {
  return std::unique_ptr<AlertSink>(std::make_unique<StdoutSink>(cfg, env.stdout_fd, env.stdout_color));
}

}  // namespace sentinel::alerting::sinks
