// Across engines: actor types that other engines may spawn here by name.

#include <array>
#include <cstring>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "system_impl.hpp"

namespace troupe::internal {

namespace {

struct actor_types {
  std::shared_mutex lock;
  std::unordered_map<std::string, actor_factory*> by_name;
};

actor_types& the_types() {
  static actor_types t;
  return t;
}

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

void register_actor_type(std::string type_name, actor_factory* f) {
  if (type_name.empty()) throw std::invalid_argument("register_actor: an empty type name");
  actor_types& t = the_types();
  std::unique_lock g(t.lock);
  auto [it, fresh] = t.by_name.try_emplace(std::move(type_name), f);
  if (!fresh && it->second != f) {
    throw std::invalid_argument("actor type name '" + it->first +
                                "' is already registered for another class");
  }
}

actor_factory* actor_type_named(std::string_view type_name) noexcept {
  actor_types& t = the_types();
  std::shared_lock g(t.lock);
  auto it = t.by_name.find(std::string(type_name));
  return it == t.by_name.end() ? nullptr : it->second;
}

envelope* make_remote_spawn(std::uint32_t engine, const address& sender, std::string type_name,
                            const spawn_options& o) {
  envelope* e = make_envelope(remote_spawn{std::move(type_name), o.shard,
                                           static_cast<std::uint8_t>(o.where), o.mailbox_limit},
                              sender, address(engine, 0, 0, 0));
  e->flags |= flag_control;
  return e;
}

void shard::handle_remote_spawn(envelope* e) {
  const remote_spawn& m = e->as<remote_spawn>();
  actor_factory* f = actor_type_named(m.type);
  if (!f) {
    queue_failure(
        *e, errc::not_found,
        "engine " + std::to_string(engine_) + " has no actor type named '" + m.type + "'");
  } else if (phase_ != shutdown_phase::running) {
    queue_failure(*e, errc::shutting_down, "the engine is shutting down");
  } else if (m.where > static_cast<std::uint8_t>(placement::least_loaded)) {
    queue_failure(*e, errc::misuse, "unknown placement " + std::to_string(m.where));
  } else {
    spawn_options o;
    o.shard = m.shard;
    o.where = static_cast<placement>(m.where);
    o.mailbox_limit = m.mailbox_limit;
    const address a = spawn_actor(this, nullptr, f->make(), f, address{}, nullptr, o);
    send_reply(*e, make_envelope(address(a), e->target, e->sender));
  }
}

}  // namespace troupe::internal
