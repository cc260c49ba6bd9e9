// The io_uring backend: one ring per reactor, an eventfd read kept armed on
// it so that other threads can wake a sleeping owner.
//
// Completions find their object through user_data: a fixed tag (< 8), an
// `op*`, or an `accept_stream*` with its low bit set (both are 8-aligned).
//
// Accept streams: one multishot accept per stream, re-armed when a CQE
// comes without IORING_CQE_F_MORE, cancelled when its queue is full or its
// owner closes it. The stream's state is ours until the kernel's last CQE
// for it, so a closed stream is freed only then (or with the ring).
//
// Pooled reads: with a provided-buffer ring, a recv with IOSQE_BUFFER_SELECT
// lets the kernel pick the buffer when bytes arrive; -ENOBUFS (every buffer
// out) parks the read until a buffer is given back. Without one, the read
// polls for POLLIN and then takes a buffer from the free list and reads
// without waiting (the epoll way, on the ring).

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <deque>
#include <new>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <vector>

#include "reactor_backend.hpp"

namespace troupe::io {

/// Connections accepted ahead on one listening socket (see
/// reactor::open_accept_stream).
struct accept_stream {
  int fd = -1;
  std::size_t bound = 1;
  std::deque<int> ready;  ///< accepted, not yet taken (FIFO)
  op* waiter = nullptr;   ///< an accept_next waiting for the next one
  int error = 0;          ///< -errno that ended the multishot accept, for the next request
  bool armed = false;     ///< a multishot accept is in the kernel
  bool stopping = false;  ///< a cancel for it has been submitted
  bool closed = false;    ///< its owner is gone: freed at the kernel's last CQE
};

namespace {

// Sized so that the completion queue never overflows: the ring carries one
// eventfd read plus one op per socket and one multishot accept per stream
// (whose CQEs are reaped with the rest, each batch); 256 leaves room.
constexpr unsigned ring_entries = 256;
constexpr std::uint64_t wake_tag = 1;
constexpr std::uint64_t cancel_tag = 2;
constexpr std::uint64_t stream_bit = 1;    // low bit of an accept_stream* in user_data
constexpr std::uint16_t buffer_group = 0;  // our one provided-buffer ring

// Tries the strongest setup first and steps down on EINVAL, so that the
// flags chosen are those the running kernel accepts (never a version check).
int setup_ring(io_uring& ring, unsigned& flags_out) {
  const unsigned attempts[] = {
      // SINGLE_ISSUER: only the owning thread submits, so the kernel skips
      // its submission locking. DEFER_TASKRUN: completion work runs when we
      // wait, not by interrupting the shard mid-batch.
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      // COOP_TASKRUN: no IPI for task work; we enter the kernel often enough.
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  int rc = -EINVAL;
  for (unsigned flags : attempts) {
    io_uring_params params{};
    params.flags = flags;
    rc = io_uring_queue_init_params(ring_entries, &ring, &params);
    if (rc == 0) {
      flags_out = flags;
      return 0;
    }
    if (rc != -EINVAL) return rc;
  }
  return rc;
}

/// Runs `f` on a thread of its own and returns what it returns. Why: the
/// kernel tells every task that used a ring, once the ring's teardown is
/// done, with a signal-like notification that breaks that task's next
/// blocking call with a timeout (EINTR). A throwaway ring is best made by a
/// throwaway thread, not by the caller's (an embedder's, a test's).
template <class F>
auto on_own_thread(F f) {
  decltype(f()) out{};
  try {
    std::thread t([&] { out = f(); });
    t.join();
  } catch (const std::system_error&) {  // no thread to be had: here, then
    out = f();
  }
  return out;
}

/// A multishot accept on a throwaway listening socket, then its cancel:
/// a kernel that does not know the flag fails the accept with EINVAL.
bool try_multishot_accept(io_uring& ring) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  // Only the family: the kernel binds an abstract name of its choosing, so
  // no file is made and none can clash.
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t)) != 0 ||
      ::listen(fd, 1) != 0) {
    ::close(fd);
    return false;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, 1);
  sqe = io_uring_get_sqe(&ring);
  io_uring_prep_cancel64(sqe, 1, 0);
  io_uring_sqe_set_data64(sqe, 2);
  io_uring_submit(&ring);
  bool supported = false;
  for (int seen = 0; seen < 2; ++seen) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{1, 0};
    if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) != 0) break;
    if (cqe->user_data == 1) supported = cqe->res != -EINVAL;
    io_uring_cqe_seen(&ring, cqe);
  }
  ::close(fd);
  return supported;
}

