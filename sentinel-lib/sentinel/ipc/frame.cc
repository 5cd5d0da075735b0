#include "sentinel/ipc/frame.h"

#include <algorithm>
#include <cstring>

#include "sentinel/base/hex.h"

namespace sentinel::ipc {
namespace {

std::string Printable(const unsigned char* p, size_t n) {
  return ToHex(std::span<const uint8_t>(p, n));
}

}  // namespace

Result<std::string> EncodeFrame(std::string_view payload) {
  if (payload.size() > kMaxPayload) {
    return InvalidArgumentError("frame payload of " + std::to_string(payload.size()) +
                                " bytes exceeds the limit of " + std::to_string(kMaxPayload) + " bytes");
  }
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  out.append(kFrameMagic, sizeof(kFrameMagic));
  out.push_back(static_cast<char>(kFrameVersion));
  const auto n = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(payload);
  return out;
}

Result<std::string> EncodeJsonFrame(const nlohmann::json& j) {
  return EncodeFrame(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

FrameDecoder::State FrameDecoder::Feed(std::string_view data, size_t* consumed) {
  *consumed = 0;
  if (failed()) return State::kError;
  if (complete_) return State::kFrame;
  size_t pos = 0;
  while (!have_length_) {
    if (pos == data.size()) {
      *consumed = pos;
      return State::kNeedMore;
    }
    header_[header_fill_++] = static_cast<unsigned char>(data[pos++]);
    // Check each field as soon as its bytes are in, so garbage is refused
    // without waiting for a whole header.
    if (header_fill_ <= sizeof(kFrameMagic) &&
        header_[header_fill_ - 1] != static_cast<unsigned char>(kFrameMagic[header_fill_ - 1])) {
      error_ = "bad magic 0x" + Printable(header_, header_fill_) + " (expected \"SNTL\")";
      *consumed = pos;
      return State::kError;
    }
    if (header_fill_ == 5 && header_[4] != kFrameVersion) {
      error_ = "unsupported protocol version " + std::to_string(header_[4]) + " (this side speaks " +
               std::to_string(kFrameVersion) + ")";
      *consumed = pos;
      return State::kError;
    }
    if (header_fill_ == kHeaderSize) {
      length_ = (uint32_t{header_[5]} << 24) | (uint32_t{header_[6]} << 16) | (uint32_t{header_[7]} << 8) |
                uint32_t{header_[8]};
      if (length_ > max_payload_) {
        error_ = "frame of " + std::to_string(length_) + " bytes exceeds the limit of " +
                 std::to_string(max_payload_) + " bytes";
        *consumed = pos;
        return State::kError;
      }
      have_length_ = true;
      payload_.clear();
      payload_.reserve(length_);  // bounded by max_payload_ (checked above)
    }
  }
  const size_t want = length_ - payload_.size();
  const size_t take = std::min(want, data.size() - pos);
  payload_.append(data.data() + pos, take);
  pos += take;
  *consumed = pos;
  if (payload_.size() == length_) {
    complete_ = true;
    return State::kFrame;
  }
  return State::kNeedMore;
}

std::string FrameDecoder::TakePayload() {
  std::string out = std::move(payload_);
  payload_.clear();
  header_fill_ = 0;
  have_length_ = false;
  length_ = 0;
  complete_ = false;
  return out;
}

Result<Request> ParseRequest(std::string_view payload) {
  nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("payload is not valid JSON");
  if (!j.is_object()) return InvalidArgumentError("payload must be a JSON object");
  Request r;
  auto cmd = j.find("cmd");
  if (cmd == j.end()) return InvalidArgumentError("request has no \"cmd\"");
  if (!cmd->is_string()) return InvalidArgumentError("\"cmd\" must be a string");
  r.cmd = cmd->get<std::string>();
  if (r.cmd.size() > 64) return InvalidArgumentError("\"cmd\" is longer than 64 bytes");
  auto id = j.find("id");
  if (id != j.end()) {
    if (id->is_number_integer()) {
      r.id = *id;
    } else if (id->is_string() && id->get_ref<const std::string&>().size() <= 128) {
      r.id = *id;
    } else if (!id->is_null()) {
      return InvalidArgumentError("\"id\" must be an integer or a string of at most 128 bytes");
    }
  }
  auto args = j.find("args");
  if (args != j.end() && !args->is_null()) {
    if (!args->is_object()) return InvalidArgumentError("\"args\" must be an object");
    r.args = std::move(*args);
  }
  return r;
}

nlohmann::json MakeReply(const nlohmann::json& id, nlohmann::json result) {
  return {{"id", id}, {"ok", true}, {"result", std::move(result)}};
}

nlohmann::json MakeError(const nlohmann::json& id, std::string_view error) {
  return {{"id", id}, {"ok", false}, {"error", std::string(error)}};
}

}  // namespace sentinel::ipc
