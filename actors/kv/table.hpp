#pragma once
// The keys and values of one store: a hash table with expiry times.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace troupe::kv {

/// Milliseconds since the Unix epoch, as Redis keeps expiry times.
std::int64_t unix_ms() noexcept;

struct entry {
  std::string value;
  std::int64_t expires_at = 0;  ///< Unix ms; 0: never
};

/// One store's keys. A key whose time has come is removed when it is next
/// looked at (lazily) or by sweep().
///
/// Threads: the owning store's shard only; no locks. `now` is Unix ms.
class table {
 public:
  /// The live entry for `key`, or null.
  entry* find(std::string_view key, std::int64_t now);
  /// The live entry for `key`, made (empty, without expiry) when absent.
  entry& upsert(std::string_view key, std::int64_t now, bool& created);
  /// Removes `key`; true if it was there and alive.
  bool erase(std::string_view key, std::int64_t now);
  /// Sets or (with 0) clears the expiry time of `e`, an entry of this table.
  void set_expiry(entry& e, std::int64_t at) noexcept;

  /// Keys held, those expired but not yet removed included (as Redis's DBSIZE).
  std::size_t size() const noexcept { return map_.size(); }
  /// Keys that have an expiry time.
  std::size_t volatile_count() const noexcept { return volatile_; }
  void clear() noexcept;
  /// Looks at up to `budget` buckets, from where the last sweep stopped,
  /// and removes the expired keys there. Returns how many it removed.
  std::size_t sweep(std::int64_t now, std::size_t budget);

 private:
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using map = std::unordered_map<std::string, entry, key_hash, std::equal_to<>>;
  void erase_at(map::iterator it) noexcept;

  map map_;
  std::size_t volatile_ = 0;
  std::size_t sweep_cursor_ = 0;
};

}  // namespace troupe::kv
