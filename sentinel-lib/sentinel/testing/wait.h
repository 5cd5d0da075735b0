// Waiting in tests for something another thread or process does: poll the condition with a
// deadline (a guard against hanging, never a timing assertion). Prefer an event (a condition
// variable, a pipe, testing::FakeClock::AwaitWaiters) where the code offers one.
#pragma once

#include <chrono>
#include <thread>

namespace sentinel::testing {

// Checks `pred` every `every` until it holds (true) or `timeout` has passed (false; `pred` is
// checked once more at the deadline).
template <class Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout,
             std::chrono::milliseconds every = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(every);
  }
  return pred();
}

}  // namespace sentinel::testing
