// What procmond's two BPF users (the real-time exec source and the per-scan
// task sampler) share: libbpf's messages captured for error texts.
#pragma once

#include <string>

namespace sentinel::procmond {

// Whether this build has the BPF programs (SENTINEL_EBPF found what it needs).
bool BpfSupportBuilt();

// Routes libbpf's warnings into a per-thread "last message" (debug output
// dropped), so a failed load can say what the verifier or libbpf said.
void CaptureLibbpfMessages();

// "<what>: <strerror> (needs root ...) [libbpf: <last message>]".
std::string BpfFailure(const char* what, int err);

}  // namespace sentinel::procmond
