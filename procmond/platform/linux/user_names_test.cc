#include "procmond/platform/linux/user_names.h"

#include <unistd.h>

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

// A name service the test edits, a password file it rewrites and a clock it
// moves: what `userdel` + `useradd` reusing a uid look like to the cache.
struct Accounts {
  testing::TempDir dir;
  std::string passwd = dir.File("passwd");
  std::map<int64_t, std::string> names;
  int64_t now_ms = 1000;
  int lookups = 0;
  UserNames Cache() {
    return UserNames(
        [this](int64_t uid) -> std::optional<std::string> {
          ++lookups;
          auto it = names.find(uid);
          if (it == names.end()) return std::nullopt;
          return it->second;
        },
        passwd, [this] { return now_ms; });
  }
  // Rewritten the way useradd does: a new file renamed over the old one.
  void Rewrite(const std::string& text) {
    testing::WriteFile(passwd + ".new", text);
    ASSERT_EQ(::rename((passwd + ".new").c_str(), passwd.c_str()), 0);
  }
};

TEST(UserNamesTest, CachesAndLooksUpOnlyOncePerUid) {
  Accounts acc;
  acc.Rewrite("alice:x:1001:1001::/home/alice:/bin/sh\n");
  acc.names = {{1001, "alice"}};
  UserNames cache = acc.Cache();
  const std::optional<std::string>* a = cache.Find(1001);
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ(**a, "alice");
  EXPECT_EQ(cache.Find(1001), a);
  EXPECT_FALSE(cache.Find(4242)->has_value());
  EXPECT_FALSE(cache.Find(4242)->has_value());
  EXPECT_EQ(acc.lookups, 2);
  // Time passes, the file does not change: nothing is looked up again.
  acc.now_ms += 60000;
  EXPECT_EQ(**cache.Find(1001), "alice");
  EXPECT_EQ(acc.lookups, 2);
  EXPECT_EQ(cache.refreshes(), 0);
}

TEST(UserNamesTest, AReusedUidGetsItsNewNameOnceThePasswordFileChanges) {
  Accounts acc;
  acc.Rewrite("spark:x:998:998::/nonexistent:/usr/sbin/nologin\n");
  acc.names = {{998, "spark"}, {1001, "alice"}};
  UserNames cache = acc.Cache();
  const std::optional<std::string>* held = cache.Find(998);  // a scan's process keeps this
  EXPECT_EQ(**held, "spark");
  EXPECT_EQ(**cache.Find(1001), "alice");

  // userdel spark; useradd --system sentinel-sigma, given uid 998.
  acc.names.erase(998);
  acc.names[998] = "sentinel-sigma";
  acc.Rewrite("sentinel-sigma:x:998:998::/nonexistent:/usr/sbin/nologin\n");
  // Within the second after the last look at the file: the old name still.
  acc.now_ms += 500;
  EXPECT_EQ(**cache.Find(998), "spark");
  // Then the change is seen, every cached uid looked up again, in place.
  acc.now_ms += 600;
  EXPECT_EQ(**cache.Find(998), "sentinel-sigma");
  EXPECT_EQ(**held, "sentinel-sigma");
  EXPECT_EQ(**cache.Find(1001), "alice");
  EXPECT_EQ(cache.refreshes(), 1);

  // An account removed: no name, not the last one.
  acc.names.erase(1001);
  acc.Rewrite("sentinel-sigma:x:998:998::/nonexistent:/usr/sbin/nologin\n\n");
  acc.now_ms += 1000;
  EXPECT_FALSE(cache.Find(1001)->has_value());
  EXPECT_EQ(cache.refreshes(), 2);
}

TEST(UserNamesTest, APasswordFileThatAppearsOrGoesCountsAsAChange) {
  Accounts acc;  // no file yet
  acc.names = {{1001, "alice"}};
  UserNames cache = acc.Cache();
  EXPECT_EQ(**cache.Find(1001), "alice");
  acc.names[1001] = "bob";
  acc.Rewrite("bob:x:1001:1001::/home/bob:/bin/sh\n");
  acc.now_ms += 1000;
  EXPECT_EQ(**cache.Find(1001), "bob");
  acc.names[1001] = "carol";
  ASSERT_EQ(::unlink(acc.passwd.c_str()), 0);
  acc.now_ms += 1000;
  EXPECT_EQ(**cache.Find(1001), "carol");
}

// A directory account (LDAP, sssd) renamed or reassigned leaves /etc/passwd
// alone: the cached names are looked up again every 10 minutes anyway.
TEST(UserNamesTest, NamesFromADirectoryAreLookedUpAgainEveryTenMinutes) {
  Accounts acc;
  acc.Rewrite("root:x:0:0::/root:/bin/sh\n");
  acc.names = {{50001, "jdoe"}};
  UserNames cache = acc.Cache();
  const std::optional<std::string>* held = cache.Find(50001);
  EXPECT_EQ(**held, "jdoe");
  EXPECT_FALSE(cache.Find(50002)->has_value());  // not in the directory yet
  acc.names[50001] = "contractor7";
  acc.names[50002] = "asmith";
  acc.now_ms += 9 * 60 * 1000;
  EXPECT_EQ(**cache.Find(50001), "jdoe");
  EXPECT_EQ(cache.refreshes(), 0);
  acc.now_ms += 60 * 1000;
  EXPECT_EQ(**cache.Find(50001), "contractor7");
  EXPECT_EQ(**held, "contractor7");
  EXPECT_EQ(**cache.Find(50002), "asmith");
  EXPECT_EQ(cache.refreshes(), 1);
  // And not again before another 10 minutes.
  const int lookups = acc.lookups;
  acc.now_ms += 5 * 60 * 1000;
  cache.Find(50001);
  EXPECT_EQ(acc.lookups, lookups);
}

// The defaults: the host's own name service and /etc/passwd.
TEST(UserNamesTest, HostDefaultsNameRoot) {
  UserNames cache;
  const std::optional<std::string>* root = cache.Find(0);
  ASSERT_TRUE(root->has_value());
  EXPECT_EQ(**root, "root");
}

}  // namespace
}  // namespace sentinel::procmond
