#include "procmond/platform/linux/read_plan.h"

#include <gtest/gtest.h>

namespace sentinel::procmond {
namespace {

// A process seen from /proc on scan `scan`, its instance last fully read on
// scan 1 and unchanged since (same comm, signature and owner).
ReadInputs Known(uint64_t scan) {
  ReadInputs in;
  in.pid = 100;
  in.now.comm = in.last.comm = "app";
  in.now.exec_sig = in.last.exec_sig = 7;
  in.now.owner_known = in.last.owner_known = true;
  in.now.owner_uid = in.last.owner_uid = 1000;
  in.now.owner_gid = in.last.owner_gid = 1000;
  in.fresh = false;
  in.last_full_scan = 1;
  in.scan = scan;
  in.refresh_every = 20;
  in.exe_every = 0;
  return in;
}

ReadPlan Plan(const ReadInputs& in, bool link_differs = false) {
  ReadPlan plan = PlanExeLink(in);
  PlanReads(in, link_differs, &plan);
  return plan;
}

TEST(ReadPlanTest, FirstSightReadsEverything) {
  ReadInputs in = Known(2);
  in.fresh = true;
  ReadPlan plan = Plan(in);
  EXPECT_TRUE(plan.exe_link_first);
  EXPECT_TRUE(plan.full);
  EXPECT_TRUE(plan.status);
  EXPECT_FALSE(plan.exec);
  EXPECT_FALSE(plan.refresh);
}

TEST(ReadPlanTest, UnchangedInstanceReadsNothingMore) {
  ReadPlan plan = Plan(Known(2));
  EXPECT_FALSE(plan.exe_link);
  EXPECT_FALSE(plan.full);
  EXPECT_FALSE(plan.status);
  EXPECT_FALSE(plan.owner_change);
}

TEST(ReadPlanTest, MovedSignatureReadsTheLinkAndBothShownIsAnExec) {
  ReadInputs in = Known(2);
  in.now.exec_sig = 8;
  ReadPlan plan = Plan(in);
  EXPECT_TRUE(plan.sig_moved);
  EXPECT_TRUE(plan.exe_link_first);
  EXPECT_TRUE(plan.exec);
  EXPECT_TRUE(plan.full);
  // To or from 0 (not shown) is a change of access: the link decides.
  in.now.exec_sig = 0;
  EXPECT_FALSE(Plan(in).exec);
  EXPECT_TRUE(Plan(in, /*link_differs=*/true).exec);
}

TEST(ReadPlanTest, ZombieNeitherExecsNorRefreshes) {
  ReadInputs in = Known(40);  // the refresh would be due (see RefreshIsSpreadByPid)
  in.dead = true;
  in.now.exec_sig = 0;  // a zombie's signature reads 0
  ReadPlan plan = Plan(in, /*link_differs=*/true);
  EXPECT_FALSE(plan.sig_moved);
  EXPECT_FALSE(plan.exec);
  EXPECT_FALSE(plan.refresh);
}

TEST(ReadPlanTest, RefreshIsSpreadByPid) {
  // pid 100 % 20 == 0: due on scans 40, 60, ... once 20 scans passed.
  ReadInputs in = Known(40);
  EXPECT_TRUE(Plan(in).refresh);
  EXPECT_TRUE(Plan(in).full);
  in.scan = 41;
  EXPECT_FALSE(Plan(in).refresh);
  in.scan = 20;  // only 19 scans since the full read on scan 1
  EXPECT_FALSE(Plan(in).refresh);
  in.scan = 40;
  in.kernel_thread = true;
  EXPECT_FALSE(Plan(in).refresh);
}

TEST(ReadPlanTest, StaggeredExeReadFromProcOnly) {
  ReadInputs in = Known(2);
  in.exe_every = 3;  // (100 + 2) % 3 == 0
  EXPECT_TRUE(Plan(in).exe_link_first);
  in.scan = 3;
  EXPECT_FALSE(Plan(in).exe_link_first);
  in.exe_every = 1;
  EXPECT_TRUE(Plan(in).exe_link_first);
  in.now.from_kernel = in.last.from_kernel = true;
  EXPECT_FALSE(Plan(in).exe_link_first);
  // A different link read on the staggered read is an exec.
  in.now.from_kernel = in.last.from_kernel = false;
  EXPECT_TRUE(Plan(in, /*link_differs=*/true).exec);
}

TEST(ReadPlanTest, OwnerChangeRereadsStatusAndIsCountedBetweenKnownOwners) {
  ReadInputs in = Known(2);
  in.now.owner_uid = 0;
  ReadPlan plan = Plan(in);
  EXPECT_TRUE(plan.status);
  EXPECT_TRUE(plan.owner_change);
  EXPECT_FALSE(plan.full);
  in.now.owner_uid = 1000;
  in.now.owner_known = false;  // could not stat /proc/PID: status every scan, not counted
  plan = Plan(in);
  EXPECT_TRUE(plan.status);
  EXPECT_FALSE(plan.owner_change);
}

TEST(ReadPlanTest, KernelSampleNeedsNoStatusAndItsExeKeyMoves) {
  ReadInputs in = Known(2);
  in.now.from_kernel = in.last.from_kernel = true;
  in.now.owner_known = in.last.owner_known = false;
  in.now.exe_key = in.last.exe_key = 6;
  EXPECT_FALSE(Plan(in).status);
  EXPECT_FALSE(Plan(in).exe_link);
  in.now.exe_key = 7;  // unlinked
  ReadPlan plan = Plan(in);
  EXPECT_TRUE(plan.exe_moved);
  EXPECT_TRUE(plan.exe_link_first);
  EXPECT_FALSE(plan.status);
}

TEST(ReadPlanTest, SwitchingWaysComparesOnlyTheLink) {
  ReadInputs in = Known(2);
  in.last.from_kernel = true;
  in.now.exec_sig = 99;  // /proc's signature against the kernel's counter: not comparable
  ReadPlan plan = Plan(in);
  EXPECT_TRUE(plan.way_changed);
  EXPECT_FALSE(plan.sig_moved);
  EXPECT_TRUE(plan.exe_link_first);
  EXPECT_FALSE(plan.exec);
  EXPECT_TRUE(Plan(in, /*link_differs=*/true).exec);
}

}  // namespace
}  // namespace sentinel::procmond
