#include "sentinel/ipc/frame.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sentinel::ipc {
namespace {

std::string Frame(std::string_view payload) {
  auto f = EncodeFrame(payload);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : std::string();
}

// Feeds `bytes` in one go; returns the final state and collects payloads.
FrameDecoder::State FeedAll(FrameDecoder& d, std::string_view bytes, std::vector<std::string>* out) {
  auto st = FrameDecoder::State::kNeedMore;
  while (true) {
    size_t used = 0;
    st = d.Feed(bytes, &used);
    EXPECT_LE(used, bytes.size());
    bytes.remove_prefix(used);
    if (st == FrameDecoder::State::kFrame) {
      out->push_back(d.TakePayload());
      if (bytes.empty()) return st;
      continue;
    }
    return st;
  }
}

TEST(FrameDecoder, DecodesOneFrameAndTheNext) {
  FrameDecoder d;
  std::vector<std::string> got;
  std::string two = Frame(R"({"cmd":"health","id":1})") + Frame(R"({"cmd":"stats"})");
  EXPECT_EQ(FeedAll(d, two, &got), FrameDecoder::State::kFrame);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], R"({"cmd":"health","id":1})");
  EXPECT_EQ(got[1], R"({"cmd":"stats"})");
}

TEST(FrameDecoder, ByteByByteGivesTheSamePayload) {
  FrameDecoder d;
  const std::string payload = R"({"cmd":"scan-now","id":"abc"})";
  const std::string f = Frame(payload);
  for (size_t i = 0; i + 1 < f.size(); ++i) {
    size_t used = 0;
    ASSERT_EQ(d.Feed(std::string_view(f).substr(i, 1), &used), FrameDecoder::State::kNeedMore) << i;
    ASSERT_EQ(used, 1u);
  }
  size_t used = 0;
  ASSERT_EQ(d.Feed(std::string_view(f).substr(f.size() - 1), &used), FrameDecoder::State::kFrame);
  EXPECT_EQ(d.TakePayload(), payload);
}

TEST(FrameDecoder, EmptyPayloadIsAFrame) {
  FrameDecoder d;
  std::vector<std::string> got;
  EXPECT_EQ(FeedAll(d, Frame(""), &got), FrameDecoder::State::kFrame);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "");
}

TEST(FrameDecoder, OversizedLengthRefusedBeforeThePayload) {
  FrameDecoder d;
  std::string header = "SNTL\x01";
  header += std::string("\x7f\xff\xff\xff", 4);  // 2 GiB announced, nothing sent
  size_t used = 0;
  ASSERT_EQ(d.Feed(header, &used), FrameDecoder::State::kError);
  EXPECT_NE(d.error().find("exceeds the limit of 65536 bytes"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("2147483647"), std::string::npos) << d.error();
  // Stays failed.
  EXPECT_EQ(d.Feed(Frame("{}"), &used), FrameDecoder::State::kError);
  EXPECT_EQ(used, 0u);
}

TEST(FrameDecoder, LimitIsInclusive) {
  FrameDecoder d(8);
  std::vector<std::string> got;
  EXPECT_EQ(FeedAll(d, Frame("12345678"), &got), FrameDecoder::State::kFrame);
  FrameDecoder d2(8);
  EXPECT_EQ(FeedAll(d2, Frame("123456789"), &got), FrameDecoder::State::kError);
  EXPECT_FALSE(EncodeFrame(std::string(kMaxPayload + 1, 'x')).ok());
  EXPECT_TRUE(EncodeFrame(std::string(kMaxPayload, 'x')).ok());
}

TEST(FrameDecoder, GarbageMagicRefusedAtTheFirstWrongByte) {
  FrameDecoder d;
  size_t used = 0;
  ASSERT_EQ(d.Feed("GET / HTTP/1.1\r\n", &used), FrameDecoder::State::kError);
  EXPECT_EQ(used, 1u);
  EXPECT_NE(d.error().find("bad magic"), std::string::npos) << d.error();
  FrameDecoder d2;
  ASSERT_EQ(d2.Feed("SNTX", &used), FrameDecoder::State::kError);
  EXPECT_NE(d2.error().find("0x534e5458"), std::string::npos) << d2.error();
}

TEST(FrameDecoder, WrongVersionRefused) {
  FrameDecoder d;
  std::string f = Frame("{}");
  f[4] = 2;
  size_t used = 0;
  ASSERT_EQ(d.Feed(f, &used), FrameDecoder::State::kError);
  EXPECT_NE(d.error().find("unsupported protocol version 2"), std::string::npos) << d.error();
}

TEST(FrameDecoder, TruncatedFrameNeedsMoreAndSaysSo) {
  FrameDecoder d;
  std::string f = Frame(R"({"cmd":"health"})");
  std::vector<std::string> got;
  EXPECT_EQ(FeedAll(d, f.substr(0, f.size() - 3), &got), FrameDecoder::State::kNeedMore);
  EXPECT_TRUE(d.mid_frame());
  EXPECT_TRUE(got.empty());
  FrameDecoder fresh;
  EXPECT_FALSE(fresh.mid_frame());
}

TEST(ParseRequest, GoodAndBad) {
  auto ok = ParseRequest(R"({"cmd":"health","id":7})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->cmd, "health");
  EXPECT_EQ(ok->id, 7);
  EXPECT_TRUE(ParseRequest(R"({"cmd":"stats"})").ok());
  struct Case {
    const char* payload;
    const char* reason;
  } cases[] = {
      {"{not json", "not valid JSON"},
      {"[1,2]", "must be a JSON object"},
      {R"({"id":1})", "no \"cmd\""},
      {R"({"cmd":5})", "\"cmd\" must be a string"},
      {R"({"cmd":"x","id":[1]})", "\"id\" must be"},
      {"", "not valid JSON"},
  };
  for (const auto& c : cases) {
    auto r = ParseRequest(c.payload);
    ASSERT_FALSE(r.ok()) << c.payload;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.reason), std::string::npos)
        << c.payload << ": " << r.status().message();
  }
}

