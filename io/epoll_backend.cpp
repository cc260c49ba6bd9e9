// The epoll backend: used where io_uring cannot be set up. Same contract as
// the io_uring one; an eventfd registered for EPOLLIN carries wake-ups.

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "reactor_backend.hpp"

namespace troupe::io {
namespace {

class epoll_backend final : public reactor_backend {
 public:
  epoll_backend(int epfd, int efd) : epfd_(epfd), efd_(efd) {}
  ~epoll_backend() override {
    ::close(efd_);
    ::close(epfd_);
  }
  backend kind() const noexcept override { return backend::epoll; }

  void wake() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
  }

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
    if (n <= 0) return 0;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == efd_) {
        std::uint64_t count = 0;
        [[maybe_unused]] auto r = ::read(efd_, &count, sizeof count);
      }
    }
    return n;
  }

 private:
  int epfd_;
  int efd_;
};

}  // namespace

std::unique_ptr<reactor_backend> make_epoll_backend() {
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
  return std::make_unique<epoll_backend>(epfd, efd);
}

}  // namespace troupe::io
