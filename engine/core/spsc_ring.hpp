#pragma once
// A bounded single-producer single-consumer ring of pointers: the lane from
// one shard to another. The producer writes slots privately and publishes
// them in a batch with one release store; the consumer takes everything
// published with one acquire load and frees the slots with one release
// store. Head and tail live on separate cache lines, each side caches the
// other's index, so a batch costs two shared-line transfers, not one per item.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace troupe::internal {

template <class T>
class spsc_ring {
 public:
  explicit spsc_ring(std::size_t capacity_pow2)
      : mask_(capacity_pow2 - 1), slots_(std::make_unique<T*[]>(capacity_pow2)) {}

  // --- producer thread only ---
  /// Writes `item` without publishing it. False when the ring is full.
  bool push(T* item) noexcept {
    if (write_ - cached_head_ > mask_) {
      cached_head_ = head_.load(std::memory_order_acquire);
      if (write_ - cached_head_ > mask_) return false;
    }
    slots_[write_ & mask_] = item;
    ++write_;
    return true;
  }
  /// Makes every pushed item visible. True if anything new was published.
  bool publish() noexcept {
    if (write_ == published_) return false;
    published_ = write_;
    tail_.store(write_, std::memory_order_release);
    return true;
  }
  /// Items pushed but not yet published.
  std::uint64_t unpublished() const noexcept { return write_ - published_; }

  // --- consumer thread only ---
  /// Calls f(T*) for up to `max` published items. Returns how many.
  template <class F>
  std::size_t consume(std::size_t max, F&& f) {
    if (read_ == cached_tail_) {
      cached_tail_ = tail_.load(std::memory_order_acquire);
      if (read_ == cached_tail_) return 0;
    }
    std::size_t n = 0;
    while (read_ != cached_tail_ && n < max) {
      // The items were written on another core: start reading a few ahead.
      // A read hint, not a write one: the consumer only reads an item (the
      // pool keeps free lists outside the objects), and taking the line
      // exclusive would cost the producer a full transfer to write it again.
      if (read_ + prefetch_distance < cached_tail_) {
        __builtin_prefetch(slots_[(read_ + prefetch_distance) & mask_], 0);
      }
      f(slots_[read_ & mask_]);
      ++read_;
      ++n;
    }
    head_.store(read_, std::memory_order_release);
    return n;
  }

  // --- any thread ---
  bool empty_hint() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  static constexpr std::uint64_t prefetch_distance = 16;
  const std::uint64_t mask_;
  std::unique_ptr<T*[]> slots_;
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // written by producer
  alignas(64) std::atomic<std::uint64_t> head_{0};  // written by consumer
  alignas(64) std::uint64_t write_ = 0;             // producer private
  std::uint64_t published_ = 0;
  std::uint64_t cached_head_ = 0;
  alignas(64) std::uint64_t read_ = 0;  // consumer private
  std::uint64_t cached_tail_ = 0;
};

}  // namespace troupe::internal