// Thousands of random, mutated and truncated inputs (fixed seed, so every run
// sees the same ones): the decoder never consumes more than it was given,
// never yields a payload above the limit, and every error has a reason.
TEST(FrameDecoder, SurvivesRandomMutatedAndTruncatedInput) {
  std::mt19937_64 rng(20261128);
  const std::vector<std::string> seeds = {
      Frame(R"({"cmd":"health","id":1})"),
      Frame(R"({"cmd":"scan-now"})"),
      Frame(""),
      Frame(std::string(1000, 'a')),
      Frame(R"({"cmd":"stats","id":"x"})") + Frame("{}"),
  };
  const uint32_t limit = 4096;
  int frames = 0, errors = 0, need_more = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string input;
    switch (iter % 4) {
      case 0: {  // pure noise
        input.resize(rng() % 64);
        for (auto& ch : input) ch = static_cast<char>(rng());
        break;
      }
      case 1: {  // a valid frame with a few bytes flipped
        input = seeds[rng() % seeds.size()];
        for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n && !input.empty(); ++k)
          input[rng() % input.size()] = static_cast<char>(rng());
        break;
      }
      case 2: {  // truncated
        input = seeds[rng() % seeds.size()];
        input.resize(rng() % (input.size() + 1));
        break;
      }
      default: {  // valid header, random length
        input = "SNTL\x01";
        const uint32_t len = static_cast<uint32_t>(rng());
        for (int s = 24; s >= 0; s -= 8) input.push_back(static_cast<char>((len >> s) & 0xff));
        input.append(rng() % 32, 'z');
      }
    }
    // Heap copy of exactly the input size, fed in random-sized pieces.
    auto buf = std::make_unique<char[]>(input.size() + 1);
    std::copy(input.begin(), input.end(), buf.get());
    std::string_view rest(buf.get(), input.size());
    FrameDecoder d(limit);
    auto st = FrameDecoder::State::kNeedMore;
    while (!rest.empty() && st != FrameDecoder::State::kError) {
      const size_t piece = 1 + rng() % (rest.size());
      std::string_view chunk = rest.substr(0, piece);
      size_t used = 0;
      st = d.Feed(chunk, &used);
      ASSERT_LE(used, chunk.size());
      if (st == FrameDecoder::State::kFrame) {
        ++frames;
        std::string p = d.TakePayload();
        ASSERT_LE(p.size(), limit);
        // Whatever came out must parse or be refused with a reason.
        auto req = ParseRequest(p);
        if (!req.ok()) {
          ASSERT_FALSE(req.status().message().empty());
        }
      } else if (st == FrameDecoder::State::kError) {
        ++errors;
        ASSERT_FALSE(d.error().empty());
        ASSERT_TRUE(d.failed());
      } else {
        ASSERT_EQ(used, chunk.size()) << "NeedMore must consume everything it was given";
      }
      rest.remove_prefix(used);
    }
    if (st == FrameDecoder::State::kNeedMore) ++need_more;
  }
  // Every kind of outcome was exercised.
  EXPECT_GT(frames, 100);
  EXPECT_GT(errors, 1000);
  EXPECT_GT(need_more, 100);
}

TEST(ParseRequestTest, ArgsAreAnOptionalObject) {
  auto r = ParseRequest(R"({"cmd": "audit-append", "args": {"check": true}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->args, nlohmann::json({{"check", true}}));
  EXPECT_EQ(r->peer_uid, -1) << "only the server sets the peer";
  r = ParseRequest(R"({"cmd": "health", "peer_uid": 0})");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->args.is_null());
  EXPECT_EQ(r->peer_uid, -1) << "a payload cannot name its peer";
  auto bad = ParseRequest(R"({"cmd": "audit-append", "args": [1]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"args\" must be an object"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::ipc
