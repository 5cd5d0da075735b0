// The control-socket wire format (docs/operations.md): a small, versioned,
// length-prefixed frame carrying one JSON object.
//
//   offset 0  4 bytes  magic "SNTL"
//   offset 4  1 byte   version (kFrameVersion = 1)
//   offset 5  4 bytes  payload length, unsigned big-endian, at most kMaxPayload
//   offset 9  N bytes  payload: one UTF-8 JSON object
//
// Requests are {"cmd": "health"|"scan-now"|"reload"|"stats", "id": <int or string>}; replies are
// {"id": ..., "ok": true, "result": {...}} or {"id": ..., "ok": false, "error": "..."}.
//
// FrameDecoder is pure (no I/O): bytes go in, NeedMore / Frame / Error come out. The length is
// checked against the limit before anything is allocated, so a hostile peer cannot make the
// decoder reserve more than kMaxPayload bytes. After an Error the decoder stays failed (the
// stream is out of sync; the connection must be closed).
//
// Thread-safety: values; one decoder per connection, used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"

namespace sentinel::ipc {

inline constexpr char kFrameMagic[4] = {'S', 'N', 'T', 'L'};
inline constexpr uint8_t kFrameVersion = 1;
inline constexpr size_t kHeaderSize = 9;
inline constexpr uint32_t kMaxPayload = 64 * 1024;

// The header + payload bytes of one frame. Fails (InvalidArgument) when the
// payload exceeds kMaxPayload.
Result<std::string> EncodeFrame(std::string_view payload);
// EncodeFrame(j.dump()); JSON is dumped with invalid UTF-8 replaced.
Result<std::string> EncodeJsonFrame(const nlohmann::json& j);

class FrameDecoder {
 public:
  enum class State { kNeedMore, kFrame, kError };

  explicit FrameDecoder(uint32_t max_payload = kMaxPayload) : max_payload_(max_payload) {}

  // Consumes bytes from `data` (possibly only part of it: at most up to the
  // end of the current frame) and stores how many in *consumed. Returns
  // kFrame when a whole frame is ready (take it with TakePayload() before
  // feeding more), kNeedMore when more bytes are needed, kError (see
  // error()) on a bad header. Feeding after kError returns kError again.
  State Feed(std::string_view data, size_t* consumed);

  // The payload of the completed frame; resets for the next frame.
  std::string TakePayload();

  // Why decoding failed ("bad magic ...", "unsupported version ...",
  // "frame of N bytes exceeds the limit of M bytes").
  const std::string& error() const { return error_; }
  bool failed() const { return !error_.empty(); }
  // True when part of a frame has been received (for "truncated frame" on EOF).
  bool mid_frame() const { return header_fill_ > 0 || have_length_; }

 private:
  uint32_t max_payload_;
  unsigned char header_[kHeaderSize] = {};
  size_t header_fill_ = 0;
  bool have_length_ = false;
  uint32_t length_ = 0;
  std::string payload_;
  bool complete_ = false;
  std::string error_;
};

// A parsed request.
struct Request {
  std::string cmd;
  nlohmann::json id;    // echoed back; null when absent
  nlohmann::json args;  // the optional "args" object; null when absent
  // Set by ControlServer from SO_PEERCRED (never from the payload).
  int64_t peer_uid = -1;
  int64_t peer_pid = -1;
};

// Parses a request payload: one JSON object with a string "cmd", an
// optional "id" (integer or string of at most 128 bytes) and optional
// "args" (an object). InvalidArgument naming what was wrong otherwise. Does
// not check that the command exists.
Result<Request> ParseRequest(std::string_view payload);

nlohmann::json MakeReply(const nlohmann::json& id, nlohmann::json result);
nlohmann::json MakeError(const nlohmann::json& id, std::string_view error);

}  // namespace sentinel::ipc