/// Registers (and drops) a one-entry provided-buffer ring.
bool try_buffer_ring(io_uring& ring) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* mem = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
  reg.ring_entries = 1;
  reg.bgid = buffer_group;
  const bool ok = io_uring_register_buf_ring(&ring, &reg, 0) == 0;
  if (ok) io_uring_unregister_buf_ring(&ring, buffer_group);
  ::munmap(mem, page);
  return ok;
}

/// What is learned by trying, beyond the setup flags: once per process, on
/// a throwaway ring (the reactors' rings are the shards' and stay untouched).
struct kernel_extras {
  bool multishot_accept = false;
  bool buffer_ring = false;
};

const kernel_extras& extras() {
  static const kernel_extras found = on_own_thread([] {
    kernel_extras e;
    io_uring ring{};
    if (io_uring_queue_init(4, &ring, 0) != 0) return e;
    e.multishot_accept = try_multishot_accept(ring);
    e.buffer_ring = try_buffer_ring(ring);
    io_uring_queue_exit(&ring);
    return e;
  });
  return found;
}

class uring_backend final : public reactor_backend {
 public:
  uring_backend(io_uring ring, int efd, const reactor_options& options)
      : ring_(ring), efd_(efd), pool_(options.buffer_count, options.buffer_size),
        use_multishot_(options.multishot_accept && extras().multishot_accept),
        use_buffer_ring_(options.buffer_ring && extras().buffer_ring) {
    arm_wake();
  }
  ~uring_backend() override {
    // The ring first: once it is gone the kernel holds nothing of ours, and
    // the streams and buffers may go.
    io_uring_queue_exit(&ring_);
    ::close(efd_);
    for (auto& s : streams_) {
      for (int fd : s->ready) ::close(fd);
    }
    if (br_) ::munmap(br_, br_bytes_);
  }
  backend kind() const noexcept override { return backend::uring; }

