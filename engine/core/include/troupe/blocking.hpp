#pragma once
// Blocking work (file I/O, dlopen, a call into a blocking library, an
// outside ask of this engine) for a coroutine handler that must not hold up
// its shard: it runs on the engine's pool of blocking threads while the
// shard runs its other actors, and its end wakes the shard (no polling).

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "troupe/internal/runtime.hpp"
#include "troupe/task.hpp"

namespace troupe {

namespace internal {

template <class F, class R>
class blocking_call final : public blocking_job {
 public:
  explicit blocking_call(F&& f) : f_(std::move(f)) {}
  blocking_call(const blocking_call&) = delete;
  blocking_call& operator=(const blocking_call&) = delete;
  ~blocking_call() = default;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    waiter = h;
    return submit_blocking(*this_shard, *this);
  }
  R await_resume() {
    if (failure_) std::rethrow_exception(failure_);
    if constexpr (!std::is_void_v<R>) return std::move(*value_);
  }

 private:
  void run() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        (*f_)();
      } else {
        value_.emplace((*f_)());
      }
    } catch (...) {
      failure_ = std::current_exception();
    }
    // Destroyed here, on the pool thread, whatever it holds.
    try {
      f_.reset();
    } catch (...) {
      if (!failure_) failure_ = std::current_exception();
    }
  }
  struct nothing {};
  std::optional<F> f_;
  std::optional<std::conditional_t<std::is_void_v<R>, nothing, R>> value_;
  std::exception_ptr failure_;
};

template <class F>
task<std::invoke_result_t<F&>> run_blocking_here(F f) {
  blocking_call<F, std::invoke_result_t<F&>> call(std::move(f));
  co_return co_await call;
}

}  // namespace internal

/// Runs `f()` on one of the engine's threads for blocking work; the
/// returned task completes, on the calling shard's thread, with what `f`
/// returned, or rethrows what it threw. Meanwhile the awaiting actor takes
/// no other message and its shard runs the other actors.
///
/// Thread: only from a coroutine handler on a shard's thread (where `co_await`
/// can suspend it); anywhere else it throws std::logic_error at the call.
///
/// Ownership: `f` is moved into the task; once awaited it is moved to a pool
/// thread, called there once and destroyed there before the task completes.
/// If the task is never awaited, or its job is refused, `f` is destroyed on
/// the shard with the task. `f` may block, also on this engine (the pool
/// threads are not shards: troupe::system's ask works there).
///
/// The task: lazy; awaiting it queues the job. The pool has a fixed number
/// of threads (4) started on first use and a queue of at most 1024 waiting
/// jobs: when it is full the await throws std::runtime_error naming that
/// limit (it neither blocks nor starts a thread more), and once the engine
/// stops it throws std::logic_error. system::stop() waits for the jobs that
/// run, and joins the threads after the shards stop. In inline mode
/// (system_options::inline_mode) `f` runs on the engine's one thread, when
/// awaited.
///
/// F: a callable taking no arguments, move-constructible, returning a value
/// type or void (not a reference). Pass a named lambda, moved (GCC 12 and
/// temporaries across co_await: see actor_base::ask).
template <class F>
[[nodiscard]] task<std::invoke_result_t<F&>> run_blocking(F f) {
  static_assert(std::is_invocable_v<F&>,
                "troupe::run_blocking takes a callable with no arguments: [..] { return ...; }");
  static_assert(std::is_move_constructible_v<F>,
                "troupe::run_blocking moves its callable to a pool thread: it must be movable");
  static_assert(!std::is_reference_v<std::invoke_result_t<F&>>,
                "troupe::run_blocking's callable must return a value (or void), not a reference: "
                "the reference would outlive its thread's call");
  if (!internal::this_shard) {
    throw std::logic_error(
        "troupe::run_blocking is for a coroutine handler on a shard's thread "
        "(co_await run_blocking(f)); from another thread, call f there");
  }
  return internal::run_blocking_here(std::move(f));
}

}  // namespace troupe
