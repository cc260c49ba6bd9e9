#pragma once
// What the actors of one key-value server share: where the stores are.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include <troupe/troupe.hpp>

namespace troupe::kv {

class store;

/// The stores of one server, one per shard, and the way from a key to its
/// store. Made before any actor of the server and shared (std::shared_ptr)
/// by all of them.
///
/// Threads: the stores' addresses are set (set_store) by the thread that
/// starts the server, before it spawns the listener, and only read after.
/// Slot i of the local stores belongs to shard i's thread: the store on
/// that shard sets it, connections on that shard read it.
class service {
 public:
  explicit service(std::size_t shards) : stores_(shards), local_(shards) {}

  void set_store(std::size_t shard, const address& a) { stores_[shard] = a; }

  std::size_t shards() const noexcept { return stores_.size(); }
  const address& store_at(std::size_t shard) const noexcept { return stores_[shard]; }

  /// The shard whose store owns `key`.
  std::uint16_t shard_of(std::string_view key) const noexcept {
    if (stores_.size() == 1) return 0;
    // The high bits: the tables' buckets use the low ones.
    const std::uint64_t h = std::hash<std::string_view>{}(key)*0x9E3779B97F4A7C15ull;
    return static_cast<std::uint16_t>((h >> 32) % stores_.size());
  }

  /// The store running on shard `i`, for a caller on that same shard's
  /// thread (the store's data may be used directly there: one thread runs
  /// both). Null until that store has started.
  store* local_store(std::size_t i) const noexcept { return local_[i].p; }
  void set_local_store(std::size_t i, store* s) noexcept { local_[i].p = s; }

 private:
  struct alignas(64) slot {  // one cache line each: written by different shards
    store* p = nullptr;
  };
  std::vector<address> stores_;
  std::vector<slot> local_;
};

}  // namespace troupe::kv
