#include "troupe/internal/pool.hpp"

#include <array>
#include <atomic>
#include <mutex>
#include <new>

namespace troupe::internal {
namespace {

constexpr std::size_t granule = 16;
constexpr std::size_t class_count = pool_max_size / granule;  // 16, 32, ... 1024
constexpr std::size_t slab_bytes = 256 * 1024;

constexpr std::size_t class_of(std::size_t size) noexcept {
  return (size + granule - 1) / granule - 1;
}
constexpr std::size_t class_size(std::size_t c) noexcept { return (c + 1) * granule; }
// Objects moved per depot exchange: about 16 KiB worth, at least 32.
constexpr std::array<std::size_t, class_count> batch_table = [] {
  std::array<std::size_t, class_count> t{};
  for (std::size_t c = 0; c < class_count; ++c) {
    std::size_t n = 16384 / class_size(c);
    t[c] = n < 32 ? 32 : n;
  }
  return t;
}();
constexpr std::size_t batch_of(std::size_t c) noexcept { return batch_table[c]; }

struct node {
  node* next;
  node* next_batch;  // first node of a batch parked in the depot
};
static_assert(sizeof(node) <= granule);

std::atomic<std::size_t> reserved_bytes{0};

// A lock held for a few instructions (push or pop one batch): spinning is
// cheaper than a futex sleep and wake-up, which is what a contended
// std::mutex costs when one shard frees what another allocates.
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

// Full batches of free objects, shared by all threads of one size class.
struct depot {
  spin_lock lock;
  node* batches = nullptr;  // linked through next_batch
};

std::array<depot, class_count>& depots() {
  static auto* d = new std::array<depot, class_count>();  // lives forever: threads may free late
  return *d;
}

struct free_list {
  node* head = nullptr;
  std::size_t count = 0;
  // The slab this thread carves new objects of this class from (no lock:
  // page faults on fresh memory never happen under the depot lock).
  std::byte* carve = nullptr;
  std::size_t carve_left = 0;
};

struct thread_cache {
  std::array<free_list, class_count> lists{};

  ~thread_cache() {
    // Hand everything back so other threads can use it.
    for (std::size_t c = 0; c < class_count; ++c) {
      free_list& fl = lists[c];
      if (!fl.head) continue;
      depot& d = depots()[c];
      std::lock_guard g(d.lock);
      fl.head->next_batch = d.batches;
      d.batches = fl.head;
      fl.head = nullptr;
      fl.count = 0;
    }
  }

  void refill(std::size_t c) {
    depot& d = depots()[c];
    const std::size_t size = class_size(c), n = batch_of(c);
    std::unique_lock g(d.lock);
    if (d.batches) {
      node* list = d.batches;
      d.batches = list->next_batch;
      g.unlock();
      // Spilled batches hold batch_of(c) nodes; one handed back at thread
      // exit may hold fewer, and the list's end (not the count) is what
      // allocation goes by. Counting would chase pointers into another
      // core's cache for nothing.
      lists[c].head = list;
      lists[c].count = n;
      return;
    }
    g.unlock();
    free_list& fl = lists[c];
    node* head = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      if (fl.carve_left < size) {
        // Cache-line aligned, so that objects whose size is a multiple of
        // 64 (envelopes) never share a line with a neighbour.
        fl.carve = static_cast<std::byte*>(::operator new(slab_bytes, std::align_val_t(64)));
        fl.carve_left = slab_bytes;
        reserved_bytes.fetch_add(slab_bytes, std::memory_order_relaxed);
      }
      auto* p = reinterpret_cast<node*>(fl.carve);
      fl.carve += size;
      fl.carve_left -= size;
      p->next = head;
      head = p;
    }
    lists[c].head = head;
    lists[c].count = n;
  }

  void spill(std::size_t c) {
    free_list& fl = lists[c];
    const std::size_t n = batch_of(c);
    node* batch = fl.head;
    node* last = batch;
    std::size_t k = 1;
    for (; k < n && last->next; ++k) last = last->next;
    fl.head = last->next;
    last->next = nullptr;
    fl.count = fl.head ? fl.count - k : 0;
    depot& d = depots()[c];
    std::lock_guard g(d.lock);
    batch->next_batch = d.batches;
    d.batches = batch;
  }
};

thread_local thread_cache cache;

}  // namespace

// Under AddressSanitizer every object goes to operator new, so that a use
// after free or an overflow is caught instead of hidden in a free list.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool pooled = false;
#else
constexpr bool pooled = true;
#endif

void* pool_allocate(std::size_t size) {
  if (!pooled || size > pool_max_size) return ::operator new(size);
  const std::size_t c = class_of(size == 0 ? 1 : size);
  free_list& fl = cache.lists[c];
  if (!fl.head) cache.refill(c);
  node* p = fl.head;
  fl.head = p->next;
  --fl.count;
  return p;
}

void pool_deallocate(void* p, std::size_t size) noexcept {
  if (!p) return;
  if (!pooled || size > pool_max_size) {
    ::operator delete(p);
    return;
  }
  const std::size_t c = class_of(size == 0 ? 1 : size);
  free_list& fl = cache.lists[c];
  auto* n = static_cast<node*>(p);
  n->next = fl.head;
  fl.head = n;
  if (++fl.count >= 2 * batch_of(c)) cache.spill(c);
}

std::size_t pool_reserved_bytes() noexcept { return reserved_bytes.load(std::memory_order_relaxed); }

}  // namespace troupe::internal
