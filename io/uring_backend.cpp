// The io_uring backend: one ring per reactor, an eventfd read kept armed on
// it so that other threads can wake a sleeping owner.

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <unordered_set>

#include "reactor_backend.hpp"

namespace troupe::io {
namespace {

// Sized so that the completion queue never overflows: the ring carries one
// eventfd read plus, later, one op per socket; 256 leaves room for both.
constexpr unsigned ring_entries = 256;
constexpr std::uint64_t wake_tag = 1;
constexpr std::uint64_t cancel_tag = 2;

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

class uring_backend final : public reactor_backend {
 public:
  uring_backend(io_uring ring, int efd) : ring_(ring), efd_(efd) { arm_wake(); }
  ~uring_backend() override {
    io_uring_queue_exit(&ring_);
    ::close(efd_);
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
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {  // the submission queue is full: hand it to the kernel first
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
      if (!sqe) {
        o.result = -EBUSY;
        return false;
      }
    }
    switch (o.kind) {
      case op_kind::accept: io_uring_prep_accept(sqe, o.fd, nullptr, nullptr, SOCK_CLOEXEC); break;
      case op_kind::connect: io_uring_prep_connect(sqe, o.fd, o.addr, o.addrlen); break;
      case op_kind::recv: io_uring_prep_recv(sqe, o.fd, o.buf, o.len, 0); break;
      case op_kind::send: io_uring_prep_send(sqe, o.fd, o.buf, o.len, MSG_NOSIGNAL); break;
    }
    io_uring_sqe_set_data(sqe, &o);
    ops_.insert(&o);
    return true;  // submitted with the next wait(), with whatever else is queued
  }
  std::size_t in_flight() const noexcept override { return ops_.size(); }

  void cancel_all() override {
    cancelled_ = true;
    for (op* o : ops_) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (!sqe) {
        io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
      }
      if (!sqe) break;
      io_uring_prep_cancel(sqe, o, 0);
      io_uring_sqe_set_data64(sqe, cancel_tag);
    }
    io_uring_submit(&ring_);
  }

  int wait(bool block, std::optional<clock::duration> timeout) override {
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
      if (rc < 0 && rc != -ETIME && rc != -EINTR) return 0;
    } else if (!ops_.empty()) {
      // Submits what is queued and runs the completion work deferred to
      // this thread (DEFER_TASKRUN), without waiting.
      io_uring_submit_and_get_events(&ring_);
    } else if (io_uring_sq_ready(&ring_) > 0) {
      io_uring_submit(&ring_);
    }
    return reap();
  }

 private:
  void arm_wake() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_read(sqe, efd_, &wake_buf_, sizeof wake_buf_, 0);
    io_uring_sqe_set_data64(sqe, wake_tag);
    io_uring_submit(&ring_);
  }

  int reap() {
    io_uring_cqe* cqes[64];
    op* done[64];
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
    unsigned n_done = 0;
    bool rearm = false;
    for (unsigned i = 0; i < n; ++i) {
      const std::uint64_t tag = io_uring_cqe_get_data64(cqes[i]);
      if (tag == wake_tag) {
        rearm = true;
        continue;
      }
      if (tag == cancel_tag) continue;
      op* o = static_cast<op*>(io_uring_cqe_get_data(cqes[i]));
      o->result = cqes[i]->res;
      done[n_done++] = o;
    }
    io_uring_cq_advance(&ring_, n);  // once per batch
    if (rearm) arm_wake();
    // Resumed after the queue is advanced: a waiter may start the next op.
    for (unsigned i = 0; i < n_done; ++i) ops_.erase(done[i]);
    for (unsigned i = 0; i < n_done; ++i) done[i]->waiter.resume();
    return static_cast<int>(n);
  }

  io_uring ring_;
  int efd_;
  std::uint64_t wake_buf_ = 0;
  std::unordered_set<op*> ops_;  // in flight
  bool cancelled_ = false;
};

}  // namespace

std::unique_ptr<reactor_backend> make_uring_backend(int& err) {
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
  return std::make_unique<uring_backend>(ring, efd);
}

probe_result probe() {
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
  return r;
}

}  // namespace troupe::io
