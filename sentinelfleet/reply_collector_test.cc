#include "sentinelfleet/reply_collector.h"

#include <gtest/gtest.h>

#include <thread>

namespace sentinel::console {
namespace {

using nlohmann::json;
using std::chrono::steady_clock;

// Every chunk `host` sends for `rows` rows of [host, i], in 1 KiB chunks.
std::vector<std::string> Chunks(const std::string& query_id, const std::string& host, int rows) {
  fleet::ChunkWriter w(query_id, host, {"host", "n"}, 1024);
  std::vector<std::string> out;
  for (int i = 0; i < rows; ++i) {
    if (auto full = w.Add(json::array({host, i}))) out.push_back(*full);
  }
  out.push_back(w.Finish(false));
  return out;
}

TEST(ReplyCollectorTest, PutsEachHostsChunksBackInOrderAndKnowsWhenAllAnswered) {
  ReplyCollector c("q1", {"h1", "h2"}, 1000);
  auto h1 = Chunks("q1", "h1", 200);
  auto h2 = Chunks("q1", "h2", 3);
  ASSERT_GT(h1.size(), 2u);
  // h1's chunks out of order, h1's first chunk twice.
  for (auto it = h1.rbegin(); it != h1.rend(); ++it) c.Take(*it);
  c.Take(h1.front());
  EXPECT_EQ(c.Missing(), std::vector<std::string>{"h2"});
  for (const auto& m : h2) c.Take(m);
  EXPECT_TRUE(c.Missing().empty());
  c.Wait(steady_clock::now() + std::chrono::hours(1));  // returns at once: everyone answered
  auto r = c.Results();
  ASSERT_EQ(r.size(), 2u);
  ASSERT_EQ(r["h1"].rows.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(r["h1"].rows[static_cast<size_t>(i)][1], i);
  EXPECT_TRUE(r["h1"].complete);
  EXPECT_EQ(r["h2"].columns, (std::vector<std::string>{"host", "n"}));
  EXPECT_EQ(c.dropped(), 1);
}

TEST(ReplyCollectorTest, WaitsUntilTheDeadlineForAHostThatDoesNotAnswer) {
  ReplyCollector c("q1", {"h1", "h2"}, 1000);
  for (const auto& m : Chunks("q1", "h1", 2)) c.Take(m);
  c.Wait(steady_clock::now() + std::chrono::milliseconds(50));
  EXPECT_EQ(c.Missing(), std::vector<std::string>{"h2"});
  EXPECT_EQ(c.Results()["h1"].rows.size(), 2u);
}

TEST(ReplyCollectorTest, WakesTheWaiterWhenTheLastHostAnswers) {
  ReplyCollector c("q1", {"h1"}, 1000);
  std::thread host([&] {
    for (const auto& m : Chunks("q1", "h1", 5)) c.Take(m);
  });
  c.Wait(steady_clock::now() + std::chrono::hours(1));
  host.join();
  EXPECT_TRUE(c.Missing().empty());
}

TEST(ReplyCollectorTest, DropsWhatIsNotAnAnswerToThisQuery) {
  ReplyCollector c("q1", {"h1"}, 3);
  for (const auto& m : Chunks("other", "h1", 2)) c.Take(m);  // another query's
  c.Take("not json");
  c.Take(Chunks("q1", "bad host", 1).back());  // not a host id
  EXPECT_EQ(c.dropped(), 3);
  EXPECT_TRUE(c.Results().empty());
  // More rows than max_rows: kept to the bound, marked truncated.
  for (const auto& m : Chunks("q1", "h1", 50)) c.Take(m);
  auto r = c.Results();
  EXPECT_EQ(r["h1"].rows.size(), 3u);
  EXPECT_TRUE(r["h1"].truncated);
  // A chunk past the final one is dropped.
  fleet::QueryChunk late;
  late.query_id = "q1";
  late.host_id = "h1";
  late.seq = 99;
  late.columns = {"host", "n"};
  late.rows = json::array({json::array({"h1", 1})});
  c.Take(fleet::QueryChunkJson(late));
  EXPECT_EQ(c.Results()["h1"].rows.size(), 3u);
}

TEST(ReplyCollectorTest, TakesARefusalThatCarriesNoQueryId) {
  ReplyCollector c("q1", {"h1"}, 10);
  c.Take(fleet::ChunkWriter::Error("", "h1", {"untrusted_key", "signed by an untrusted key"}));
  EXPECT_TRUE(c.Missing().empty());
  auto r = c.Results();
  ASSERT_TRUE(r["h1"].error);
  EXPECT_EQ(r["h1"].error->code, "untrusted_key");
}

}  // namespace
}  // namespace sentinel::console
