#pragma once
// Test helper: waiting, bounded, for what another process or thread makes
// true. For multi-process and multi-threaded tests only: an actor test on
// one engine needs no waiting, troupe/testing.hpp runs it message by
// message on virtual time.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string_view>
#include <thread>

namespace troupe::test {

/// Polls `pred` until it returns true or `timeout` has passed, sleeping
/// 1ms, 2ms, 4ms... up to 50ms between tries (never past the deadline),
/// and tries once more at the deadline. Returns true as soon as it holds.
/// When time is up, fails the test case with `what` and the time waited
/// (Catch2's FAIL_CHECK: the test goes on) and returns false, so that
/// `REQUIRE(eventually(...))` stops there and `CHECK(eventually(...))`
/// does not. `what` says what should have become true ("engine 5 is a
/// member").
///
/// Call it from the test case's thread: Catch2's assertions are not
/// thread-safe. `pred` is called on this thread and not kept.
template <class Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds timeout, std::string_view what) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto end = start + timeout;
  std::chrono::milliseconds pause{1};
  while (clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(
        std::min<clock::duration>(pause, std::max<clock::duration>(end - clock::now(), {})));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  if (pred()) return true;
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start).count();
  FAIL_CHECK("not true after " << waited << "ms: " << what);
  return false;
}

}  // namespace troupe::test
