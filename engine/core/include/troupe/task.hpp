#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
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

/// One sentence for each kind of T a task cannot carry; only the first
/// that applies is reported.
template <class T>
constexpr bool check_task_value() {
  if constexpr (std::is_lvalue_reference_v<T>) {
    static_assert(!std::is_lvalue_reference_v<T>,
                  "troupe::task<T&>: a task cannot return a reference (the referred-to object "
                  "may not outlive the coroutine frame); return a value or a pointer.");
  } else if constexpr (std::is_rvalue_reference_v<T>) {
    static_assert(!std::is_rvalue_reference_v<T>,
                  "troupe::task<T&&>: a task cannot return an rvalue reference (it would "
                  "refer into a destroyed coroutine frame); return T by value.");
  } else if constexpr (std::is_array_v<T>) {
    static_assert(!std::is_array_v<T>,
                  "troupe::task<T[N]>: a task cannot return a C array; return a std::array "
                  "or a std::vector.");
  } else if constexpr (std::is_function_v<T>) {
    static_assert(!std::is_function_v<T>,
                  "troupe::task<F>: a task cannot return a function type; return a function "
                  "pointer or a callable object.");
  } else if constexpr (std::is_const_v<T> || std::is_volatile_v<T>) {
    static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>,
                  "troupe::task<const T>: a task's value type cannot be const or volatile "
                  "(its result is moved to the awaiter); return T without qualifiers.");
  } else if constexpr (!std::is_void_v<T>) {
    static_assert(std::is_move_constructible_v<T>,
                  "troupe::task<T>: T must be move-constructible, since the awaiter moves "
                  "the result out of the coroutine frame.");
  }
  return true;
}

/// What awaiting an empty task throws into the awaiting coroutine.
[[noreturn]] inline void throw_empty_task() {
  throw std::logic_error("co_await on an empty troupe::task: it was moved from or already awaited");
}

}  // namespace internal

/// A coroutine that yields one T: lazy (starts when awaited), move-only,
/// awaited at most once.
///
/// Threads: created, awaited and destroyed on one shard's thread.
/// Lifetime: `co_await std::move(t)` takes the coroutine out of `t` (which
/// is empty from then on), runs it to completion and returns its value or
/// rethrows its exception; the frame is destroyed once the result is taken,
/// at the end of the co_await expression. A task never awaited destroys its
/// frame, unstarted, with the task object. Awaiting an empty task (moved
/// from, or awaited already) throws std::logic_error into the awaiting
/// coroutine. Parameters are copied into the frame; a reference parameter
/// must outlive the task. As an actor handler's return type, the engine
/// keeps the message alive until the task completes, so `const Msg&`
/// parameters are safe.
/// T: void or a move-constructible object type, neither const nor volatile;
/// references, arrays and function types are refused at compile time.
template <class T = void>
class [[nodiscard]] task {
  static_assert(internal::check_task_value<T>());

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

  /// Owns the coroutine taken out of the task for one co_await: starts it,
  /// and destroys its frame when the co_await expression ends.
  class awaiter {
   public:
    explicit awaiter(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    ~awaiter() {
      if (h_) h_.destroy();
    }
    // An empty task does not suspend: await_resume reports it.
    bool await_ready() const noexcept { return !h_; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
      h_.promise().continuation = caller;
      return h_;
    }
    T await_resume() {
      if (!h_) internal::throw_empty_task();
      if (h_.promise().failure) std::rethrow_exception(h_.promise().failure);
      return h_.promise().take();
    }

   private:
    std::coroutine_handle<promise_type> h_;
  };
  /// Consumes the task: it is empty once this returns.
  awaiter operator co_await() && noexcept { return awaiter(std::exchange(h_, {})); }

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
