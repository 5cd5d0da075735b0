// sentinelagent_test's main: the rule scheduler runs rules in query workers,
// which re-execute this binary (sentinel/detection/query_worker.h).
#include <gtest/gtest.h>

#include "sentinel/detection/query_worker.h"

int main(int argc, char** argv) {
  if (auto worker = sentinel::detection::RunQueryWorkerIfRequested(argc, argv)) return *worker;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
