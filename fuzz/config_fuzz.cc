// libFuzzer target for the configuration loader (sentinel/config/config.h):
// YAML text -> validated Config, with an environment layer.
//
// Input: the config file's text, optionally followed by a line "#%ENV" and
// then environment entries, one per line ("SENTINELD_COLLECTION__INTERVAL_SECS=5").
// The file is handed to Load() through a memfd (a regular file, never on disk).
// A configuration that loads must survive its own canonical YAML: ToYaml()
// loaded again gives the same Config and hash.
//   cmake --preset fuzz && cmake --build build/fuzz --target config_fuzz
//   build/fuzz/fuzz/config_fuzz -max_total_time=60 <copy of fuzz/corpus/config>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/config/config.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// One memfd for the whole run, rewritten per input; Load() opens it by path.
class MemFile {
 public:
  MemFile() : fd_(::memfd_create("sentinel-config-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& Write(std::string_view text) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::pwrite(fd_, text.data() + off, text.size() - off, static_cast<off_t>(off));
      if (n <= 0) std::abort();
      off += static_cast<size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemFile file;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view yaml = in;
  std::vector<std::string> env;
  constexpr std::string_view kEnvMarker = "#%ENV\n";
  if (size_t at = in.find(kEnvMarker); at != std::string_view::npos) {
    yaml = in.substr(0, at);
    std::string_view rest = in.substr(at + kEnvMarker.size());
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      env.emplace_back(rest.substr(0, nl));
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    }
  }

  sentinel::config::LoadOptions options;
  options.explicit_file = file.Write(yaml);
  options.environment = env;
  auto loaded = sentinel::config::Load(options);
  if (!loaded.ok()) {
    Check(loaded.status().code() == sentinel::StatusCode::kInvalidArgument);
    Check(!loaded.status().message().empty());
    return 0;
  }
  Check(loaded->hash == sentinel::config::Hash(loaded->config));

  // Round trip through the canonical YAML.
  sentinel::config::LoadOptions again;
  again.explicit_file = file.Write(sentinel::config::ToYaml(loaded->config));
  auto reloaded = sentinel::config::Load(again);
  Check(reloaded.ok());
  Check(reloaded->config == loaded->config);
  Check(reloaded->hash == loaded->hash);
  return 0;
}
