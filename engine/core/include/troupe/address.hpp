#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace troupe {

/// The name of one incarnation of one actor: engine, shard, slot and
/// incarnation. A value: copy, compare, hash and serialize it freely; it is
/// valid on any engine and any thread. When an actor ends its slot may be
/// reused, but with a higher incarnation, so an old address never reaches
/// the new actor. The default address is null (`!addr`).
class address {
 public:
  /// The shard number of askers outside the engine (a plain thread calling
  /// system::ask); replies to it go to that thread, not to a shard.
  static constexpr std::uint16_t outside_shard = 0xFFFF;

  constexpr address() noexcept = default;
  constexpr address(std::uint32_t engine, std::uint16_t shard, std::uint32_t slot,
                    std::uint32_t incarnation) noexcept
      : engine_(engine), slot_(slot), incarnation_(incarnation), shard_(shard) {}

  constexpr std::uint32_t engine() const noexcept { return engine_; }
  constexpr std::uint16_t shard() const noexcept { return shard_; }
  constexpr std::uint32_t slot() const noexcept { return slot_; }
  constexpr std::uint32_t incarnation() const noexcept { return incarnation_; }
  constexpr bool is_null() const noexcept { return incarnation_ == 0; }
  constexpr explicit operator bool() const noexcept { return incarnation_ != 0; }

  friend constexpr bool operator==(const address&, const address&) noexcept = default;
  friend constexpr auto operator<=>(const address&, const address&) noexcept = default;

  /// "engine:shard:slot.incarnation", e.g. "1:0:42.3"; parse() reads it back.
  std::string to_string() const;
  static std::optional<address> parse(std::string_view text);

  /// 16 bytes, little-endian fields; the wire form between engines.
  static constexpr std::size_t wire_size = 16;
  std::array<std::byte, wire_size> to_bytes() const noexcept;
  static address from_bytes(const std::array<std::byte, wire_size>& bytes) noexcept;

  std::size_t hash() const noexcept;

 private:
  std::uint32_t engine_ = 0;
  std::uint32_t slot_ = 0;
  std::uint32_t incarnation_ = 0;
  std::uint16_t shard_ = 0;
  std::uint16_t reserved_ = 0;
};

static_assert(sizeof(address) == 16);

}  // namespace troupe

template <>
struct std::hash<troupe::address> {
  std::size_t operator()(const troupe::address& a) const noexcept { return a.hash(); }
};
