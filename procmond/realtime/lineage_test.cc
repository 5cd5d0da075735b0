#include "procmond/realtime/lineage.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace sentinel::procmond {
namespace {

// A /proc stand-in that says which pids were asked for.
struct FakeProc {
  std::map<int64_t, int64_t> ruids;
  std::vector<int64_t> asked;
  Lineage::RuidReader reader() {
    return [this](int64_t pid) -> std::optional<int64_t> {
      asked.push_back(pid);
      auto it = ruids.find(pid);
      if (it == ruids.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(LineageTest, AChildTakesItsParentsRealUidAndTheParentIsReadOnce) {
  FakeProc proc;
  proc.ruids[100] = 1000;
  Lineage l(proc.reader());
  l.OnFork(200, 100);
  l.OnFork(201, 100);
  l.OnFork(300, 200);  // a grandchild: known without reading /proc
  EXPECT_EQ(l.Ruid(200), 1000);
  EXPECT_EQ(l.Ruid(201), 1000);
  EXPECT_EQ(l.Ruid(300), 1000);
  EXPECT_EQ(l.Parent(300), 200);
  EXPECT_EQ(proc.asked, (std::vector<int64_t>{100}));
}

TEST(LineageTest, ASetuidBeforeExecIsWhatTheExecGets) {
  FakeProc proc;
  proc.ruids[1] = 0;
  Lineage l(proc.reader());
  l.OnFork(50, 1);    // sudo's child ...
  l.OnUid(50, 1001);  // ... drops to the target user, then execs
  EXPECT_EQ(l.Ruid(50), 1001);
  l.OnFork(51, 50);
  EXPECT_EQ(l.Ruid(51), 1001);
  EXPECT_EQ(l.Ruid(1), 0) << "the parent's own uid is untouched";
}

TEST(LineageTest, AnExecReadFromProcCorrectsWhatWasInherited) {
  FakeProc proc;
  proc.ruids[10] = 5;
  Lineage l(proc.reader());
  l.OnFork(11, 10);
  l.OnExecRead(11, 7);
  EXPECT_EQ(l.Ruid(11), 7);
}

TEST(LineageTest, AParentThatCannotBeReadLeavesTheUidUnknown) {
  FakeProc proc;  // pid 10 already gone
  Lineage l(proc.reader());
  l.OnFork(11, 10);
  EXPECT_FALSE(l.Ruid(11).has_value());
  EXPECT_EQ(l.Parent(11), 10);
  // An unreadable parent is asked again at its next fork: it may be readable now.
  proc.ruids[10] = 3;
  l.OnFork(12, 10);
  EXPECT_EQ(l.Ruid(12), 3);
}

TEST(LineageTest, AnExitForgetsThePidAndReturnsItsParent) {
  FakeProc proc;
  proc.ruids[10] = 0;
  Lineage l(proc.reader());
  l.OnFork(11, 10);
  EXPECT_EQ(l.OnExit(11), 10);
  EXPECT_FALSE(l.Parent(11).has_value());
  EXPECT_FALSE(l.Ruid(11).has_value());
  EXPECT_FALSE(l.OnExit(11).has_value());
  // A process seen only as a parent has no parent to give.
  EXPECT_FALSE(l.OnExit(10).has_value());
  EXPECT_EQ(l.size(), 0u);
}

TEST(LineageTest, LostEventsMakeEveryUidUnknownUntilReadAgain) {
  FakeProc proc;
  proc.ruids[10] = 0;
  Lineage l(proc.reader());
  l.OnFork(11, 10);
  l.OnLoss();  // a setuid of 11 may have been lost
  EXPECT_FALSE(l.Ruid(11).has_value());
  EXPECT_EQ(l.Parent(11), 10);
  proc.ruids[11] = 42;
  l.OnFork(12, 11);  // read again from /proc
  EXPECT_EQ(l.Ruid(12), 42);
}

TEST(LineageTest, StaysBounded) {
  FakeProc proc;
  Lineage l(proc.reader(), 100);
  for (int64_t pid = 1000; pid < 1500; ++pid) l.OnUid(pid, 1);
  EXPECT_LE(l.size(), 100u);
  EXPECT_EQ(l.Ruid(1499), 1);
}

}  // namespace
}  // namespace sentinel::procmond
