#include "troupe/io/reactor.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>

#include "reactor_backend.hpp"

namespace troupe::io {

std::optional<backend_choice> parse_backend_choice(std::string_view text) {
  if (text == "auto") return backend_choice::automatic;
  if (text == "uring" || text == "io_uring") return backend_choice::uring;
  if (text == "epoll") return backend_choice::epoll;
  return std::nullopt;
}

const char* to_string(backend b) { return b == backend::uring ? "io_uring" : "epoll"; }

std::string probe_result::describe() const {
  if (!uring_available) return "epoll (io_uring unavailable: " + failure + ")";
  std::string s = "io_uring (";
  auto add = [&s](bool on, const char* name) {
    if (!on) return;
    if (s.back() != '(') s += ' ';
    s += name;
  };
  add(single_issuer, "single_issuer");
  add(defer_taskrun, "defer_taskrun");
  add(coop_taskrun, "coop_taskrun");
  add(ext_arg, "ext_arg");
  add(msg_ring, "msg_ring");
  add(multishot_accept, "multishot_accept");
  add(buffer_ring, "buffer_ring");
  return s + ")";
}

std::string explain_uring_failure(int err) {
  std::string what = "io_uring_setup failed: " + std::string(std::strerror(err));
  switch (err) {
    case EPERM:
      return what +
             ". io_uring is forbidden here: set /proc/sys/kernel/io_uring_disabled to 0 (or add "
             "this user to the io_uring group when it is 1), or allow io_uring_setup, "
             "io_uring_enter and io_uring_register in the container's seccomp profile; "
             "or run with --io=epoll";
    case ENOSYS:
      return what +
             ". This kernel has no io_uring (it needs Linux 5.10 or newer, built with "
             "CONFIG_IO_URING) or a seccomp filter hides it; upgrade the kernel or run with "
             "--io=epoll";
    case ENOMEM:
      return what +
             ". The kernel could not allocate the ring: raise the locked-memory limit "
             "(ulimit -l) or run with --io=epoll";
    case EMFILE:
    case ENFILE: return what + ". Out of file descriptors: raise ulimit -n";
    default: return what + ". Run with --io=epoll to use the epoll backend instead";
  }
}

reactor::reactor(backend_choice choice) : reactor(reactor_options{.backend = choice}) {}

reactor::reactor(const reactor_options& options) {
  const std::uint32_t count = options.buffer_count;
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0) {
    throw std::invalid_argument(
        "reactor_options.buffer_count must be a power of two from 1 to "
        "32768, not " +
        std::to_string(count));
  }
  if (options.buffer_size == 0 || options.buffer_size > (1u << 20)) {
    throw std::invalid_argument("reactor_options.buffer_size must be 1 byte to 1 MiB, not " +
                                std::to_string(options.buffer_size));
  }
  if (options.backend != backend_choice::epoll) {
    int err = 0;
    backend_ = make_uring_backend(err, options);
    if (!backend_) {
      std::string why = explain_uring_failure(err);
      if (options.backend == backend_choice::uring) throw setup_error(why);
      fallback_reason_ = std::move(why);
    }
  }
  if (!backend_) backend_ = make_epoll_backend(options);
}

reactor::~reactor() = default;

backend reactor::kind() const noexcept { return backend_->kind(); }

void reactor::wake() noexcept { backend_->wake(); }

bool reactor::start(op& o) { return backend_->start(o); }
std::size_t reactor::in_flight() const noexcept { return backend_->in_flight(); }
void reactor::cancel_all() { backend_->cancel_all(); }

accept_stream* reactor::open_accept_stream(int fd, std::size_t queue_bound) {
  return backend_->open_accept_stream(fd, queue_bound == 0 ? 1 : queue_bound);
}
void reactor::close_accept_stream(accept_stream* s) noexcept {
  if (s) backend_->close_accept_stream(s);
}
std::size_t reactor::queued_connections(const accept_stream* s) const noexcept {
  return s ? backend_->queued_connections(s) : 0;
}
bool reactor::accepting(const accept_stream* s) const noexcept {
  return s && backend_->accepting(s);
}
std::byte* reactor::buffer_data(std::uint32_t id) noexcept { return backend_->buffer_data(id); }
void reactor::release_buffer(std::uint32_t id) noexcept { backend_->release_buffer(id); }
buffer_stats reactor::buffers() const noexcept { return backend_->buffers(); }

bool op::await_suspend(std::coroutine_handle<> h) {
  waiter = h;
  return owner->start(*this);
}

void reactor::add_timer(clock::time_point when, std::coroutine_handle<> h) {
  timers_.push_back({when, timer_seq_++, h});
  std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
}

int reactor::fire_due_timers() {
  int fired = 0;
  const auto now = clock::now();
  while (!timers_.empty() && timers_.front().when <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), std::greater<>{});
    auto h = timers_.back().waiter;
    timers_.pop_back();
    ++fired;
    h.resume();
  }
  return fired;
}

int reactor::run_once(bool block, std::optional<clock::time_point> deadline) {
  int handled = fire_due_timers();
  if (handled > 0) block = false;
  if (!timers_.empty() && (!deadline || timers_.front().when < *deadline)) {
    deadline = timers_.front().when;
  }
  std::optional<clock::duration> timeout;
  if (block && deadline) timeout = std::max(clock::duration::zero(), *deadline - clock::now());
  handled += backend_->wait(block, timeout);
  return handled + fire_due_timers();
}

}  // namespace troupe::io
