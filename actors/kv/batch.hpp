#pragma once
// What a connection sends a store: the operations of one read of its
// client that concern that store's keys, and, coming back, their replies.

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::kv {

/// The operations a store runs. Commands over several keys reach each
/// store as one operation per key.
enum class op : std::uint8_t {
  get,
  set,  ///< SET key value [options]
  del,
  exists,
  incr,
  decr,
  incrby,
  decrby,
  expire,
  pexpire,
  ttl,
  pttl,
  set_pair,  ///< one pair of an MSET
  dbsize,
  flush,
};

/// Operations for one store and their replies. It travels as an ask to
/// the store and comes back as the reply, moved both ways, so that its
/// buffers go home with it and are reused: no allocation per request once
/// they have grown.
///
/// Threads: owned by one side at a time (the connection, then the store
/// while it runs them, then the connection again).
struct shard_batch {
  std::string ops;                  ///< encoded: op, argument count, (length, bytes)...
  std::string replies;              ///< one RESP reply per operation, in order
  std::vector<std::uint32_t> ends;  ///< where each operation's reply ends in `replies`
  std::uint32_t count = 0;          ///< operations in `ops`

  bool empty() const noexcept { return count == 0; }
  void clear() noexcept {
    ops.clear();
    replies.clear();
    ends.clear();
    count = 0;
  }
  void add(op o, std::span<const std::string_view> args) {
    ops += static_cast<char>(o);
    put_u32(static_cast<std::uint32_t>(args.size()));
    for (std::string_view a : args) {
      put_u32(static_cast<std::uint32_t>(a.size()));
      ops += a;
    }
    ++count;
  }
  /// The reply of operation `i`, once the store has run them.
  std::string_view reply(std::uint32_t i) const noexcept {
    const std::uint32_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(replies).substr(begin, ends[i] - begin);
  }

 private:
  void put_u32(std::uint32_t v) {
    char b[4];
    std::memcpy(b, &v, 4);
    ops.append(b, 4);
  }
};

/// Reads the operations of a batch one at a time.
class batch_reader {
 public:
  explicit batch_reader(std::string_view ops) noexcept : in_(ops) {}
  /// The next operation and its arguments (views into the batch); false at the end.
  bool next(op& o, std::vector<std::string_view>& args) {
    if (in_.empty()) return false;
    o = static_cast<op>(in_[0]);
    in_.remove_prefix(1);
    const std::uint32_t n = get_u32();
    args.clear();
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t len = get_u32();
      args.push_back(in_.substr(0, len));
      in_.remove_prefix(len);
    }
    return true;
  }

 private:
  std::uint32_t get_u32() noexcept {
    std::uint32_t v;
    std::memcpy(&v, in_.data(), 4);
    in_.remove_prefix(4);
    return v;
  }
  std::string_view in_;
};

}  // namespace troupe::kv
