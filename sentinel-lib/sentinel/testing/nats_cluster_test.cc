#include "sentinel/testing/nats_cluster.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace sentinel::testing {
namespace {

TEST(NatsClusterTest, ThreeNodesElectAMetaLeaderAndSurviveAKilledNode) {
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  auto cluster = NatsCluster::Start(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  NatsCluster& c = **cluster;
  EXPECT_EQ(c.size(), 3);
  EXPECT_EQ(c.urls().size(), 3u);
  const std::string leader = c.MetaLeader();
  EXPECT_TRUE(leader == "n1" || leader == "n2" || leader == "n3") << leader;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(c.running(i));
    EXPECT_EQ(::getpgid(c.pid(i)), c.pid(i)) << "node " << i << " must lead its own process group";
  }
  // Killing the leader: the other two elect a new one; the killed node comes back.
  const int leader_index = leader[1] - '1';
  ASSERT_TRUE(c.Kill(leader_index).ok());
  EXPECT_FALSE(c.running(leader_index));
  ASSERT_TRUE(c.WaitForMetaLeader(20000).ok());
  if (auto restarted = c.Restart(leader_index); !restarted.ok()) FAIL() << restarted.ToString();
  EXPECT_TRUE(c.running(leader_index));
  const pid_t pid = c.pid(0);
  c.StopAll();
  EXPECT_NE(::kill(pid, 0), 0) << "a stopped node's process is gone";
}

TEST(NatsClusterTest, SingleServerIsHealthyAlone) {
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  auto cluster = NatsCluster::Start(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  EXPECT_EQ((*cluster)->size(), 1);
  EXPECT_TRUE((*cluster)->WaitForMetaLeader(5000).ok());
}

TEST(NatsClusterTest, BadConfigurationFailsWithTheServersLog) {
  if (auto why = NatsCluster::SkipReason()) GTEST_SKIP() << *why;
  auto cluster = NatsCluster::Start(1, "this is { not a valid", 5000);
  ASSERT_FALSE(cluster.ok());
  EXPECT_NE(cluster.status().message().find("n1"), std::string::npos) << cluster.status().message();
}

}  // namespace
}  // namespace sentinel::testing
