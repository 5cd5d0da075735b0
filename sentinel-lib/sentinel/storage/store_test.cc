#include "sentinel/storage/store.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::storage {
namespace {

using testing::FileExists;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

StoreOptions Rw(const std::string& p) {
  return {p, OpenMode::kReadWrite, 2000};
}
StoreOptions Ro(const std::string& p) {
  return {p, OpenMode::kReadOnly, 2000};
}

models::ProcessRecord Proc(int64_t pid, std::string name, int64_t start = 1000) {
  models::ProcessRecord p;
  p.pid = pid;
  p.ppid = 1;
  p.name = std::move(name);
  p.exe_path = "/usr/bin/" + p.name;
  p.command_line = std::vector<std::string>{p.name, "--flag"};
  p.start_time_ms = start;
  p.cpu_percent = 0.0;
  p.memory_bytes = 4096;
  p.status = "sleeping";
  p.user_id = 0;
  p.user_name = "root";
  return p;
}

models::ScanRecord Scan(int64_t t, std::vector<models::ProcessRecord> procs) {
  models::ScanRecord s;
  s.started_at_ms = t;
  s.completed_at_ms = t + 5;
  s.hostname = "h";
  s.collector_version = "test";
  s.processes = std::move(procs);
  return s;
}

int64_t Count(Database& db, const std::string& sql) {
  return db.QueryInt(sql)->value_or(-1);
}

TEST(StoreTest, CreatesWalDatabaseWithMigrationsAndRestrictiveMode) {
  TempDir dir;
  std::string path = dir.File("sub/dir/events.db");
  auto store = EventStore::Open(Rw(path));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Database& db = (*store)->db();
  EXPECT_EQ(*db.QueryText("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(Count(db, "PRAGMA user_version"), LatestSchemaVersion(DatabaseKind::kEvents));
  EXPECT_EQ(Count(db, "SELECT count(*) FROM schema_migrations"), LatestSchemaVersion(DatabaseKind::kEvents));
  EXPECT_EQ(Count(db, "SELECT length(checksum) FROM schema_migrations WHERE version=1"), 64);
  EXPECT_GT(Count(db, "PRAGMA busy_timeout"), 0);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_EQ(stat(dir.File("sub/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
  for (const char* table :
       {"process_snapshots", "scan_metadata", "detection_rules", "alerts", "alert_deliveries",
        "system_metadata", "process_events", "dead_letter_queue", "processes"}) {
    EXPECT_EQ(Count(db, std::string("SELECT count(*) FROM sqlite_schema WHERE name='") + table + "'"), 1)
        << table;
  }
  EXPECT_EQ(
      Count(db, "SELECT count(*) FROM pragma_table_info('alerts') WHERE name IN ('dedup_key','status')"), 2);
}

TEST(StoreTest, PageCacheIsSQLitesDefaultUnlessAsked) {
  TempDir dir;
  auto plain = EventStore::Open(Rw(dir.File("e.db")));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(Count((*plain)->db(), "PRAGMA cache_size"), -2000);
  StoreOptions small = Rw(dir.File("e.db"));
  small.cache_kib = 512;
  auto collector = EventStore::Open(small);
  ASSERT_TRUE(collector.ok()) << collector.status().ToString();
  EXPECT_EQ(Count((*collector)->db(), "PRAGMA cache_size"), -512);
}

TEST(StoreTest, ReopenIsIdempotent) {
  TempDir dir;
  { ASSERT_TRUE(EventStore::Open(Rw(dir.File("e.db"))).ok()); }
  auto again = EventStore::Open(Rw(dir.File("e.db")));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Count((*again)->db(), "SELECT count(*) FROM schema_migrations"),
            LatestSchemaVersion(DatabaseKind::kEvents));
  auto ro = OpenStore(DatabaseKind::kEvents, Ro(dir.File("e.db")));
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_FALSE((*ro)->Exec("INSERT INTO system_metadata VALUES('k','v',0)").ok());
}

// The agent and procmond start together on a store that does not exist yet:
// each of two processes creates, or finds the other creating, the same new
// file. Neither may take the other's half-made store for a foreign one.
TEST(StoreTest, TwoProcessesCreatingTheSameStoreAtOnceBothOpenIt) {
  TempDir dir;
  int failures = 0;
  std::string first_error;
  for (int round = 0; round < 150; ++round) {
    const std::string path = dir.File("race" + std::to_string(round) + ".db");
    int pipes[2][2];
    pid_t pids[2];
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(::pipe(pipes[i]), 0);
      pids[i] = ::fork();
      ASSERT_GE(pids[i], 0);
      if (pids[i] == 0) {
        ::close(pipes[i][0]);
        auto db = OpenStore(DatabaseKind::kEvents, {path, OpenMode::kReadWrite});
        const std::string msg = db.ok() ? "" : db.status().message();
        (void)!::write(pipes[i][1], msg.data(), msg.size());
        ::_exit(db.ok() ? 0 : 1);
      }
      ::close(pipes[i][1]);
    }
    for (int i = 0; i < 2; ++i) {
      std::string msg;
      char buf[512];
      for (ssize_t n; (n = ::read(pipes[i][0], buf, sizeof buf)) > 0;)
        msg.append(buf, static_cast<size_t>(n));
      ::close(pipes[i][0]);
      int status = 0;
      ASSERT_EQ(::waitpid(pids[i], &status, 0), pids[i]);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (failures++ == 0) first_error = msg;
      }
    }
  }
  EXPECT_EQ(failures, 0) << "first error: " << first_error;
}

TEST(StoreTest, RefusesNewerSchemaWithoutChangingIt) {
  TempDir dir;
  std::string path = dir.File("e.db");
  {
    auto s = EventStore::Open(Rw(path));
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->db().Exec("PRAGMA user_version=99").ok());
  }
  std::string before = ReadFile(path);
  for (auto opts : {Rw(path), Ro(path)}) {
    auto s = EventStore::Open(opts);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(s.status().message().find("schema version 99 is newer"), std::string::npos)
        << s.status().message();
  }
  EXPECT_EQ(ReadFile(path), before);
}

TEST(StoreTest, RefusesFileThatIsNotSqlite) {
  TempDir dir;
  std::string path = dir.File("e.db");
  std::string junk =
      "this is not a database, just some text that is long enough to have a header............\n";
  WriteFile(path, junk);
  for (auto opts : {Rw(path), Ro(path)}) {
    auto s = EventStore::Open(opts);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.status().message().find("not a SentinelD event store"), std::string::npos)
        << s.status().message();
  }
  EXPECT_EQ(ReadFile(path), junk);
  EXPECT_FALSE(FileExists(path + "-wal"));
}

TEST(StoreTest, RefusesForeignSqliteDatabase) {
  TempDir dir;
  std::string path = dir.File("other.db");
  {
    auto db = Database::Open(path, OpenMode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("CREATE TABLE users(id INTEGER, name TEXT)").ok());
  }
  std::string before = ReadFile(path);
  auto s = EventStore::Open(Rw(path));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("written by another program"), std::string::npos)
      << s.status().message();
  EXPECT_EQ(ReadFile(path), before);
  // An audit ledger is not an event store either.
  std::string audit = dir.File("audit.db");
  ASSERT_TRUE(OpenStore(DatabaseKind::kAudit, Rw(audit)).ok());
  auto wrong = EventStore::Open(Rw(audit));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("it is a SentinelD audit ledger"), std::string::npos);
}

