#pragma once
// Test helper: waiting, bounded, for what another thread or process makes
// true.

#include <chrono>
#include <thread>

namespace troupe::test {

/// Polls `pred` every `every` until it holds or `limit` has passed; its
/// last answer (asked once more at the end).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(every);
  }
  return pred();
}

}  // namespace troupe::test
