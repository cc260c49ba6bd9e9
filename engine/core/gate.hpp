#pragma once
// A scope for background work on one shard (Seastar's gate is the model).
// Work started in the background — a detached coroutine, a loop that
// outlives the call that began it — enters the gate first and leaves it
// when it ends. Shutdown closes the gate: nothing new may enter, and
// whoever awaits close() resumes when the last entry has left.
//
//   open ──close()──▶ closed, count() > 0 ──last leave()──▶ closed, empty
//                     (close()'s waiters resume here)
//
// GOOD: the entry lives in the coroutine's frame, as long as the work.
//   detached serve(gate::holder, link* l);
//   if (auto in = background.try_hold()) serve(std::move(*in), l);
// BAD: a detached coroutine that nobody counts; shutdown cannot tell
// whether it still runs, and destroys what it uses under it.
//   detached serve(link* l);

#include <coroutine>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <utility>

namespace troupe::internal {

/// Counts the background work running in one scope, refuses new work once
/// closed, and resumes who awaits close() when the last of it has ended.
///
/// Threads: shard-local. Every member is called, and close() is awaited,
/// on the one thread that owns the gate; nothing here is atomic.
/// Lifetime: the gate must outlive every holder and every pending close()
/// awaiter. Destroy it only once count() is zero: its owner checks that (a
/// holder left behind would leave a gate that no longer exists).
class gate {
 public:
  class holder;
  class closing;

  gate() = default;
  gate(const gate&) = delete;
  gate& operator=(const gate&) = delete;

  /// Counts one more entry; false, and nothing counted, once the gate is
  /// closed. Each true is matched by one leave().
  [[nodiscard]] bool try_enter() noexcept {
    if (closed_) return false;
    ++count_;
    return true;
  }
  /// As try_enter(), for work that cannot start after shutdown began:
  /// entering a closed gate throws std::logic_error.
  void enter() {
    if (!try_enter()) {
      throw std::logic_error("entering a closed troupe gate: its work is shutting down");
    }
  }
  /// Ends one entry (one per successful enter). When it was the last of a
  /// closed gate, every coroutine awaiting close() resumes here, inside
  /// this call, in the order they began to wait. Once it resumes the first,
  /// leave() touches the gate no more, so a waiter may destroy the gate; a
  /// waiter must not destroy another waiter that has yet to resume.
  void leave() noexcept;

  /// An entry held for as long as the returned object lives (move it into
  /// the coroutine frame of the work); empty once the gate is closed.
  [[nodiscard]] std::optional<holder> try_hold() noexcept;
  /// As try_hold(); throws std::logic_error when the gate is closed.
  [[nodiscard]] holder hold();

  /// Closes the gate at once, whether or not the result is awaited: from
  /// now on entries are refused. Awaiting the result waits until count()
  /// is zero (no suspension if it is already); it never throws. Closing a
  /// closed gate is allowed and only gives another awaitable. Work inside
  /// the gate must not await its close(): it would wait for itself.
  closing close() noexcept;

  bool is_closed() const noexcept { return closed_; }
  /// Entries that have not left yet.
  std::size_t count() const noexcept { return count_; }

 private:
  std::size_t count_ = 0;
  bool closed_ = false;
  closing* first_waiter_ = nullptr;  ///< awaiters of close(), oldest first
  closing* last_waiter_ = nullptr;
};

/// One entry into a gate, left when the holder is destroyed (or moved from
/// and the target destroyed). Move-only; same thread as its gate.
class gate::holder {
 public:
  holder(holder&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
  holder& operator=(holder&& other) noexcept {
    if (this != &other) {
      if (gate_) gate_->leave();
      gate_ = std::exchange(other.gate_, nullptr);
    }
    return *this;
  }
  holder(const holder&) = delete;
  holder& operator=(const holder&) = delete;
  ~holder() {
    if (gate_) gate_->leave();
  }

 private:
  friend class gate;
  /// Takes over an entry already counted in `g`.
  explicit holder(gate& g) noexcept : gate_(&g) {}
  gate* gate_;
};

/// What close() returns: awaiting it resumes the awaiting coroutine once
/// the gate is empty. It lives in the awaiting coroutine's frame, and the
/// gate links the waiting ones together (no allocation); a coroutine
/// destroyed while it waits leaves the list.
class gate::closing {
 public:
  closing(const closing&) = delete;
  closing& operator=(const closing&) = delete;
  ~closing() {
    if (!waiting_) return;
    closing* before = nullptr;
    for (closing* w = gate_->first_waiter_; w; before = w, w = w->next_) {
      if (w != this) continue;
      (before ? before->next_ : gate_->first_waiter_) = next_;
      if (gate_->last_waiter_ == this) gate_->last_waiter_ = before;
      return;
    }
  }

  bool await_ready() const noexcept { return gate_->count_ == 0; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    waiter_ = h;
    waiting_ = true;
    if (gate_->last_waiter_) {
      gate_->last_waiter_->next_ = this;
    } else {
      gate_->first_waiter_ = this;
    }
    gate_->last_waiter_ = this;
  }
  void await_resume() const noexcept {}

 private:
  friend class gate;
  explicit closing(gate& g) noexcept : gate_(&g) {}
  gate* gate_;
  std::coroutine_handle<> waiter_;
  closing* next_ = nullptr;
  bool waiting_ = false;  ///< linked into gate_'s list
};

inline void gate::leave() noexcept {
  if (--count_ > 0 || !closed_) return;
  closing* w = std::exchange(first_waiter_, nullptr);
  last_waiter_ = nullptr;
  while (w) {
    closing* next = w->next_;  // read first: resuming may end w's frame
    w->waiting_ = false;
    w->waiter_.resume();
    w = next;
  }
}

inline std::optional<gate::holder> gate::try_hold() noexcept {
  if (!try_enter()) return std::nullopt;
  return holder(*this);
}

inline gate::holder gate::hold() {
  enter();
  return holder(*this);
}

inline gate::closing gate::close() noexcept {
  closed_ = true;
  return closing(*this);
}

}  // namespace troupe::internal
