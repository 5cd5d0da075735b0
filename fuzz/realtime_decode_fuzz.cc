// libFuzzer target for procmond's real-time decoders (procmond/realtime/decode.h):
// the BPF ring-buffer record (struct sentinel_event) and the netlink proc
// connector message. The kernel writes these, but an exec record carries the
// argv and path any process chose, and a decoder that trusted a length field
// would read past the record. Every input goes to both decoders; libFuzzer
// hands each input in a buffer of exactly its size, so ASan sees any read
// past the end.
//   cmake --preset fuzz && cmake --build build/fuzz --target realtime_decode_fuzz
//   build/fuzz/fuzz/realtime_decode_fuzz -max_total_time=60 <copy of fuzz/corpus/realtime_decode>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>

#include <linux/types.h>

#include "procmond/bpf/exec_events.h"
#include "procmond/realtime/decode.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sentinel::procmond::DecodeBpfRecord;
  using sentinel::procmond::DecodeProcConnector;
  using sentinel::procmond::RealtimeEventType;

  // A boot offset as a real host has it (epoch ns minus CLOCK_BOOTTIME ns).
  constexpr int64_t kBootOffsetNs = 1'700'000'000'000'000'000;
  if (auto ev = DecodeBpfRecord(data, size, kBootOffsetNs); ev.ok()) {
    Check(ev->comm.has_value() && ev->comm->size() <= SENTINEL_EXEC_COMM_LEN);
    if (ev->exe_path) Check(ev->exe_path->size() <= SENTINEL_EXEC_PATH_MAX);
    if (ev->argv) {
      size_t bytes = 0;
      for (const std::string& a : *ev->argv) bytes += a.size() + 1;
      Check(bytes <= SENTINEL_EXEC_ARGS_MAX + 1);
    }
    if (ev->env) {
      // Only allow-listed names, values within their bound, whatever the block held.
      for (const auto& [name, value] : ev->env->vars) {
        Check(value.size() <= sentinel::procmond::kEnvValueMax);
        Check(std::find(std::begin(sentinel::procmond::kEnvAllowList),
                        std::end(sentinel::procmond::kEnvAllowList),
                        name) != std::end(sentinel::procmond::kEnvAllowList));
      }
    }
    if (ev->cwd) Check(ev->cwd->size() <= SENTINEL_EXEC_CWD_MAX + 1 + sizeof(" (deleted)"));
    Check(ev->type == RealtimeEventType::kExec || (!ev->exe_path && !ev->argv && !ev->env && !ev->cwd));
  } else {
    Check(!ev.status().message().empty());
  }

  if (auto pc = DecodeProcConnector(data, size); !pc.ok()) {
    Check(!pc.status().message().empty());
  }
  return 0;
}