  void wake() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
  }

  bool start(op& o) override {
    if (cancelled_) {
      o.result = -ECANCELED;
      return false;
    }
    switch (o.kind) {
      case op_kind::accept_next: return next_connection(o);
      case op_kind::recv_pooled:
        if (!ensure_pool()) {
          o.result = -ENOMEM;
          return false;
        }
        return submit_pooled(o);
      default: break;
    }
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) {
      o.result = -EBUSY;
      return false;
    }
    switch (o.kind) {
      case op_kind::accept: io_uring_prep_accept(sqe, o.fd, nullptr, nullptr, SOCK_CLOEXEC); break;
      case op_kind::connect: io_uring_prep_connect(sqe, o.fd, o.addr, o.addrlen); break;
      case op_kind::recv: io_uring_prep_recv(sqe, o.fd, o.buf, o.len, 0); break;
      case op_kind::send: io_uring_prep_send(sqe, o.fd, o.buf, o.len, MSG_NOSIGNAL); break;
      case op_kind::accept_next:
      case op_kind::recv_pooled: break;  // above
    }
    io_uring_sqe_set_data(sqe, &o);
    ops_.insert(&o);
    return true;  // submitted with the next wait(), with whatever else is queued
  }

  std::size_t in_flight() const noexcept override {
    return ops_.size() + parked_.size() + deferred_.size() + stream_waiters_ + armed_streams_;
  }

  void cancel_all() override {
    cancelled_ = true;
    for (op* o : ops_) {
      io_uring_sqe* sqe = get_sqe();
      if (!sqe) break;
      io_uring_prep_cancel(sqe, o, 0);
      io_uring_sqe_set_data64(sqe, cancel_tag);
    }
    for (auto& s : streams_) {
      if (s->waiter) {
        s->waiter->result = -ECANCELED;
        deferred_.push_back(std::exchange(s->waiter, nullptr));
        --stream_waiters_;
      }
      if (s->armed && !s->stopping) stop(*s);  // not re-armed: cancelled_
    }
    for (op* o : parked_) {
      o->result = -ECANCELED;
      deferred_.push_back(o);
    }
    parked_.clear();
    io_uring_submit(&ring_);
  }

  int wait(bool block, std::optional<clock::duration> timeout) override {
    if (!deferred_.empty()) block = false;  // waiters to resume now
    io_uring_cqe* cqe = nullptr;
    if (block) {
      __kernel_timespec ts{};
      if (timeout) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count();
        ts.tv_sec = ns / 1'000'000'000;
        ts.tv_nsec = ns % 1'000'000'000;
      }
      int rc;
      do {
        rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout ? &ts : nullptr, nullptr);
      } while (rc == -EINTR && !timeout);  // with a timeout, the caller's loop re-waits
      if (rc < 0 && rc != -ETIME && rc != -EINTR && deferred_.empty()) return 0;
    } else if (ops_.size() + armed_streams_ > 0) {
      // Submits what is queued and runs the completion work deferred to
      // this thread (DEFER_TASKRUN), without waiting.
      io_uring_submit_and_get_events(&ring_);
    } else if (io_uring_sq_ready(&ring_) > 0) {
      io_uring_submit(&ring_);
    }
    return reap();
  }

  accept_stream* open_accept_stream(int fd, std::size_t queue_bound) override {
    if (!use_multishot_ || cancelled_) return nullptr;
    auto s = std::make_unique<accept_stream>();
    s->fd = fd;
    s->bound = queue_bound;
    accept_stream* p = s.get();
    streams_.push_back(std::move(s));
    arm(*p);  // from now on: connections that arrive wait in its queue
    return p;
  }

  void close_accept_stream(accept_stream* s) noexcept override {
    for (int fd : s->ready) ::close(fd);
    s->ready.clear();
    if (s->waiter) {
      s->waiter = nullptr;
      --stream_waiters_;
    }
    s->closed = true;
    if (!s->armed) {
      forget(s);
      return;
    }
    // Freed at its last CQE. Submitted now, so that the kernel stops
    // accepting on a socket its owner is about to close.
    if (!s->stopping) stop(*s);
    io_uring_submit(&ring_);
  }

  std::size_t queued_connections(const accept_stream* s) const noexcept override {
    return s->ready.size();
  }
  bool accepting(const accept_stream* s) const noexcept override {
    return s->armed && !s->stopping;
  }

  std::byte* buffer_data(std::uint32_t id) noexcept override { return pool_.data(id); }

  void release_buffer(std::uint32_t id) noexcept override {
    --pool_.held;
    give_back(id);
  }

  buffer_stats buffers() const noexcept override { return pool_.stats(br_ != nullptr); }

 private:
  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {  // the submission queue is full: hand it to the kernel first
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void arm_wake() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, efd_, &wake_buf_, sizeof wake_buf_, 0);
    io_uring_sqe_set_data64(sqe, wake_tag);
    io_uring_submit(&ring_);
  }

  // ------------------------------------------------------------ accept streams

  static std::uint64_t tag_of(accept_stream& s) noexcept {
    return reinterpret_cast<std::uintptr_t>(&s) | stream_bit;
  }

  /// Puts a multishot accept in the kernel for `s`.
  void arm(accept_stream& s) {
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) return;  // tried again at the next request
    io_uring_prep_multishot_accept(sqe, s.fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag_of(s));
    s.armed = true;
    ++armed_streams_;
  }

  /// Arms `s` unless it is armed, has an error to report first, or its
  /// queue is still above half its bound (hysteresis: no arm/stop per
  /// connection at the bound).
  void maybe_arm(accept_stream& s) {
    if (s.armed || s.closed || cancelled_ || s.error != 0) return;
    if (s.ready.size() > s.bound / 2) return;
    arm(s);
  }

  /// Asks the kernel to end `s`'s multishot accept; its last CQE follows.
  void stop(accept_stream& s) {
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) return;  // tried again at its next CQE
    io_uring_prep_cancel64(sqe, tag_of(s), 0);
    io_uring_sqe_set_data64(sqe, cancel_tag);
    s.stopping = true;
  }

  void forget(accept_stream* s) {
    auto it = std::find_if(streams_.begin(), streams_.end(),
                           [s](const std::unique_ptr<accept_stream>& p) { return p.get() == s; });
    if (it != streams_.end()) streams_.erase(it);
  }

  /// accept_next: a queued connection at once, else wait for the next.
  bool next_connection(op& o) {
    accept_stream* s = o.stream;
    if (!s || s->closed) {
      o.result = -EINVAL;
      return false;
    }
    if (!s->ready.empty()) {
      o.result = s->ready.front();
      s->ready.pop_front();
      maybe_arm(*s);
      return false;
    }
    if (s->error != 0) {  // reported once; the next request arms again
      o.result = std::exchange(s->error, 0);
      return false;
    }
    maybe_arm(*s);
    if (!s->armed) {
      o.result = -EBUSY;  // no submission entry to be had
      return false;
    }
    s->waiter = &o;
    ++stream_waiters_;
    return true;
  }

  /// One CQE of `s`'s multishot accept.
  void on_accept(accept_stream& s, int res, unsigned flags, op** done, unsigned& n_done) {
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (res >= 0) {
      if (s.closed) {
        ::close(res);
      } else if (s.waiter) {
        s.waiter->result = res;
        done[n_done++] = std::exchange(s.waiter, nullptr);
        --stream_waiters_;
      } else {
        s.ready.push_back(res);
        // Full: the kernel stops, later connections wait in the backlog.
        if (more && !s.stopping && s.ready.size() >= s.bound) stop(s);
      }
    }
    if (more) return;
    // The kernel let go of it (stopped by us, an error, or its own reasons).
    const bool asked = s.stopping;
    s.armed = false;
    s.stopping = false;
    --armed_streams_;
    if (s.closed) {
      forget(&s);
      return;
    }
    if (res < 0 && !(res == -ECANCELED && (asked || cancelled_))) {
      if (s.waiter) {
        s.waiter->result = res;
        done[n_done++] = std::exchange(s.waiter, nullptr);
        --stream_waiters_;
      } else {
        s.error = res;
      }
      return;
    }
    maybe_arm(s);
  }

  // ------------------------------------------------------------ pooled reads

  /// Sets up the pool on first use: a provided-buffer ring holding every
  /// buffer where the kernel has one, else the plain free list.
  bool ensure_pool() {
    if (pool_ready_) return true;
    try {
      pool_.allocate();
    } catch (const std::bad_alloc&) {
      return false;
    }
    pool_ready_ = true;
    if (!use_buffer_ring_) return true;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t bytes = (pool_.count() * sizeof(io_uring_buf) + page - 1) / page * page;
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return true;
    auto* br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
    reg.ring_entries = pool_.count();
    reg.bgid = buffer_group;
    if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) {
      ::munmap(mem, bytes);
      return true;  // the free list, then
    }
    const int mask = io_uring_buf_ring_mask(pool_.count());
    for (std::uint32_t i = 0; i < pool_.count(); ++i) {
      io_uring_buf_ring_add(br, pool_.data(i), pool_.size(), static_cast<std::uint16_t>(i), mask,
                            static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br, static_cast<int>(pool_.count()));
    br_ = br;
    br_bytes_ = bytes;
    return true;
  }

  /// Puts buffer `id` (not held) back where reads find it, and lets every
  /// parked read try again: those whose sockets have bytes race for it (the
  /// losers park again), the others wait holding none.
  void give_back(std::uint32_t id) noexcept {
    if (br_) {
      io_uring_buf_ring_add(br_, pool_.data(id), pool_.size(), static_cast<std::uint16_t>(id),
                            io_uring_buf_ring_mask(pool_.count()), 0);
      io_uring_buf_ring_advance(br_, 1);  // the kernel sees it from here on
    } else {
      pool_.put(id);
    }
    if (parked_.empty()) return;
    std::vector<op*> parked = std::move(parked_);
    parked_.clear();
    for (op* o : parked) submit_pooled(*o, true);
  }

  /// Submits a pooled read: a recv that picks its buffer from the ring, or
  /// a poll for POLLIN (free list). `restart`: `o` was parked and is still
  /// counted; a failure then resumes it from the next wait().
  bool submit_pooled(op& o, bool restart = false) {
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) {
      o.result = -EBUSY;
      if (restart) deferred_.push_back(&o);
      return false;
    }
    if (br_) {
      io_uring_prep_recv(sqe, o.fd, nullptr, pool_.size(), 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = buffer_group;
    } else {
      io_uring_prep_poll_add(sqe, o.fd, POLLIN);
      o.started = true;
    }
    io_uring_sqe_set_data(sqe, &o);
    ops_.insert(&o);
    return true;
  }

  enum class pooled_outcome { done, park, again };

  /// One CQE of a pooled read.
  pooled_outcome on_pooled(op& o, int res, unsigned flags) {
    if (br_) {
      if (flags & IORING_CQE_F_BUFFER) {
        const auto id = static_cast<std::uint32_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        if (res > 0) {
          o.buffer = id;
          ++pool_.held;
        } else {
          give_back(id);  // nothing in it
        }
      }
      if (res == -ENOBUFS) return pooled_outcome::park;
      o.result = res;
      return pooled_outcome::done;
    }
    if (res < 0) {  // the poll failed or was cancelled
      o.result = res;
      return pooled_outcome::done;
    }
    // Readable (or hung up / in error: the read says which).
    std::uint32_t id = 0;
    if (!pool_.take(id)) return pooled_outcome::park;
    ssize_t r;
    do {
      r = ::recv(o.fd, pool_.data(id), pool_.size(), MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
      o.buffer = id;
      ++pool_.held;
      o.result = static_cast<int>(r);
      return pooled_outcome::done;
    }
    const int err = r < 0 ? errno : 0;
    pool_.put(id);
    if (err == EAGAIN || err == EWOULDBLOCK) return pooled_outcome::again;  // woken for nothing
    o.result = -err;
    return pooled_outcome::done;
  }

  // ------------------------------------------------------------ completions

  int reap() {
    io_uring_cqe* cqes[64];
    op* done[64];
    op* to_park[64];
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
    unsigned n_done = 0;
    unsigned n_park = 0;
    bool rearm = false;
    for (unsigned i = 0; i < n; ++i) {
      const std::uint64_t tag = io_uring_cqe_get_data64(cqes[i]);
      const int res = cqes[i]->res;
      const unsigned flags = cqes[i]->flags;
      if (tag == wake_tag) {
        rearm = true;
        continue;
      }
      if (tag == cancel_tag) continue;
      if ((tag & stream_bit) != 0) {
        // user_data carries the stream's address with stream_bit set (tag_of).
        // NOLINTNEXTLINE(performance-no-int-to-ptr)
        auto* s = reinterpret_cast<accept_stream*>(static_cast<std::uintptr_t>(tag & ~stream_bit));
        on_accept(*s, res, flags, done, n_done);
        continue;
      }
      op* o = static_cast<op*>(io_uring_cqe_get_data(cqes[i]));
      ops_.erase(o);  // before any waiter runs: it may start the next op at this address
      if (o->kind != op_kind::recv_pooled) {
        o->result = res;
        done[n_done++] = o;
        continue;
      }
      switch (on_pooled(*o, res, flags)) {
        case pooled_outcome::done: done[n_done++] = o; break;
        case pooled_outcome::park: to_park[n_park++] = o; break;
        case pooled_outcome::again: submit_pooled(*o, true); break;
      }
    }
    io_uring_cq_advance(&ring_, n);  // once per batch
    if (rearm) arm_wake();
    // Decided after the batch, whose other reads may have taken or freed
    // buffers: a buffer free now (one came back after the kernel looked)
    // means try again at once, else wait for release_buffer.
    for (unsigned i = 0; i < n_park; ++i) {
      op* o = to_park[i];
      if (cancelled_) {
        o->result = -ECANCELED;
        done[n_done++] = o;
      } else if (pool_.held < pool_.count()) {
        submit_pooled(*o, true);
      } else {
        ++pool_.waits;
        parked_.push_back(o);
      }
    }
    std::vector<op*> deferred = std::move(deferred_);
    deferred_.clear();
    // Resumed after the queue is advanced: a waiter may start the next op.
    for (unsigned i = 0; i < n_done; ++i) done[i]->waiter.resume();
    for (op* o : deferred) o->waiter.resume();
    return static_cast<int>(n + deferred.size());
  }

  io_uring ring_;
  int efd_;
  std::uint64_t wake_buf_ = 0;
  std::unordered_set<op*> ops_;  // in the kernel
  bool cancelled_ = false;

  std::vector<std::unique_ptr<accept_stream>> streams_;
  std::size_t armed_streams_ = 0;   // streams with a multishot accept in the kernel
  std::size_t stream_waiters_ = 0;  // accept_next ops waiting on a stream

  buffer_pool pool_;
  bool pool_ready_ = false;
  io_uring_buf_ring* br_ = nullptr;  // the provided-buffer ring, when registered
  std::size_t br_bytes_ = 0;
  std::vector<op*> parked_;    // pooled reads waiting for a buffer
  std::vector<op*> deferred_;  // ended without the kernel (cancelled, failed): resumed by wait()

  const bool use_multishot_;
  const bool use_buffer_ring_;
};

}  // namespace

