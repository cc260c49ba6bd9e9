#pragma once
// The kernel side of a reactor: io_uring or epoll. Internal to io/.

#include <memory>
#include <optional>

#include "troupe/io/reactor.hpp"

namespace troupe::io {

/// Owns the kernel objects of one reactor. Same thread rules as reactor.
class reactor_backend {
 public:
  virtual ~reactor_backend() = default;
  virtual backend kind() const noexcept = 0;
  /// Any thread.
  virtual void wake() noexcept = 0;
  /// Handles what is ready; if `block`, first sleeps until something is or
  /// `timeout` passes (no timeout: until woken). Returns events handled.
  virtual int wait(bool block, std::optional<clock::duration> timeout) = 0;
  /// Starts a socket operation; false if it completed at once.
  virtual bool start(op& o) = 0;
  virtual std::size_t in_flight() const noexcept = 0;
  /// Ends every operation in flight with -ECANCELED (their waiters resume
  /// from a later wait), and every later one at once.
  virtual void cancel_all() = 0;
};

/// nullptr and `err` set (an errno) when io_uring cannot be set up.
std::unique_ptr<reactor_backend> make_uring_backend(int& err);
/// Throws setup_error if even epoll fails (out of descriptors).
std::unique_ptr<reactor_backend> make_epoll_backend();

}  // namespace troupe::io
