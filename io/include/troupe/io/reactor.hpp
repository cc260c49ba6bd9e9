#pragma once
// The reactor: one per thread. It owns an io_uring ring (or, where io_uring
// cannot be set up, an epoll instance), an eventfd that other threads use to
// wake it, and a heap of timers whose waiters are coroutines. On top of the
// single-shot socket operations (`op`) it offers two things the kernel may
// do better than we can, each with a fallback that has the same contract:
//
//   - accept streams: a listening socket accepted ahead of the caller with
//     one multishot accept (io_uring, IORING_ACCEPT_MULTISHOT), its
//     connections queued up to a bound; elsewhere one accept per request.
//   - pooled buffers: a fixed pool of equal buffers, set up on first use,
//     that recv_pooled reads into. On io_uring the kernel picks the buffer
//     when the bytes arrive (a provided-buffer ring), so a socket that waits
//     holds no memory; on epoll (or without buffer rings) a plain free list,
//     and a buffer is taken only once the socket is readable.
//
// io/ knows nothing of actors: what it resumes is a std::coroutine_handle<>.

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include "troupe/io/backend.hpp"

#include <sys/socket.h>

namespace troupe::io {

using clock = std::chrono::steady_clock;

/// Which kernel interface a reactor sits on.
enum class backend { uring, epoll };

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
  /// IORING_OP_ACCEPT takes IORING_ACCEPT_MULTISHOT (tried on a throwaway
  /// listening socket: older kernels refuse the flag with EINVAL).
  bool multishot_accept = false;
  /// Provided-buffer rings can be registered (IORING_REGISTER_PBUF_RING,
  /// tried with a one-entry ring).
  bool buffer_ring = false;

  /// One line for logs: "io_uring (single_issuer defer_taskrun ... multishot_accept buffer_ring)".
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

/// How a reactor is set up. The defaults are what a shard uses.
struct reactor_options {
  backend_choice backend = backend_choice::automatic;
  /// Use multishot accept where the kernel has it; false forces one accept
  /// per request (to test the fallback, or to rule the feature out).
  bool multishot_accept = true;
  /// Use a provided-buffer ring where the kernel has it; false forces the
  /// plain free list.
  bool buffer_ring = true;
  /// The pool recv_pooled reads into: `buffer_count` buffers of
  /// `buffer_size` bytes (4 MiB by default), allocated on the first
  /// recv_pooled and kept until the reactor ends. The count is a power of
  /// two from 1 to 32768 (a buffer ring's rule); the size 1 byte to 1 MiB.
  std::uint32_t buffer_count = 256;
  std::uint32_t buffer_size = 16 * 1024;
};

/// How a reactor's pooled buffers are used; for tests and /status.
struct buffer_stats {
  std::uint32_t count = 0;   ///< buffers in the pool
  std::uint32_t size = 0;    ///< bytes each
  std::uint32_t held = 0;    ///< handed out (in a pooled_buffer) and not given back yet
  std::uint64_t waits = 0;   ///< reads that found every buffer out and waited for one
  bool kernel_ring = false;  ///< an io_uring provided-buffer ring (else a plain free list)
  bool allocated = false;    ///< set up (on the first recv_pooled)
};

class reactor_backend;
class reactor;

/// Connections accepted ahead on one listening socket; owned by the
/// reactor's backend (see reactor::open_accept_stream). Opaque.
struct accept_stream;

enum class op_kind : std::uint8_t {
  accept,       ///< one connection from listening socket `fd`
  connect,      ///< to `addr`
  recv,         ///< into `buf`
  send,         ///< from `buf`
  accept_next,  ///< the next connection of `stream` (queued, or the next to come)
  recv_pooled,  ///< into a pooled buffer picked when the bytes arrive; its id in `buffer`
};

/// One socket operation on a reactor, awaitable from a coroutine: it
/// resumes with the result, >= 0 (a descriptor, a byte count, 0) or
/// -errno. The object must stay where it is until then (a coroutine's
/// awaiter does). At most one reading (accept, accept_next, recv,
/// recv_pooled) and one writing (connect, send) operation per descriptor
/// at a time.
struct op {
  reactor* owner = nullptr;
  op_kind kind = op_kind::recv;
  int fd = -1;
  void* buf = nullptr;
  std::size_t len = 0;
  const sockaddr* addr = nullptr;  ///< connect
  socklen_t addrlen = 0;
  accept_stream* stream = nullptr;  ///< accept_next
  /// recv_pooled with result > 0: the pooled buffer that holds the bytes,
  /// now the caller's, to be given back with reactor::release_buffer
  /// (pooled_buffer does).
  std::uint32_t buffer = 0;
  int result = 0;
  bool started = false;  ///< the backend's own: epoll connect in progress, io_uring polling
  std::coroutine_handle<> waiter;

