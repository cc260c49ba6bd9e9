#include "troupe/address.hpp"

#include <charconv>
#include <cstring>

namespace troupe {

std::string address::to_string() const {
  return std::to_string(engine_) + ":" + std::to_string(shard_) + ":" + std::to_string(slot_) +
         "." + std::to_string(incarnation_);
}

namespace {

template <class T>
bool read_number(std::string_view& text, T& out, char stop) {
  auto end = stop ? text.find(stop) : text.size();
  if (end == std::string_view::npos || end == 0) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + end, out);
  if (ec != std::errc() || p != text.data() + end) return false;
  text.remove_prefix(stop ? end + 1 : end);
  return true;
}

void put_le(std::byte* out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_le(const std::byte* in, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return v;
}

}  // namespace

std::optional<address> address::parse(std::string_view text) {
  std::uint32_t engine = 0, slot = 0, incarnation = 0;
  std::uint16_t shard = 0;
  if (!read_number(text, engine, ':') || !read_number(text, shard, ':') ||
      !read_number(text, slot, '.') || !read_number(text, incarnation, 0) || !text.empty()) {
    return std::nullopt;
  }
  return address(engine, shard, slot, incarnation);
}

std::array<std::byte, address::wire_size> address::to_bytes() const noexcept {
  std::array<std::byte, wire_size> b{};
  put_le(b.data(), engine_, 4);
  put_le(b.data() + 4, shard_, 2);
  put_le(b.data() + 6, 0, 2);
  put_le(b.data() + 8, slot_, 4);
  put_le(b.data() + 12, incarnation_, 4);
  return b;
}

address address::from_bytes(const std::array<std::byte, wire_size>& b) noexcept {
  return address(static_cast<std::uint32_t>(get_le(b.data(), 4)),
                 static_cast<std::uint16_t>(get_le(b.data() + 4, 2)),
                 static_cast<std::uint32_t>(get_le(b.data() + 8, 4)),
                 static_cast<std::uint32_t>(get_le(b.data() + 12, 4)));
}

std::size_t address::hash() const noexcept {
  // splitmix64 over the packed fields: cheap and well spread.
  std::uint64_t x =
      (static_cast<std::uint64_t>(engine_) << 16 | shard_) ^
      (static_cast<std::uint64_t>(slot_) << 32 | incarnation_) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<std::size_t>(x);
}

}  // namespace troupe
