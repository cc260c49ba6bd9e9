// The wire forms of the convention's messages between its members
// (cluster/convention.hpp), registered when a system takes the convention.

#include <array>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "cluster/convention.hpp"
#include "core/address_json.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

void to_json(nlohmann::json& j, const member_record& m) {
  j = {{"engine", m.info.engine},       {"link", m.info.link_address},
       {"caps", m.info.capabilities},   {"leader", m.info.leader},
       {"actors", m.info.actors},       {"shards", m.info.shards},
       {"agent", address_json(m.agent)}};
}
void from_json(const nlohmann::json& j, member_record& m) {
  m.info.engine = j.at("engine").get<std::uint32_t>();
  m.info.link_address = j.at("link").get<std::string>();
  m.info.capabilities = j.at("caps");
  if (!m.info.capabilities.is_object()) throw std::invalid_argument("capabilities: not an object");
  m.info.leader = j.at("leader").get<bool>();
  m.info.actors = j.at("actors").get<std::uint64_t>();
  m.info.shards = j.at("shards").get<std::uint32_t>();
  m.agent = json_address(j.at("agent"));
}
void to_json(nlohmann::json& j, const conv_hello& m) { j = {{"me", m.me}}; }
void from_json(const nlohmann::json& j, conv_hello& m) { m.me = j.at("me").get<member_record>(); }
void to_json(nlohmann::json& j, const conv_view& m) {
  nlohmann::json gone = nlohmann::json::array();
  for (const auto& g : m.gone)
    gone.push_back({{"engine", g.engine}, {"left", g.left}, {"why", g.why}});
  j = {{"epoch", m.epoch}, {"members", m.members}, {"gone", std::move(gone)}};
}
void from_json(const nlohmann::json& j, conv_view& m) {
  m.epoch = j.at("epoch").get<std::uint64_t>();
  m.members = j.at("members").get<std::vector<member_record>>();
  m.gone.clear();
  for (const auto& g : j.at("gone")) {
    m.gone.push_back({g.at("engine").get<std::uint32_t>(), g.at("left").get<bool>(),
                      g.at("why").get<std::string>()});
  }
}
void to_json(nlohmann::json& j, const conv_caps& m) {
  j = {{"engine", m.engine}, {"caps", m.capabilities}};
}
void from_json(const nlohmann::json& j, conv_caps& m) {
  m.engine = j.at("engine").get<std::uint32_t>();
  m.capabilities = j.at("caps");
  if (!m.capabilities.is_object()) throw std::invalid_argument("capabilities: not an object");
}
void to_json(nlohmann::json& j, const conv_load& m) {
  j = {{"engine", m.engine}, {"actors", m.actors}, {"shards", m.shards}};
}
void from_json(const nlohmann::json& j, conv_load& m) {
  m.engine = j.at("engine").get<std::uint32_t>();
  m.actors = j.at("actors").get<std::uint64_t>();
  m.shards = j.at("shards").get<std::uint32_t>();
}
void register_module_offer(const std::string& name) {
  // A module is megabytes: its bytes cross as they are, after a small CBOR
  // header (u32 length first), not as a CBOR byte string built and parsed
  // byte by byte on the links' shard.
  wire_codec c{name, type_id<module_offer>(), nullptr, nullptr, 0, false};
  c.kind = wire_codec::form::bytes;
  c.encode = [](const void* p, std::string& out) {
    const auto& m = *static_cast<const module_offer*>(p);
    const std::vector<std::uint8_t> head = nlohmann::json::to_cbor(
        nlohmann::json{{"name", m.name}, {"file", m.file_name}, {"sha256", m.sha256}});
    const auto n = static_cast<std::uint32_t>(head.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    out.append(head.begin(), head.end());
    out += m.bytes;
  };
  c.decode = [](const std::byte* b, std::size_t n, std::string& error) -> envelope* {
    if (n < 4) {
      error = "a module offer shorter than its header";
      return nullptr;
    }
    std::uint32_t head = 0;
    for (int i = 0; i < 4; ++i) head |= std::to_integer<std::uint32_t>(b[i]) << (8 * i);
    if (head > n - 4) {
      error = "a module offer's header runs past its end";
      return nullptr;
    }
    try {
      const auto* u = reinterpret_cast<const std::uint8_t*>(b);
      const nlohmann::json j = nlohmann::json::from_cbor(u + 4, u + 4 + head);
      module_offer m;
      m.name = j.at("name").get<std::string>();
      m.file_name = j.at("file").get<std::string>();
      m.sha256 = j.at("sha256").get<std::string>();
      m.bytes.assign(reinterpret_cast<const char*>(b) + 4 + head, n - 4 - head);
      return decode_with(std::move(m));
    } catch (const std::exception& ex) {
      error = ex.what();
      return nullptr;
    }
  };
  register_codec(std::move(c));
}

}  // namespace troupe::internal

namespace troupe {

void to_json(nlohmann::json& j, const log_line& m) {
  j = {{"engine", m.engine},
       {"actor", internal::address_json(m.actor)},
       {"level", static_cast<int>(m.level)},
       {"text", m.text}};
}
void from_json(const nlohmann::json& j, log_line& m) {
  m.engine = j.at("engine").get<std::uint32_t>();
  m.actor = internal::json_address(j.at("actor"));
  m.level = static_cast<log_level>(j.at("level").get<int>() & 3);
  m.text = j.at("text").get<std::string>();
}
}  // namespace troupe

namespace troupe::internal {

void register_convention_messages() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_message<conv_hello>("troupe.conv.hello");
    register_message<conv_view>("troupe.conv.view");
    register_message<conv_caps>("troupe.conv.caps");
    register_message<conv_load>("troupe.conv.load");
    register_module_offer("troupe.conv.module");
    register_message<log_line>("troupe.conv.log");
  });
}

}  // namespace troupe::internal