  bool await_ready() const noexcept { return owner == nullptr; }
  /// False (no suspension) when it completed at once.
  bool await_suspend(std::coroutine_handle<> h);
  int await_resume() const noexcept { return result; }
};

/// One thread's event loop core.
///
/// Threads: construct, `run_once`, the timer awaitables, socket operations,
/// accept streams and pooled buffers on the owning thread only (the ring is
/// set up SINGLE_ISSUER). `wake` from any thread.
/// Lifetime: must outlive every coroutine suspended on one of its timers or
/// operations, and every pooled_buffer it handed out; destroying it with
/// timers pending leaves those coroutines suspended (their owner destroys
/// them). Accept streams still open are closed with it.
class reactor {
 public:
  /// Throws setup_error when `choice` is strict and cannot be met. With
  /// `automatic`, a failing io_uring is reported through `fallback_reason()`
  /// and epoll is used.
  explicit reactor(backend_choice choice = backend_choice::automatic);
  /// The same, with the pool's shape and the kernel features to use; throws
  /// std::invalid_argument for a pool shape outside the bounds above.
  explicit reactor(const reactor_options& options);
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

  /// Starts accepting connections on listening socket `fd` ahead of the
  /// caller, with one multishot accept, so that those arriving while nobody
  /// asks are queued; an `op` of kind accept_next takes them one by one.
  /// The queue is bounded: at `queue_bound` connections the kernel is told
  /// to stop (they wait in the listen backlog), and is re-armed once the
  /// queue is down to half. The kernel takes every connection waiting in
  /// the backlog in one go, so the queue may pass the bound by up to one
  /// listen backlog: it never holds more than bound + backlog. Returns
  /// nullptr where this cannot be done (epoll, a kernel without multishot
  /// accept, options, after cancel_all): accept one at a time with
  /// op_kind::accept instead.
  /// `fd` must stay open until close_accept_stream.
  accept_stream* open_accept_stream(int fd, std::size_t queue_bound);
  /// Ends a stream: its queued connections are closed, its multishot
  /// accept cancelled; its state stays with the reactor until the kernel
  /// lets go of it, so nothing in flight points at freed memory. An
  /// accept_next still waiting on it is forgotten (never resumed): close
  /// a stream only when none waits. Null: nothing.
  void close_accept_stream(accept_stream* s) noexcept;
  /// Connections `s` holds, accepted and not yet taken.
  std::size_t queued_connections(const accept_stream* s) const noexcept;
  /// Whether `s` has a multishot accept in the kernel now (false while it
  /// is stopped at its bound).
  bool accepting(const accept_stream* s) const noexcept;

  /// The bytes of pooled buffer `id` (the pool's whole buffer).
  std::byte* buffer_data(std::uint32_t id) noexcept;
  /// Gives pooled buffer `id` back; a read waiting for a buffer goes on.
  void release_buffer(std::uint32_t id) noexcept;
  buffer_stats buffers() const noexcept;

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

/// A pooled buffer holding bytes read by an op of kind recv_pooled:
/// move-only, and given back to its reactor's pool when destroyed or
/// released. Empty (size 0) when default-made or moved from.
///
/// Threads: the reactor's owning thread only, and it must end before the
/// reactor does. Holding many for long starves reads: when every buffer is
/// out, recv_pooled waits until one comes back.
class pooled_buffer {
 public:
  pooled_buffer() noexcept = default;
  /// Takes buffer `id` of `owner`, holding `size` bytes.
  pooled_buffer(reactor& owner, std::uint32_t id, std::size_t size) noexcept
      : owner_(&owner), id_(id), data_(owner.buffer_data(id)), size_(size) {}
  pooled_buffer(pooled_buffer&& o) noexcept
      : owner_(std::exchange(o.owner_, nullptr)), id_(o.id_),
        data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  pooled_buffer& operator=(pooled_buffer&& o) noexcept {
    if (this != &o) {
      release();
      owner_ = std::exchange(o.owner_, nullptr);
      id_ = o.id_;
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  pooled_buffer(const pooled_buffer&) = delete;
  pooled_buffer& operator=(const pooled_buffer&) = delete;
  ~pooled_buffer() { release(); }

  std::span<std::byte> bytes() noexcept { return {data_, size_}; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// Gives the buffer back now; the handle is empty afterwards.
  void release() noexcept {
    if (owner_) std::exchange(owner_, nullptr)->release_buffer(id_);
    data_ = nullptr;
    size_ = 0;
  }

 private:
  reactor* owner_ = nullptr;
  std::uint32_t id_ = 0;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace troupe::io