std::unique_ptr<reactor_backend> make_uring_backend(int& err, const reactor_options& options) {
  io_uring ring{};
  unsigned flags = 0;
  int rc = setup_ring(ring, flags);
  if (rc < 0) {
    err = -rc;
    return nullptr;
  }
  int efd = ::eventfd(0, EFD_CLOEXEC);
  if (efd < 0) {
    err = errno;
    io_uring_queue_exit(&ring);
    return nullptr;
  }
  return std::make_unique<uring_backend>(ring, efd, options);
}

probe_result probe() {
  return on_own_thread([] {  // a throwaway ring: see on_own_thread
    probe_result r;
    io_uring ring{};
    unsigned flags = 0;
    int rc = setup_ring(ring, flags);
    if (rc < 0) {
      r.failure = explain_uring_failure(-rc);
      return r;
    }
    r.uring_available = true;
    r.single_issuer = (flags & IORING_SETUP_SINGLE_ISSUER) != 0;
    r.defer_taskrun = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    r.coop_taskrun = (flags & IORING_SETUP_COOP_TASKRUN) != 0 || r.defer_taskrun;
    r.ext_arg = (ring.features & IORING_FEAT_EXT_ARG) != 0;
    if (io_uring_probe* p = io_uring_get_probe_ring(&ring)) {
      r.msg_ring = io_uring_opcode_supported(p, IORING_OP_MSG_RING) != 0;
      io_uring_free_probe(p);
    }
    io_uring_queue_exit(&ring);
    r.multishot_accept = extras().multishot_accept;
    r.buffer_ring = extras().buffer_ring;
    return r;
  });
}

}  // namespace troupe::io