// The files a SentinelD store can be found as, checked without a byte or a side file written.
TEST(StoreTest, CheckStoreFileNamesWhatIsWrongAndWritesNothing) {
  TempDir dir;
  EXPECT_TRUE(CheckStoreFile(DatabaseKind::kEvents, dir.File("missing.db")).ok());
  WriteFile(dir.File("empty.db"), "");
  EXPECT_TRUE(CheckStoreFile(DatabaseKind::kEvents, dir.File("empty.db")).ok());
  const std::string good = dir.File("good.db");
  const std::string audit = dir.File("audit.db");
  { ASSERT_TRUE(EventStore::Open(Rw(good)).ok()); }
  { ASSERT_TRUE(OpenStore(DatabaseKind::kAudit, Rw(audit)).ok()); }
  ASSERT_FALSE(FileExists(good + "-wal"));
  EXPECT_TRUE(CheckStoreFile(DatabaseKind::kEvents, good).ok());
  EXPECT_TRUE(CheckStoreFile(DatabaseKind::kAudit, audit).ok());

  auto expect_refused = [&](DatabaseKind kind, const std::string& path, StatusCode code,
                            const std::string& what) {
    SCOPED_TRACE(path);
    const std::string before = ReadFile(path);
    Status s = CheckStoreFile(kind, path);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), code) << s.ToString();
    EXPECT_TRUE(s.message().starts_with(path + ": ")) << s.message();
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
    EXPECT_EQ(ReadFile(path), before);
    EXPECT_FALSE(FileExists(path + "-wal"));
    EXPECT_FALSE(FileExists(path + "-shm"));
  };
  WriteFile(dir.File("text.db"), std::string(200, 'x'));
  expect_refused(DatabaseKind::kEvents, dir.File("text.db"), StatusCode::kInvalidArgument, "not a database");
  expect_refused(DatabaseKind::kEvents, audit, StatusCode::kFailedPrecondition,
                 "it is a SentinelD audit ledger");
  {
    auto db = Database::Open(dir.File("other.db"), OpenMode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("CREATE TABLE users(id INTEGER, name TEXT)").ok());
  }
  expect_refused(DatabaseKind::kAudit, dir.File("other.db"), StatusCode::kFailedPrecondition,
                 "written by another program");
  const std::string full = ReadFile(good);
  WriteFile(dir.File("cut.db"), full.substr(0, full.size() / 2));
  expect_refused(DatabaseKind::kEvents, dir.File("cut.db"), StatusCode::kDataLoss,
                 "truncated: " + std::to_string(full.size() / 2) + " bytes");
  WriteFile(dir.File("newer.db"), full);
  {
    auto db = Database::Open(dir.File("newer.db"), OpenMode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=99").ok());
  }
  ::unlink((dir.File("newer.db") + "-wal").c_str());
  ::unlink((dir.File("newer.db") + "-shm").c_str());
  expect_refused(DatabaseKind::kEvents, dir.File("newer.db"), StatusCode::kFailedPrecondition,
                 "schema version 99 is newer");
  ::mkdir(dir.File("dir.db").c_str(), 0700);
  Status d = CheckStoreFile(DatabaseKind::kEvents, dir.File("dir.db"));
  EXPECT_FALSE(d.ok());
  EXPECT_NE(d.message().find("not a regular file"), std::string::npos) << d.message();
}

