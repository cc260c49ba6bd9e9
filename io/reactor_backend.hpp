#pragma once
// The kernel side of a reactor: io_uring or epoll. Internal to io/.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

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
  /// Operations started and not yet resumed, plus armed accept streams:
  /// while it is not 0, the owner polls for completions.
  virtual std::size_t in_flight() const noexcept = 0;
  /// Ends every operation in flight with -ECANCELED (their waiters resume
  /// from a later wait), and every later one at once.
  virtual void cancel_all() = 0;

  /// See reactor::open_accept_stream. The default: not supported.
  virtual accept_stream* open_accept_stream(int /*fd*/, std::size_t /*queue_bound*/) {
    return nullptr;
  }
  virtual void close_accept_stream(accept_stream* /*s*/) noexcept {}
  virtual std::size_t queued_connections(const accept_stream* /*s*/) const noexcept { return 0; }
  virtual bool accepting(const accept_stream* /*s*/) const noexcept { return false; }

  virtual std::byte* buffer_data(std::uint32_t id) noexcept = 0;
  virtual void release_buffer(std::uint32_t id) noexcept = 0;
  virtual buffer_stats buffers() const noexcept = 0;
};

/// The memory of a reactor's pooled buffers: `count` buffers of `size`
/// bytes in one allocation made on first use, a count of those handed out,
/// and the free list for backends where the kernel does not keep it (epoll,
/// io_uring without buffer rings). Ids are indices, 0 .. count-1.
class buffer_pool {
 public:
  buffer_pool(std::uint32_t count, std::uint32_t size) : count_(count), size_(size) {}

  std::uint32_t count() const noexcept { return count_; }
  std::uint32_t size() const noexcept { return size_; }
  bool allocated() const noexcept { return memory_ != nullptr; }
  /// Allocates the buffers, once. Throws std::bad_alloc.
  void allocate() {
    if (!memory_) memory_.reset(new std::byte[std::size_t{count_} * size_]);
  }
  std::byte* data(std::uint32_t id) noexcept { return memory_.get() + std::size_t{id} * size_; }

  /// Free list: a free buffer, or false when all are out.
  bool take(std::uint32_t& id) {
    if (!listed_) {
      allocate();
      free_.reserve(count_);
      for (std::uint32_t i = count_; i > 0; --i) free_.push_back(i - 1);
      listed_ = true;
    }
    if (free_.empty()) return false;
    id = free_.back();
    free_.pop_back();
    return true;
  }
  /// Free list: gives `id` back (taken, and not counted as held).
  void put(std::uint32_t id) noexcept { free_.push_back(id); }  // reserved: never allocates

  /// Buffers in a pooled_buffer, and reads that waited for one.
  std::uint32_t held = 0;
  std::uint64_t waits = 0;

  buffer_stats stats(bool kernel_ring) const noexcept {
    return {count_, size_, held, waits, kernel_ring, allocated()};
  }

 private:
  std::uint32_t count_;
  std::uint32_t size_;
  std::unique_ptr<std::byte[]> memory_;
  std::vector<std::uint32_t> free_;
  bool listed_ = false;  // free_ holds every id not taken
};

/// nullptr and `err` set (an errno) when io_uring cannot be set up.
std::unique_ptr<reactor_backend> make_uring_backend(int& err, const reactor_options& options);
/// Throws setup_error if even epoll fails (out of descriptors).
std::unique_ptr<reactor_backend> make_epoll_backend(const reactor_options& options);

}  // namespace troupe::io
