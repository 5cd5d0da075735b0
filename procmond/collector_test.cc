#include "procmond/collector.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "procmond/platform/linux/fake_proc_for_test.h"
#include "procmond/platform/linux/linux_process_source.h"
#include "sentinel/crypto/sha256.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

using fakeproc::FakeProc;
using fakeproc::FakeProcess;

int64_t QueryInt(storage::EventStore& store, const std::string& sql) {
  auto v = store.db().QueryInt(sql);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() && v->has_value() ? **v : -1;
}

std::string QueryText(storage::EventStore& store, const std::string& sql) {
  auto v = store.db().QueryText(sql);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() && v->has_value() ? **v : "<null>";
}

// The scan's hash counters reach scan_metadata; exe_hash and platform_data
// reach the stored instance.
TEST(CollectorTest, WritesHashCountersAndPlatformData) {
  FakeProc proc;
  ::sentinel::testing::WriteFile(proc.File("image"), "image bytes");
  ::sentinel::testing::WriteFile(proc.File("big"), std::string(100, 'b'));
  FakeProcess f;
  for (int pid : {10, 11, 12}) {
    f.pid = pid;
    f.exe = proc.File("image");
    proc.Write(f);
  }
  f.pid = 13;
  f.exe = proc.File("big");
  proc.Write(f);

  ::sentinel::testing::TempDir dir;
  auto store = storage::EventStore::Open({dir.File("events.db"), storage::OpenMode::kReadWrite});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  LinuxProcessSource source({.fs = &proc, .max_hash_bytes = 64});
  Collector collector(source, **store);

  auto s1 = collector.RunScan();
  ASSERT_TRUE(s1.ok()) << s1.status().ToString();
  EXPECT_EQ(s1->processes, 4);
  EXPECT_EQ(s1->hash_cache_misses, 1);
  EXPECT_EQ(s1->hash_cache_hits, 2);
  auto s2 = collector.RunScan();
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  EXPECT_EQ(s2->hash_cache_misses, 0);
  EXPECT_EQ(s2->hash_cache_hits, 3);

  const std::string id1 = std::to_string(s1->scan_id), id2 = std::to_string(s2->scan_id);
  EXPECT_EQ(QueryInt(**store, "SELECT hash_cache_misses FROM scan_metadata WHERE scan_id=" + id1), 1);
  EXPECT_EQ(QueryInt(**store, "SELECT hash_cache_hits FROM scan_metadata WHERE scan_id=" + id1), 2);
  EXPECT_EQ(QueryInt(**store, "SELECT hash_cache_misses FROM scan_metadata WHERE scan_id=" + id2), 0);
  EXPECT_EQ(QueryInt(**store, "SELECT hash_cache_hits FROM scan_metadata WHERE scan_id=" + id2), 3);
  EXPECT_EQ(QueryText(**store, "SELECT exe_hash FROM process_instances WHERE pid=11"),
            crypto::Sha256Hex("image bytes"));
  EXPECT_EQ(QueryText(**store, "SELECT hash_algorithm FROM process_instances WHERE pid=11"), "sha256");
  EXPECT_EQ(QueryText(**store, "SELECT exe_hash FROM process_instances WHERE pid=13"), "<null>");
  auto pd =
      nlohmann::json::parse(QueryText(**store, "SELECT platform_data FROM process_instances WHERE pid=13"));
  EXPECT_EQ(pd["hash_skipped"], "too_large");
  EXPECT_EQ(pd["cwd"], "/srv/app");
  EXPECT_EQ(QueryInt(**store, "SELECT COUNT(*) FROM process_instances"), 4);
}

}  // namespace
}  // namespace sentinel::procmond
