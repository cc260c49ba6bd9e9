// The epoll backend: used where io_uring cannot be set up. Same contract as
// the io_uring one; an eventfd registered for EPOLLIN carries wake-ups.
// Accept streams are not offered (one accept per request), and pooled
// buffers come from a plain free list: a read takes one only once its socket
// is readable, and when all are out it is parked (off epoll) until one is
// given back.

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "reactor_backend.hpp"

namespace troupe::io {
namespace {

class epoll_backend final : public reactor_backend {
 public:
  epoll_backend(int epfd, int efd, const reactor_options& options)
      : epfd_(epfd), efd_(efd), pool_(options.buffer_count, options.buffer_size) {}
  ~epoll_backend() override {
    ::close(efd_);
    ::close(epfd_);
  }
  backend kind() const noexcept override { return backend::epoll; }

  void wake() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
  }

  // Readiness, not completion: an operation is tried at once, and when the
  // socket is not ready it waits for EPOLLIN / EPOLLOUT and is tried again.
  bool start(op& o) override {
    if (cancelled_) {
      o.result = -ECANCELED;
      return false;
    }
    if (o.kind == op_kind::accept_next) {  // no streams here: open_accept_stream said so
      o.result = -EINVAL;
      return false;
    }
    ++in_flight_;
    if (attempt(o)) {
      if (!must_park(o)) {
        --in_flight_;
        return false;
      }
      park(o);
      return true;
    }
    fd_ops& f = fds_[o.fd];
    (writes(o) ? f.writer : f.reader) = &o;
    update(o.fd, f);
    return true;
  }
  std::size_t in_flight() const noexcept override { return in_flight_; }

  void cancel_all() override {
    cancelled_ = true;
    for (auto& [fd, f] : fds_) {
      for (op* o : {f.reader, f.writer}) {
        if (!o) continue;
        o->result = -ECANCELED;
        cancelled_ops_.push_back(o);
      }
      if (f.registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    }
    fds_.clear();
    for (op* o : parked_) {
      o->result = -ECANCELED;
      cancelled_ops_.push_back(o);
    }
    parked_.clear();
    wake();  // the waiters resume from the next wait()
  }

  std::byte* buffer_data(std::uint32_t id) noexcept override { return pool_.data(id); }

  void release_buffer(std::uint32_t id) noexcept override {
    pool_.put(id);
    --pool_.held;
    // Every parked read goes back on epoll: those whose sockets are
    // readable race for the buffer, the others hold none while they wait.
    std::vector<op*> parked = std::move(parked_);
    parked_.clear();
    for (op* o : parked) {
      fd_ops& f = fds_[o->fd];
      f.reader = o;
      update(o->fd, f);
    }
  }

  buffer_stats buffers() const noexcept override { return pool_.stats(false); }

  int wait(bool block, std::optional<clock::duration> timeout) override {
    const auto deadline = clock::now() + timeout.value_or(clock::duration::zero());
    epoll_event events[16];
    int n;
    do {
      int ms = 0;
      if (block && !timeout) {
        ms = -1;
      } else if (block) {
        // Round up: waking early only to sleep again burns CPU.
        auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(deadline - clock::now()).count();
        ms = us <= 0 ? 0 : static_cast<int>((us + 999) / 1000);
      }
      n = ::epoll_wait(epfd_, events, 16, ms);
      // EINTR: a signal, or io_uring task work queued to this thread.
    } while (n < 0 && errno == EINTR);
    std::vector<op*> done = std::move(cancelled_ops_);
    cancelled_ops_.clear();
    if (n <= 0 && done.empty()) return 0;
    if (n < 0) n = 0;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == efd_) {
        std::uint64_t count = 0;
        [[maybe_unused]] auto r = ::read(efd_, &count, sizeof count);
        continue;
      }
      auto it = fds_.find(fd);
      if (it == fds_.end()) continue;
      fd_ops& f = it->second;
      const auto ev = events[i].events;
      const bool broken = (ev & (EPOLLERR | EPOLLHUP)) != 0;
      if (f.reader && ((ev & EPOLLIN) || broken) && attempt(*f.reader)) {
        op* o = std::exchange(f.reader, nullptr);
        if (must_park(*o)) {
          park(*o);
        } else {
          done.push_back(o);
        }
      }
      if (f.writer && ((ev & EPOLLOUT) || broken) && attempt(*f.writer)) {
        done.push_back(std::exchange(f.writer, nullptr));
      }
      update(fd, f);
      if (!f.reader && !f.writer) fds_.erase(it);
    }
    in_flight_ -= done.size();
    for (op* o : done) o->waiter.resume();
    return n + static_cast<int>(done.size());
  }

