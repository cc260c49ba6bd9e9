#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "troupe/internal/pool.hpp"

namespace troupe {

namespace internal {

/// Coroutine frames come from the pool: no malloc per call.
struct pooled_frame {
  static void* operator new(std::size_t size) { return pool_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { pool_deallocate(p, size); }
};

template <class T>
struct task_result {
  std::optional<T> value;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() { return std::move(*value); }
};
template <>
struct task_result<void> {
  void return_void() noexcept {}
  void take() noexcept {}
};

}  // namespace internal

/// A coroutine that yields one T: lazy (starts when awaited), move-only.
///
/// Threads: created, awaited and destroyed on one shard's thread.
/// Lifetime: the frame lives until the task object is destroyed; awaiting
/// it runs it to completion and returns its value or rethrows its exception.
/// Parameters are copied into the frame; a reference parameter must outlive
/// the task. As an actor handler's return type, the engine keeps the message
/// alive until the task completes, so `const Msg&` parameters are safe.
/// T: void or a move-constructible type.
template <class T = void>
class [[nodiscard]] task {
 public:
  struct promise_type : internal::pooled_frame, internal::task_result<T> {
    std::coroutine_handle<> continuation = std::noop_coroutine();
    std::exception_ptr failure;

    task get_return_object() noexcept {
      return task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;  // symmetric transfer: no stack growth
      }
      void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { failure = std::current_exception(); }
  };

  task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  struct awaiter {
    std::coroutine_handle<promise_type> h;
    bool await_ready() const noexcept { return !h || h.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
      h.promise().continuation = caller;
      return h;
    }
    T await_resume() {
      if (h.promise().failure) std::rethrow_exception(h.promise().failure);
      return h.promise().take();
    }
  };
  awaiter operator co_await() && noexcept { return awaiter{h_}; }

 private:
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

/// The spelling DESIGN.md uses.
template <class T = void>
using Task = task<T>;

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

}  // namespace troupe
