#pragma once
// Blocking work (file I/O, dlopen, an outside ask) for a coroutine handler
// that must not hold up its shard: it runs on a thread of its own while
// the handler polls for its end and the shard runs on meanwhile.

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>

#include "troupe/actor.hpp"
#include "troupe/task.hpp"

namespace troupe::internal {

/// Runs `f` on a new thread; the task completes with what it returns, or
/// rethrows what it throws. `f` is moved to that thread and kept until it
/// returns; it may block, also on this engine (it is not on a shard).
/// Only from a coroutine handler, on a shard's thread. Pass a named
/// lambda, moved (GCC 12 and temporaries across co_await: see
/// actor_base::ask).
template <class F>
task<std::invoke_result_t<F&>> off_shard(F f) {
  using R = std::invoke_result_t<F&>;
  struct state {
    std::atomic<bool> done{false};
    std::optional<R> value;
    std::exception_ptr failure;
  };
  auto st = std::make_shared<state>();
  std::thread([st, f = std::move(f)]() mutable {
    try {
      st->value.emplace(f());
    } catch (...) {
      st->failure = std::current_exception();
    }
    st->done.store(true, std::memory_order_release);
  }).detach();
  while (!st->done.load(std::memory_order_acquire)) {
    co_await sleep_for{std::chrono::milliseconds(2)};
  }
  if (st->failure) std::rethrow_exception(st->failure);
  co_return std::move(*st->value);
}

}  // namespace troupe::internal