TEST(StoreTest, ReadOnlyDirectoryIsAClearError) {
  TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  ASSERT_EQ(mkdir(dir.File("ro").c_str(), 0555), 0);
  auto check = [&] {
    auto s = EventStore::Open(Rw(dir.File("ro/e.db")));
    return !s.ok() && s.status().code() == StatusCode::kPermissionDenied &&
           s.status().message().find("ro/e.db") != std::string::npos;
  };
  if (testing::IsRoot()) {
    // Root ignores directory permissions: check as nobody in a child.
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(3);
      _exit(check() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "3 = could not become nobody, 1 = wrong error";
  } else {
    EXPECT_TRUE(check());
  }
  EXPECT_FALSE(FileExists(dir.File("ro/e.db")));
}

// Issue 14: whoever owns the data directory could plant a link at the store
// or a side file and have a privileged opener write (or create) its target.
class StoreSymlinkTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StoreSymlinkTest, ALinkAtTheStoreOrASideFileIsRefusedNamingIt) {
  TempDir tmp;
  const std::string db = tmp.File("events.db");
  if (GetParam() != "") {
    ASSERT_TRUE(EventStore::Open(Rw(db)).ok());  // a real store; the side file is the link
    for (const char* suffix : {"-wal", "-shm", "-journal"}) ::unlink((db + suffix).c_str());
  }
  const std::string link = db + GetParam();
  WriteFile(tmp.File("target"), "");  // an empty file: SQLite would take it as an empty database
  ASSERT_EQ(::chmod(tmp.File("target").c_str(), 0604), 0);
  ASSERT_EQ(::symlink(tmp.File("target").c_str(), link.c_str()), 0);
  for (OpenMode mode : {OpenMode::kReadWrite, OpenMode::kReadOnly}) {
    auto s = EventStore::Open({db, mode, 2000});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition) << s.status().message();
    EXPECT_NE(s.status().message().find("refusing " + link + ": it is a symbolic link"), std::string::npos)
        << s.status().message();
  }
  EXPECT_EQ(ReadFile(tmp.File("target")), "");
  struct stat st {};
  ASSERT_EQ(::stat(tmp.File("target").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0604u);

  // A link to a file that does not exist yet: nothing is created.
  ASSERT_EQ(::unlink(link.c_str()), 0);
  ASSERT_EQ(::symlink(tmp.File("new-target").c_str(), link.c_str()), 0);
  EXPECT_EQ(EventStore::Open(Rw(db)).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(FileExists(tmp.File("new-target")));
}

INSTANTIATE_TEST_SUITE_P(Paths, StoreSymlinkTest, ::testing::Values("", "-wal", "-shm", "-journal"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return p.param.empty() ? std::string("store") : p.param.substr(1);
                         });

TEST(StoreTest, ALinkAboveTheStoreIsRefusedBySQLite) {
  TempDir tmp;
  ASSERT_EQ(::mkdir(tmp.File("real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(tmp.File("real").c_str(), tmp.File("data").c_str()), 0);
  auto s = EventStore::Open(Rw(tmp.File("data/events.db")));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("refusing " + tmp.File("data/events.db") +
                                      ": its path goes through a symbolic link"),
            std::string::npos)
      << s.status().message();
}

TEST(StoreTest, ReadOnlyMissingDatabase) {
  TempDir dir;
  auto s = EventStore::Open(Ro(dir.File("nope.db")));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(FileExists(dir.File("nope.db")));
}

TEST(StoreTest, IncrementalScansPresentFullSnapshots) {
  TempDir dir;
  auto store_or = EventStore::Open(Rw(dir.File("e.db")));
  ASSERT_TRUE(store_or.ok());
  EventStore& store = **store_or;
  Database& db = store.db();

  auto s1 = store.WriteScan(Scan(10'000, {Proc(1, "init"), Proc(100, "sshd"), Proc(200, "bash")}));
  ASSERT_TRUE(s1.ok()) << s1.status().ToString();
  // Scan 2: nothing changed.
  auto s2 = store.WriteScan(Scan(20'000, {Proc(1, "init"), Proc(100, "sshd"), Proc(200, "bash")}));
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_states"), 3)
      << "unchanged processes must not be rewritten";
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_instances"), 3);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_snapshots"), 6);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_snapshots WHERE scan_id=" + std::to_string(*s2)), 3);

  // Scan 3: bash escalates to uid 0 -> 1000 change, sshd exits, a new process, and pid 100 reused.
  auto bash = Proc(200, "bash");
  bash.user_id = 1000;
  bash.user_name = "alice";
  bash.effective_uid = 0;  // a setuid-root program
  auto s3 =
      store.WriteScan(Scan(30'000, {Proc(1, "init"), bash, Proc(100, "nc", 5000), Proc(300, "python3")}));
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(Count(db, "SELECT count(*) FROM processes"), 4);
  EXPECT_EQ(Count(db, "SELECT user_id FROM processes WHERE pid=200"), 1000);
  EXPECT_EQ(Count(db, "SELECT effective_uid FROM processes WHERE pid=200"), 0);
  EXPECT_EQ(
      Count(db, "SELECT user_id FROM process_snapshots WHERE pid=200 AND scan_id=" + std::to_string(*s2)), 0);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM processes WHERE name='sshd'"), 0);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_snapshots WHERE name='sshd'"), 2);
  EXPECT_EQ(Count(db, "SELECT new_processes FROM scan_metadata WHERE scan_id=" + std::to_string(*s3)), 2);
  EXPECT_EQ(Count(db, "SELECT exited_processes FROM scan_metadata WHERE scan_id=" + std::to_string(*s3)), 1);

  // Scan 4: pid 300 calls execve (same pid and start time, new image).
  auto exec = Proc(300, "sh");
  auto s4 = store.WriteScan(Scan(40'000, {Proc(1, "init"), bash, Proc(100, "nc", 5000), exec}));
  ASSERT_TRUE(s4.ok());
  EXPECT_EQ(*db.QueryText("SELECT name FROM processes WHERE pid=300"), "sh");
  EXPECT_EQ(Count(db, "SELECT count(*) FROM processes WHERE pid=300"), 1);

  // A reopened store (collector restart) continues from the database.
  store_or->reset();
  auto reopened = EventStore::Open(Rw(dir.File("e.db")));
  ASSERT_TRUE(reopened.ok());
  auto s5 = (*reopened)->WriteScan(Scan(50'000, {Proc(1, "init"), bash}));
  ASSERT_TRUE(s5.ok());
  Database& db2 = (*reopened)->db();
  EXPECT_EQ(Count(db2, "SELECT count(*) FROM processes"), 2);
  EXPECT_EQ(Count(db2, "SELECT count(*) FROM process_snapshots WHERE pid=300"), 2);
  // command_line is a JSON array.
  auto cmd = db2.QueryText("SELECT command_line FROM processes WHERE pid=1");
  EXPECT_EQ(nlohmann::json::parse(**cmd), nlohmann::json::array({"init", "--flag"}));
}

TEST(StoreTest, HostileStringsStoredExactly) {
  TempDir dir;
  auto store = EventStore::Open(Rw(dir.File("e.db")));
  ASSERT_TRUE(store.ok());
  auto p = Proc(42, "x');DROP TABLE alerts;--\n\"");
  p.command_line = std::vector<std::string>{"a\"b", "c\nd", std::string(128 * 1024, 'A')};
  ASSERT_TRUE((*store)->WriteScan(Scan(1000, {p})).ok());
  auto name = (*store)->db().QueryText("SELECT name FROM processes");
  EXPECT_EQ(**name, p.name);
  auto cmd = (*store)->db().QueryText("SELECT command_line FROM processes");
  auto j = nlohmann::json::parse(**cmd);
  EXPECT_EQ(j[1], "c\nd");
  EXPECT_EQ(j[2].get<std::string>().size(), 128u * 1024);
  EXPECT_EQ(Count((*store)->db(), "SELECT count(*) FROM alerts"), 0);
}

// Retention tests: a fresh read-write store, "now" at day 100 and history
// written relative to it.
class StoreRetentionTest : public ::testing::Test {
 protected:
  static constexpr int64_t kDay = 86'400'000;
  static constexpr int64_t kNow = 100 * kDay;

  void SetUp() override {
    auto store = EventStore::Open(Rw(dir_.File("e.db")));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  EventStore& store() { return *store_; }
  Database& db() { return store_->db(); }

  // Writes a scan of `procs` taken `days_ago` days before kNow.
  ::testing::AssertionResult ScanDaysAgo(int64_t days_ago, std::vector<models::ProcessRecord> procs) {
    auto id = store_->WriteScan(Scan(kNow - days_ago * kDay, std::move(procs)));
    if (!id.ok()) return ::testing::AssertionFailure() << id.status().ToString();
    return ::testing::AssertionSuccess();
  }

 private:
  TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(StoreRetentionTest, DeletesOldHistoryOnly) {
  ASSERT_TRUE(ScanDaysAgo(40, {Proc(1, "init"), Proc(50, "old")}));
  ASSERT_TRUE(ScanDaysAgo(35, {Proc(1, "init")}));
  ASSERT_TRUE(ScanDaysAgo(1, {Proc(1, "init"), Proc(60, "new")}));
  ASSERT_TRUE(db().Exec("INSERT INTO process_events(event_time_ms,event_type,pid) VALUES(" +
                        std::to_string(kNow - 31 * kDay) + ",'exec',5),(" + std::to_string(kNow - kDay) +
                        ",'exec',6)")
                  .ok());
  ASSERT_TRUE(db().Exec("INSERT INTO alerts(alert_time,rule_id,title,severity) VALUES(" +
                        std::to_string(kNow - 400 * kDay) + ",'r','old','low')")
                  .ok());
  auto r = store().ApplyRetention(kNow, 30);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->scans_deleted, 2);
  EXPECT_EQ(r->events_deleted, 1);
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM process_instances WHERE name='old'"), 0);
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM processes"), 2);  // init survives with its old state row
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM process_snapshots"), 2);
  // Alerts are the alert store's to retire (alertstore/retention.h).
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM alerts"), 1);
  // The next scan still works after retention.
  ASSERT_TRUE(ScanDaysAgo(0, {Proc(1, "init")}));
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM processes"), 1);
}

TEST_F(StoreRetentionTest, InSmallChunksGivesTheSameResult) {
  for (int i = 0; i < 6; ++i) {
    std::vector<models::ProcessRecord> procs = {Proc(1, "init")};
    for (int p = 0; p < 5; ++p) procs.push_back(Proc(100 + i * 10 + p, "gen" + std::to_string(i)));
    ASSERT_TRUE(ScanDaysAgo(40 - i, procs));
  }
  ASSERT_TRUE(ScanDaysAgo(1, {Proc(1, "init")}));
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(db().Exec("INSERT INTO process_events(event_time_ms,event_type,pid) VALUES(" +
                          std::to_string(kNow - 31 * kDay) + ",'exec'," + std::to_string(i) + ")")
                    .ok());
  }
  auto r = store().ApplyRetention(kNow, 30, /*chunk_rows=*/1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->scans_deleted, 6);
  EXPECT_EQ(r->instances_deleted, 30);
  EXPECT_EQ(r->events_deleted, 7);
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM process_instances"), 1);
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM process_states"), 1);  // init's state in force
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM processes"), 1);
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM process_events"), 0);
  EXPECT_FALSE(store().ApplyRetention(kNow, 30, 0).ok());
  EXPECT_FALSE(store().ApplyRetention(kNow, 0).ok());
}

TEST_F(StoreRetentionTest, KeepsTheLatestScanAfterALongShutdown) {
  ASSERT_TRUE(ScanDaysAgo(50, {Proc(1, "init"), Proc(7, "old")}));
  ASSERT_TRUE(ScanDaysAgo(45, {Proc(1, "init"), Proc(8, "last")}));
  auto r = store().ApplyRetention(kNow, 30);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->scans_deleted, 1);
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM processes"), 2);
  EXPECT_EQ(Count(db(), "SELECT count(*) FROM process_instances WHERE name='old'"), 0);
  auto m = store().Maintain();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GE(m->wal_frames, m->checkpointed_frames);
}

TEST(StoreTest, ExecEventsKeepTheirContextAndParent) {
  TempDir dir;
  auto store = EventStore::Open(Rw(dir.File("events.db")));
  ASSERT_TRUE(store.ok()) << store.status().message();
  models::ProcessEvent e;
  e.event_time_ms = 1'700'000'000'123;
  e.event_type = "exec";
  e.pid = 4242;
  e.ppid = 4000;
  e.name = "curl";
  e.exe_path = "/usr/bin/curl";
  e.command_line = std::vector<std::string>{"curl", "-s", "http://x/\"q\""};
  e.start_time_ms = 1'700'000'000'120;
  e.cwd = "/tmp/work dir";
  e.login_uid = 1000;
  e.tty = "pts/3";
  e.effective_uid = 0;
  e.effective_gid = 0;
  e.cred_change = true;
  e.env = std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", "/tmp/x.so"},
                                                           {"HISTFILE", "/dev/null"}};
  e.env_truncated = false;
  e.args_truncated = true;
  e.parent_exe_path = "/usr/bin/bash";
  e.parent_name = "bash";
  e.parent_command_line = std::vector<std::string>{"bash", "-i"};
  e.parent_start_time_ms = 1'699'999'999'000;
  models::ProcessEvent exit;
  exit.event_time_ms = 1'700'000'000'200;
  exit.event_type = "exit";
  exit.pid = 4242;
  exit.exit_code = 0;
  ASSERT_TRUE((*store)->WriteEvents({e, exit}).ok());

  auto& db = (*store)->db();
  auto row = db.QueryText(
      "SELECT json_array(start_time, cwd, login_uid, tty, effective_uid, effective_gid, cred_change, "
      "json(env), env_truncated, args_truncated, command_text, parent_exe_path, parent_name, "
      "json(parent_command_line), parent_command_text, parent_start_time) FROM process_events "
      "WHERE event_type = 'exec' AND pid = 4242");
  ASSERT_TRUE(row.ok() && *row) << row.status().message();
  EXPECT_EQ(nlohmann::json::parse(**row),
            nlohmann::json::parse(R"([1700000000120, "/tmp/work dir", 1000, "pts/3", 0, 0, 1,
              {"LD_PRELOAD": "/tmp/x.so", "HISTFILE": "/dev/null"}, 0, 1, "curl -s http://x/\"q\"",
              "/usr/bin/bash", "bash", ["bash", "-i"], "bash -i", 1699999999000])"));
  // Arguments the writer encoded already (procmond's parents) are stored as given.
  models::ProcessEvent pre = e;
  pre.pid = 4243;
  pre.command_line.reset();
  pre.parent_command_line.reset();
  pre.command_encoded = models::EncodeArgv({"curl", "-s", "http://x/\"q\""});
  pre.parent_command_encoded = models::EncodeArgv({"bash", "-i"});
  ASSERT_TRUE((*store)->WriteEvents({pre}).ok());
  auto pre_row = db.QueryText(
      "SELECT json_array(json(command_line), command_text, json(parent_command_line), parent_command_text) "
      "FROM process_events WHERE pid = 4243");
  ASSERT_TRUE(pre_row.ok() && *pre_row) << pre_row.status().message();
  EXPECT_EQ(nlohmann::json::parse(**pre_row), nlohmann::json::parse(R"([["curl", "-s", "http://x/\"q\""],
              "curl -s http://x/\"q\"", ["bash", "-i"], "bash -i"])"));
  // An exit event has none of the exec context.
  auto exit_row = db.QueryText(
      "SELECT json_array(start_time, cwd, env, command_text, parent_name, cred_change) FROM process_events "
      "WHERE event_type = 'exit'");
  ASSERT_TRUE(exit_row.ok() && *exit_row);
  EXPECT_EQ(**exit_row, "[null,null,null,null,null,null]");
}

models::ProcessEvent Event(int64_t pid, std::string type) {
  models::ProcessEvent e;
  e.event_time_ms = 1'700'000'000'000 + pid;
  e.event_type = std::move(type);
  e.pid = pid;
  return e;
}

// The prepared INSERT statements into process_events the connection holds.
std::vector<sqlite3_stmt*> EventInserts(Database& db) {
  std::vector<sqlite3_stmt*> out;
  for (sqlite3_stmt* st = sqlite3_next_stmt(db.raw(), nullptr); st != nullptr;
       st = sqlite3_next_stmt(db.raw(), st)) {
    if (std::string(sqlite3_sql(st)).rfind("INSERT INTO process_events", 0) == 0) out.push_back(st);
  }
  return out;
}

// Issue 16: the INSERT is prepared once for the store and reused by every
// batch, not parsed and planned again for each (an idle host writes a batch
// of a few rows every 200 ms).
TEST(StoreTest, EventBatchesShareOnePreparedInsert) {
  TempDir dir;
  auto store = EventStore::Open(Rw(dir.File("events.db")));
  ASSERT_TRUE(store.ok()) << store.status().message();
  ASSERT_TRUE((*store)->WriteEvents({Event(1, "exec"), Event(1, "exit"), Event(2, "exec")}).ok());
  ASSERT_TRUE((*store)->WriteEvents({Event(3, "exec"), Event(2, "exit")}).ok());
  Database& db = (*store)->db();
  const std::vector<sqlite3_stmt*> inserts = EventInserts(db);
  ASSERT_EQ(inserts.size(), 1u);
  EXPECT_EQ(sqlite3_stmt_status(inserts[0], SQLITE_STMTSTATUS_RUN, 0), 5);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_events"), 5);
}

// A batch that fails part-way (a row the table refuses) writes nothing and
// leaves nothing of its rows bound for the next batch.
TEST(StoreTest, AFailedEventBatchLeavesTheSharedInsertClean) {
  TempDir dir;
  auto store = EventStore::Open(Rw(dir.File("events.db")));
  ASSERT_TRUE(store.ok()) << store.status().message();
  models::ProcessEvent first = Event(10, "exit");
  first.exit_code = 7;
  first.cwd = "/left/over";
  models::ProcessEvent refused = Event(11, "not-a-type");  // CHECK(event_type IN ...)
  EXPECT_FALSE((*store)->WriteEvents({first, refused}).ok());
  Database& db = (*store)->db();
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_events"), 0);
  ASSERT_TRUE((*store)->WriteEvents({Event(12, "exit")}).ok());
  auto row = db.QueryText("SELECT json_array(pid, exit_code, cwd) FROM process_events");
  ASSERT_TRUE(row.ok() && *row) << row.status().message();
  EXPECT_EQ(**row, "[12,null,null]");
}

// Rows go 16 to an INSERT while there are that many, the rest one by one:
// every row is stored once, in order, with its own values.
TEST(StoreTest, LargeEventBatchesKeepEveryRowInOrder) {
  TempDir dir;
  auto store = EventStore::Open(Rw(dir.File("events.db")));
  ASSERT_TRUE(store.ok()) << store.status().message();
  std::vector<models::ProcessEvent> batch;
  std::string expected;
  for (int64_t pid = 1; pid <= 41; ++pid) {
    batch.push_back(Event(pid, pid % 2 ? "exec" : "exit"));
    batch.back().command_line = std::vector<std::string>{"p" + std::to_string(pid)};
    expected += (expected.empty() ? "" : ",") + std::to_string(pid) + ":p" + std::to_string(pid);
  }
  ASSERT_EQ(*(*store)->WriteEvents(batch), 41);
  Database& db = (*store)->db();
  auto rows = db.QueryText(
      "SELECT group_concat(pid || ':' || command_text, ',') FROM "
      "(SELECT pid, command_text FROM process_events ORDER BY id)");
  ASSERT_TRUE(rows.ok() && *rows);
  EXPECT_EQ(**rows, expected);
  // A bad row inside a group of 16 leaves none of the batch behind.
  batch[20].event_type = "not-a-type";
  EXPECT_FALSE((*store)->WriteEvents(batch).ok());
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_events"), 41);
  batch[20].event_type = "exec";
  ASSERT_EQ(*(*store)->WriteEvents(batch), 41);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_events"), 82);
}

// Issue 16: process_events keeps its time and (pid, time) indexes but not
// the exe_path one, a random text key paid on every exec and exit row; the
// other indexes are partial: download-tool execs, and execs and forks by
// parent (migration 10, process trees), which exit rows stay out of.
TEST(StoreTest, EventsAreIndexedByTimeAndPidOnlyPlusThePartialIndexes) {
  TempDir dir;
  auto store = EventStore::Open(Rw(dir.File("events.db")));
  ASSERT_TRUE(store.ok()) << store.status().message();
  Database& db = (*store)->db();
  auto names = db.QueryText(
      "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'index'"
      " AND tbl_name = 'process_events' AND sql IS NOT NULL ORDER BY name)");
  ASSERT_TRUE(names.ok() && *names) << names.status().message();
  EXPECT_EQ(**names,
            "idx_process_events_download_tools,idx_process_events_parent,idx_process_events_pid,"
            "idx_process_events_time");
  // Only a download tool's exec gets an entry in the partial index.
  models::ProcessEvent curl = Event(20, "exec"), other = Event(21, "exec"), exit = Event(20, "exit");
  curl.name = "curl";
  other.name = "true";
  exit.name = "curl";
  ASSERT_TRUE((*store)->WriteEvents({curl, other, exit}).ok());
  EXPECT_EQ(Count(db,
                  "SELECT count(*) FROM process_events INDEXED BY idx_process_events_download_tools "
                  "WHERE event_time_ms > 0 AND event_type = 'exec' AND name IN ('curl', 'wget', 'fetch', "
                  "'aria2c', 'tftp', 'ftp', 'lwp-download')"),
            1);
  // Execs have an entry in the parent index, exits none.
  EXPECT_EQ(Count(db,
                  "SELECT count(*) FROM process_events INDEXED BY idx_process_events_parent "
                  "WHERE event_type IN ('exec', 'fork') AND ppid IS NULL"),
            2);
}

// Issue 17, case 3: a shell's fds 0-2 (ProcessRecord::stdio_key) change
// after its instance row: the snapshot shows the new platform_data from
// that scan on, the earlier scans keep the old one; an unwatched process's
// platform_data stays as first seen; a restarted collector writes one state
// row per watched process and none for the others.
TEST(StoreTest, AShellsStdioKeptCurrentReachesTheSnapshots) {
  TempDir dir;
  auto store_or = EventStore::Open(Rw(dir.File("e.db")));
  ASSERT_TRUE(store_or.ok());
  EventStore& store = **store_or;
  Database& db = store.db();
  auto shell = Proc(200, "bash");
  shell.platform_data = R"({"fds":{"0":{"type":"pipe","inode":1}}})";
  shell.stdio_key = 11;
  auto other = Proc(300, "sleep");
  other.platform_data = R"({"threads":1})";
  auto s1 = store.WriteScan(Scan(10'000, {shell, other}));
  ASSERT_TRUE(s1.ok()) << s1.status().ToString();

  shell.platform_data = R"({"fds":{"0":{"type":"socket","inode":7}}})";
  shell.stdio_key = 13;
  other.platform_data = R"({"threads":2})";  // not a kept-current field: not written
  auto s2 = store.WriteScan(Scan(20'000, {shell, other}));
  ASSERT_TRUE(s2.ok());
  const std::string fd0 = "SELECT json_extract(platform_data, '$.fds.\"0\".type') FROM ";
  EXPECT_EQ(*db.QueryText(fd0 + "processes WHERE pid=200"), "socket");
  EXPECT_EQ(*db.QueryText(fd0 + "process_snapshots WHERE pid=200 AND scan_id=" + std::to_string(*s1)),
            "pipe");
  EXPECT_EQ(Count(db, "SELECT json_extract(platform_data, '$.threads') FROM processes WHERE pid=300"), 1);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM process_instances"), 2) << "a moved fd is not an exec";

  // A later state change of the shell keeps the current platform_data.
  shell.cpu_percent = 50.0;
  auto s3 = store.WriteScan(Scan(30'000, {shell, other}));
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(*db.QueryText(fd0 + "processes WHERE pid=200"), "socket");

  store_or->reset();
  auto reopened = EventStore::Open(Rw(dir.File("e.db")));
  ASSERT_TRUE(reopened.ok());
  Database& db2 = (*reopened)->db();
  const int64_t states = Count(db2, "SELECT count(*) FROM process_states");
  shell.platform_data = R"({"fds":{"0":{"type":"socket","inode":8}}})";
  shell.stdio_key = 17;
  ASSERT_TRUE((*reopened)->WriteScan(Scan(40'000, {shell, other})).ok());
  EXPECT_EQ(Count(db2, "SELECT count(*) FROM process_states"), states + 1) << "one row, the shell's";
  EXPECT_EQ(
      Count(db2, "SELECT json_extract(platform_data, '$.fds.\"0\".inode') FROM processes WHERE pid=200"), 8);
}

TEST(StoreTest, WritableDirsAreReplacedAsAWhole) {
  TempDir dir;
  auto store_or = EventStore::Open(Rw(dir.File("e.db")));
  ASSERT_TRUE(store_or.ok());
  EventStore& store = **store_or;
  ASSERT_TRUE(store.ReplaceWritableDirs({{"/tmp", 01777, 0}, {"/run/lock", 01777, 0}}, 5).ok());
  ASSERT_TRUE(store.ReplaceWritableDirs({{"/srv/uploads", 0777, 33}}, 9).ok());
  Database& db = store.db();
  EXPECT_EQ(Count(db, "SELECT count(*) FROM writable_dirs"), 1);
  EXPECT_EQ(Count(db, "SELECT owner_uid FROM writable_dirs WHERE path = '/srv/uploads'"), 33);
  EXPECT_EQ(Count(db, "SELECT mode FROM writable_dirs"), 0777);
  EXPECT_EQ(Count(db, "SELECT found_at_ms FROM writable_dirs"), 9);
}

}  // namespace
}  // namespace sentinel::storage
