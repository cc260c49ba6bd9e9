// The wire forms of the engine's own messages between engines: spawns and
// the directory's names.

#include <array>
#include <cstring>
#include <stdexcept>

#include "system_impl.hpp"

namespace troupe::internal {

namespace {

nlohmann::json address_json(const address& a) {
  const auto b = a.to_bytes();
  return nlohmann::json::binary(
      std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(b.data()),
                                reinterpret_cast<const std::uint8_t*>(b.data()) + b.size()));
}

address json_address(const nlohmann::json& j) {
  const auto& bin = j.get_binary();
  if (bin.size() != address::wire_size) throw std::invalid_argument("an address is 16 bytes");
  std::array<std::byte, address::wire_size> b;
  std::memcpy(b.data(), bin.data(), b.size());
  return address::from_bytes(b);
}

}  // namespace

void to_json(nlohmann::json& j, const name_handoff& m) {
  j = {{"name", m.name},
       {"who", address_json(m.who)},
       {"subscribers", m.subscribers},
       {"hops", m.hops}};
}
void from_json(const nlohmann::json& j, name_handoff& m) {
  m.name = j.at("name").get<std::string>();
  m.who = json_address(j.at("who"));
  m.subscribers = j.at("subscribers").get<std::vector<std::uint32_t>>();
  m.hops = j.at("hops").get<std::uint32_t>();
}
void to_json(nlohmann::json& j, const name_lookup& m) { j = {{"name", m.name}}; }
void from_json(const nlohmann::json& j, name_lookup& m) {
  m.name = j.at("name").get<std::string>();
}
void to_json(nlohmann::json& j, const name_reserve& m) { j = {{"name", m.name}}; }
void from_json(const nlohmann::json& j, name_reserve& m) {
  m.name = j.at("name").get<std::string>();
}
void to_json(nlohmann::json& j, const name_bind& m) {
  j = {{"name", m.name}, {"who", address_json(m.who)}};
}
void from_json(const nlohmann::json& j, name_bind& m) {
  m.name = j.at("name").get<std::string>();
  m.who = json_address(j.at("who"));
}
void to_json(nlohmann::json& j, const name_release& m) {
  j = {{"name", m.name}, {"who", address_json(m.who)}};
}
void from_json(const nlohmann::json& j, name_release& m) {
  m.name = j.at("name").get<std::string>();
  m.who = json_address(j.at("who"));
}
void to_json(nlohmann::json& j, const name_forget& m) {
  j = {{"name", m.name}, {"who", address_json(m.who)}};
}
void from_json(const nlohmann::json& j, name_forget& m) {
  m.name = j.at("name").get<std::string>();
  m.who = json_address(j.at("who"));
}

void to_json(nlohmann::json& j, const remote_spawn& m) {
  j = {{"type", m.type}, {"shard", m.shard}, {"where", m.where}, {"limit", m.mailbox_limit}};
}
void from_json(const nlohmann::json& j, remote_spawn& m) {
  m.type = j.at("type").get<std::string>();
  m.shard = j.at("shard").get<std::int32_t>();
  m.where = j.at("where").get<std::uint8_t>();
  m.mailbox_limit = j.at("limit").get<std::uint32_t>();
}

}  // namespace troupe::internal
