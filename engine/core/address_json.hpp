#pragma once
// An address as a CBOR/JSON value (16 bytes, binary), for the codecs of the
// engine's own messages.

#include <array>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "troupe/address.hpp"

namespace troupe::internal {

inline nlohmann::json address_json(const address& a) {
  const auto b = a.to_bytes();
  return nlohmann::json::binary(
      std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(b.data()),
                                reinterpret_cast<const std::uint8_t*>(b.data()) + b.size()));
}

inline address json_address(const nlohmann::json& j) {
  const auto& bin = j.get_binary();
  if (bin.size() != address::wire_size) throw std::invalid_argument("an address is 16 bytes");
  std::array<std::byte, address::wire_size> b;
  std::memcpy(b.data(), bin.data(), b.size());
  return address::from_bytes(b);
}

}  // namespace troupe::internal