 private:
  struct fd_ops {
    op* reader = nullptr;
    op* writer = nullptr;
    std::uint32_t registered = 0;  ///< events epoll has for it; 0: not added
  };

  static bool writes(const op& o) { return o.kind == op_kind::connect || o.kind == op_kind::send; }

  /// A pooled read that found every buffer out waits for one to come back.
  bool must_park(const op& o) const noexcept {
    return o.kind == op_kind::recv_pooled && o.result == -ENOBUFS && !cancelled_;
  }
  /// Off epoll (a readable socket would wake us in a loop) until
  /// release_buffer puts it back; still in flight.
  void park(op& o) {
    ++pool_.waits;
    parked_.push_back(&o);
  }

  /// Runs the system call; true if it is finished (result set), false if
  /// the socket was not ready. A pooled read with no free buffer finishes
  /// with -ENOBUFS (the caller parks it).
  bool attempt(op& o) {
    int r = 0;
    switch (o.kind) {
      case op_kind::accept:
      case op_kind::accept_next:
        r = ::accept4(o.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
      case op_kind::connect:
        if (!o.started) {
          o.started = true;
          r = ::connect(o.fd, o.addr, o.addrlen);
          if (r < 0 && errno == EINPROGRESS) return false;
          // A Unix listener with a full backlog: nothing was started, and
          // its socket would poll as hung up; the caller retries later.
          if (r < 0 && errno == EAGAIN) {
            o.result = -EAGAIN;
            return true;
          }
        } else {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(o.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          o.result = -err;
          return true;
        }
        break;
      case op_kind::recv: r = static_cast<int>(::recv(o.fd, o.buf, o.len, 0)); break;
      case op_kind::send: r = static_cast<int>(::send(o.fd, o.buf, o.len, MSG_NOSIGNAL)); break;
      case op_kind::recv_pooled: {
        std::uint32_t id = 0;
        bool got = false;
        try {
          got = pool_.take(id);  // the first one allocates the pool
        } catch (const std::bad_alloc&) {
          o.result = -ENOMEM;
          return true;
        }
        if (!got) {
          o.result = -ENOBUFS;
          return true;
        }
        r = static_cast<int>(::recv(o.fd, pool_.data(id), pool_.size(), 0));
        if (r > 0) {
          o.buffer = id;
          ++pool_.held;
        } else {
          const int saved = errno;
          pool_.put(id);
          errno = saved;
        }
        break;
      }
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (r < 0 && errno == EINTR) return attempt(o);
    o.result = r < 0 ? -errno : r;
    return true;
  }

  void update(int fd, fd_ops& f) {
    const std::uint32_t want = (f.reader ? EPOLLIN : 0u) | (f.writer ? EPOLLOUT : 0u);
    if (want == f.registered) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = fd;
    if (f.registered == 0) {
      ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    } else if (want == 0) {
      ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    } else {
      ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    }
    f.registered = want;
  }

  int epfd_;
  int efd_;
  std::unordered_map<int, fd_ops> fds_;
  std::size_t in_flight_ = 0;
  bool cancelled_ = false;
  std::vector<op*> cancelled_ops_;  // resumed by the next wait()
  buffer_pool pool_;
  std::vector<op*> parked_;  // pooled reads waiting for a buffer
};

}  // namespace

std::unique_ptr<reactor_backend> make_epoll_backend(const reactor_options& options) {
  int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) throw setup_error(std::string("epoll_create1 failed: ") + std::strerror(errno));
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    int err = errno;
    ::close(epfd);
    throw setup_error(std::string("eventfd failed: ") + std::strerror(err));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = efd;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev);
  return std::make_unique<epoll_backend>(epfd, efd, options);
}

}  // namespace troupe::io
