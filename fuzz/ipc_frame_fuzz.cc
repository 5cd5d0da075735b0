// libFuzzer target for the control-socket frame decoder and request parser
// (sentinel/ipc/frame.h). Build with clang and -DSENTINEL_FUZZ=ON:
//   CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DSENTINEL_FUZZ=ON
//   cmake --build build/fuzz --target ipc_frame_fuzz
//   build/fuzz/fuzz/ipc_frame_fuzz -max_total_time=120 fuzz/corpus/ipc_frame
// The first input byte picks the chunk size the rest is fed in, so split
// headers and payloads are explored too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sentinel/ipc/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sentinel::ipc::FrameDecoder;
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 16;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  FrameDecoder decoder(4096);
  while (!rest.empty()) {
    std::string_view piece = rest.substr(0, chunk);
    size_t used = 0;
    auto st = decoder.Feed(piece, &used);
    if (used > piece.size()) std::abort();
    rest.remove_prefix(used);
    if (st == FrameDecoder::State::kError) {
      if (decoder.error().empty()) std::abort();
      break;
    }
    if (st == FrameDecoder::State::kFrame) {
      std::string payload = decoder.TakePayload();
      if (payload.size() > 4096) std::abort();
      auto req = sentinel::ipc::ParseRequest(payload);
      if (!req.ok() && req.status().message().empty()) std::abort();
      if (req.ok()) {
        // A reply to whatever came in must encode.
        auto frame = sentinel::ipc::EncodeJsonFrame(sentinel::ipc::MakeError(req->id, "x"));
        if (!frame.ok()) std::abort();
      }
    } else if (used != piece.size()) {
      std::abort();  // NeedMore consumes everything it was given
    }
  }
  return 0;
}
