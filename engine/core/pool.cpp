#include "troupe/internal/pool.hpp"

#include "core/prefetch.hpp"

#include <array>
#include <atomic>
#include <mutex>
#include <new>
#include <utility>

namespace troupe::internal {
namespace {

// Magazines (Bonwick): each thread holds, per size class, two arrays of free
// pointers. Allocation pops from an array, freeing pushes onto one; only
// when both are empty (or full) does the thread trade a whole magazine with
// the depot. Free objects are never linked through their own memory, so
// taking one never reads a line that another core freed last — memory that
// flows from a consuming shard back to a producing one costs no serial
// cache misses.

constexpr std::size_t granule = 16;
constexpr std::size_t class_count = pool_max_size / granule;  // 16, 32, ... 1024
constexpr std::size_t slab_bytes = 256 * 1024;
constexpr std::size_t magazine_size = 128;
constexpr std::size_t prefetch_ahead = 16;

constexpr std::size_t class_of(std::size_t size) noexcept {
  return (size + granule - 1) / granule - 1;
}
constexpr std::size_t class_size(std::size_t c) noexcept { return (c + 1) * granule; }

// Whole cache lines: one thread fills a magazine while another empties its
// neighbour, and a shared line between them would bounce on every message.
struct alignas(64) magazine {
  std::size_t count = 0;
  magazine* next = nullptr;  // in a depot list
  void* items[magazine_size];
  bool full() const noexcept { return count == magazine_size; }
};

// A lock held for a few instructions (push or pop one magazine): spinning
// is cheaper than the futex sleep and wake-up of a contended std::mutex.
class spin_lock {
 public:
  void lock() noexcept {
    while (flag_.exchange(true, std::memory_order_acquire)) {
      while (flag_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

struct alignas(64) depot {
  spin_lock lock;
  magazine* full = nullptr;   // magazines with objects (most of them full)
  magazine* empty = nullptr;  // spare arrays
};

std::array<depot, class_count>& depots() {
  static auto* d = new std::array<depot, class_count>();  // lives forever: threads may free late
  return *d;
}

void push(magazine*& list, magazine* m) noexcept {
  m->next = list;
  list = m;
}
magazine* pop(magazine*& list) noexcept {
  magazine* m = list;
  if (m) list = m->next;
  return m;
}

struct class_cache {
  magazine* loaded = nullptr;
  magazine* previous = nullptr;
  std::byte* carve = nullptr;  // this thread's slab for new objects (no lock)
  std::size_t carve_left = 0;
};

struct thread_cache {
  std::array<class_cache, class_count> classes{};

  ~thread_cache() {
    // Hand everything back so other threads can use it.
    for (std::size_t c = 0; c < class_count; ++c) {
      depot& d = depots()[c];
      std::lock_guard g(d.lock);
      for (magazine* m : {classes[c].loaded, classes[c].previous}) {
        if (!m) continue;
        push(m->count ? d.full : d.empty, m);
      }
    }
  }

  void* allocate(std::size_t c) {
    class_cache& cc = classes[c];
    for (;;) {
      if (magazine* m = cc.loaded; m && m->count) {
        void* p = m->items[--m->count];
        // Objects often come back from another core: fetch the next ones
        // for writing now, every line of them, so that their first writes
        // do not fill the store buffer while ownership moves.
        if (m->count >= prefetch_ahead) {
          auto* next = static_cast<std::byte*>(m->items[m->count - prefetch_ahead]);
          for (std::size_t off = 0; off < class_size(c); off += 64) prefetch_for_write(next + off);
        }
        return p;
      }
      if (cc.previous && cc.previous->count) {
        std::swap(cc.loaded, cc.previous);
        continue;
      }
      // Both empty: trade one for a full magazine, or carve new objects.
      depot& d = depots()[c];
      magazine* got;
      {
        std::lock_guard g(d.lock);
        got = pop(d.full);
        if (got && cc.loaded) push(d.empty, std::exchange(cc.loaded, nullptr));
      }
      if (got) {
        cc.loaded = got;
        continue;
      }
      carve(cc, c);
    }
  }

  void carve(class_cache& cc, std::size_t c) {
    if (!cc.loaded) cc.loaded = new magazine;
    const std::size_t size = class_size(c);
    magazine* m = cc.loaded;
    while (!m->full()) {
      if (cc.carve_left < size) {
        // Cache-line aligned, so that objects whose size is a multiple of
        // 64 (envelopes) never share a line with a neighbour.
        cc.carve = static_cast<std::byte*>(::operator new(slab_bytes, std::align_val_t(64)));
        cc.carve_left = slab_bytes;
      }
      m->items[m->count++] = cc.carve;
      cc.carve += size;
      cc.carve_left -= size;
    }
  }

  void deallocate(void* p, std::size_t c) {
    class_cache& cc = classes[c];
    for (;;) {
      if (magazine* m = cc.loaded; m && !m->full()) {
        m->items[m->count++] = p;
        return;
      }
      if (cc.previous && !cc.previous->full()) {
        std::swap(cc.loaded, cc.previous);
        continue;
      }
      // Both full (or missing): give a full one to the depot, take a spare.
      depot& d = depots()[c];
      magazine* spare;
      {
        std::lock_guard g(d.lock);
        if (cc.previous) push(d.full, cc.previous);
        spare = pop(d.empty);
      }
      cc.previous = cc.loaded;
      cc.loaded = spare ? spare : new magazine;
    }
  }
};

thread_local thread_cache cache;

// Under AddressSanitizer every object goes to operator new, so that a use
// after free or an overflow is caught instead of hidden in a magazine.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool pooled = false;
#else
constexpr bool pooled = true;
#endif

}  // namespace

void* pool_allocate(std::size_t size) {
  if (!pooled || size > pool_max_size) return ::operator new(size);
  return cache.allocate(class_of(size == 0 ? 1 : size));
}

void pool_deallocate(void* p, std::size_t size) noexcept {
  if (!p) return;
  if (!pooled || size > pool_max_size) {
    ::operator delete(p);
    return;
  }
  cache.deallocate(p, class_of(size == 0 ? 1 : size));
}

}  // namespace troupe::internal
