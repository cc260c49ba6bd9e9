#pragma once
// The reactor: one per thread. It owns an io_uring ring (or, where io_uring
// cannot be set up, an epoll instance), an eventfd that other threads use to
// wake it, and a heap of timers whose waiters are coroutines.
//
// io/ knows nothing of actors: what it resumes is a std::coroutine_handle<>.

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/socket.h>

namespace troupe::io {

using clock = std::chrono::steady_clock;

/// Which kernel interface a reactor sits on.
enum class backend { uring, epoll };

/// What the caller asks for: io_uring if possible else epoll (auto), or one
/// of them strictly.
enum class backend_choice { automatic, uring, epoll };

/// Parses "auto", "uring" or "epoll". Returns nullopt for anything else.
std::optional<backend_choice> parse_backend_choice(std::string_view text);

const char* to_string(backend b);

/// What the kernel offers, found by trying (never by kernel version).
struct probe_result {
  bool uring_available = false;
  /// When unavailable: what failed, and what the operator can do about it.
  std::string failure;
  bool single_issuer = false;  ///< IORING_SETUP_SINGLE_ISSUER accepted
  bool defer_taskrun = false;  ///< IORING_SETUP_DEFER_TASKRUN accepted
  bool coop_taskrun = false;   ///< IORING_SETUP_COOP_TASKRUN accepted
  bool ext_arg = false;        ///< IORING_FEAT_EXT_ARG: waits with a timeout need no SQE
  bool msg_ring = false;       ///< IORING_OP_MSG_RING supported

  /// One line for logs: "io_uring (single_issuer defer_taskrun ...)".
  std::string describe() const;
};

/// Sets up a throwaway ring to learn what the kernel offers. Any thread.
probe_result probe();

/// Thrown when the chosen backend cannot be set up; what() says what failed
/// and what to do.
class setup_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Turns an io_uring_setup errno into an explanation with a remedy.
std::string explain_uring_failure(int err);

class reactor_backend;
class reactor;

enum class op_kind : std::uint8_t { accept, connect, recv, send };

/// One socket operation on a reactor, awaitable from a coroutine: it
/// resumes with the result, >= 0 (a descriptor, a byte count, 0) or
/// -errno. The object must stay where it is until then (a coroutine's
/// awaiter does). At most one reading (accept, recv) and one writing
/// (connect, send) operation per descriptor at a time.
struct op {
  reactor* owner = nullptr;
  op_kind kind = op_kind::recv;
  int fd = -1;
  void* buf = nullptr;
  std::size_t len = 0;
  const sockaddr* addr = nullptr;  ///< connect
  socklen_t addrlen = 0;
  int result = 0;
  bool started = false;  ///< epoll connect: in progress
  std::coroutine_handle<> waiter;

  bool await_ready() const noexcept { return owner == nullptr; }
  /// False (no suspension) when it completed at once.
  bool await_suspend(std::coroutine_handle<> h);
  int await_resume() const noexcept { return result; }
};

/// One thread's event loop core.
///
/// Threads: construct, `run_once` and the timer awaitables on the owning
/// thread only (the ring is set up SINGLE_ISSUER). `wake` from any thread.
/// Lifetime: must outlive every coroutine suspended on one of its timers;
/// destroying it with timers pending leaves those coroutines suspended (their
/// owner destroys them).
class reactor {
 public:
  /// Throws setup_error when `choice` is strict and cannot be met. With
  /// `automatic`, a failing io_uring is reported through `fallback_reason()`
  /// and epoll is used.
  explicit reactor(backend_choice choice = backend_choice::automatic);
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  backend kind() const noexcept;
  /// Empty unless `automatic` fell back to epoll; then why.
  const std::string& fallback_reason() const noexcept { return fallback_reason_; }

  /// Wakes a thread blocked in run_once. Any thread; async-signal-safe.
  void wake() noexcept;

  /// Reaps completions and resumes due timers. If `block` and nothing was
  /// ready, sleeps until a completion, a wake(), the earliest timer, or
  /// `deadline`, whichever comes first. Returns how many events it handled
  /// (completions + timers + wakes).
  int run_once(bool block, std::optional<clock::time_point> deadline = std::nullopt);

  /// Awaitable: resumes the awaiting coroutine from run_once at or after `when`.
  struct timer_awaiter {
    reactor* owner;
    clock::time_point when;
    bool await_ready() const noexcept { return when <= clock::now(); }
    void await_suspend(std::coroutine_handle<> h) { owner->add_timer(when, h); }
    void await_resume() const noexcept {}
  };
  [[nodiscard]] timer_awaiter sleep_until(clock::time_point when) { return {this, when}; }
  [[nodiscard]] timer_awaiter sleep_for(clock::duration d) { return {this, clock::now() + d}; }

  std::size_t pending_timers() const noexcept { return timers_.size(); }

  /// Starts `o`; false if it completed at once (o.result is set).
  bool start(op& o);
  /// Socket operations started and not yet completed.
  std::size_t in_flight() const noexcept;
  /// Shutting down: operations in flight end with -ECANCELED, and later
  /// ones at once, so that nothing waits for a peer for ever.
  void cancel_all();
  /// Sockets for this reactor must be non-blocking (epoll); io_uring
  /// wants them blocking, so that it waits in the kernel, not us.
  bool wants_nonblocking() const noexcept { return kind() == backend::epoll; }

 private:
  struct timer {
    clock::time_point when;
    std::uint64_t seq;
    std::coroutine_handle<> waiter;
    bool operator>(const timer& o) const noexcept {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };
  void add_timer(clock::time_point when, std::coroutine_handle<> h);
  int fire_due_timers();

  std::unique_ptr<reactor_backend> backend_;
  std::string fallback_reason_;
  std::vector<timer> timers_;  // min-heap on (when, seq)
  std::uint64_t timer_seq_ = 0;
};

}  // namespace troupe::io
