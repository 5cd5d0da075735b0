// libFuzzer target for the BPF task iterator's record stream decoder
// (DecodeTaskRecords, procmond/platform/linux/task_sampler.h): leader and
// thread records (procmond/bpf/task_iter.h) cut anywhere, in any order.
//   cmake --preset fuzz && cmake --build build/fuzz --target task_records_fuzz
//   build/fuzz/fuzz/task_records_fuzz -max_total_time=60 <copy of fuzz/corpus/task_records>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "procmond/platform/linux/task_sampler.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sentinel::procmond::TaskSample;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // A recycled vector, as the sampler passes it from scan to scan.
  static std::vector<TaskSample> out;
  sentinel::Status st = sentinel::procmond::DecodeTaskRecords(in, &out);
  if (!st.ok()) {
    Check(!st.message().empty());
    return 0;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    const TaskSample& s = out[i];
    Check(s.pid > 0);
    if (i > 0) Check(out[i - 1].pid < s.pid);  // ascending, each process once
    Check(s.comm_len <= sizeof s.comm_buf);
    Check(std::memchr(s.comm().data(), '\0', s.comm().size()) == nullptr);
    Check(s.rss_pages >= 0);
    Check(std::strchr("RSDTtXZPI?", s.state) != nullptr && s.state != '\0');
  }
  // The two pure helpers the decoder uses, on the input's first words.
  if (size >= 8) {
    uint32_t a = 0, b = 0;
    std::memcpy(&a, data, 4);
    std::memcpy(&b, data + 4, 4);
    const char letter = sentinel::procmond::TaskStateLetter(a, b);
    Check(std::strchr("RSDTtXZPI?", letter) != nullptr && letter != '\0');
    Check(sentinel::procmond::EncodeTtyNr(a, b) >= 0);
  }
  return 0;
}
