// Across engines: actor types that other engines may spawn here by name.

#include <array>
#include <cstring>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "core/system_impl.hpp"

namespace troupe::internal {

namespace {

struct actor_types {
  std::shared_mutex lock;
  std::unordered_map<std::string, actor_type> by_name;
};

actor_types& the_types() {
  static actor_types t;
  return t;
}

}  // namespace

void register_actor_type(std::string type_name, actor_type type) {
  if (type_name.empty()) throw std::invalid_argument("register_actor: an empty type name");
  actor_types& t = the_types();
  std::unique_lock g(t.lock);
  auto [it, fresh] = t.by_name.try_emplace(std::move(type_name), type);
  if (!fresh && it->second.tag != type.tag) {
    throw std::invalid_argument("actor type name '" + it->first +
                                "' is already registered for another class");
  }
}

std::optional<actor_type> actor_type_named(std::string_view type_name) noexcept {
  actor_types& t = the_types();
  std::shared_lock g(t.lock);
  auto it = t.by_name.find(std::string(type_name));
  if (it == t.by_name.end()) return std::nullopt;
  return it->second;
}

void unregister_actor_type(const std::string& type_name) {
  actor_types& t = the_types();
  std::unique_lock g(t.lock);
  t.by_name.erase(type_name);
}

envelope* make_remote_spawn(std::uint32_t engine, const address& sender, std::string type_name,
                            const spawn_options& o) {
  return make_remote_spawn(engine, sender, std::move(type_name), o, nlohmann::json());
}

envelope* make_remote_spawn(std::uint32_t engine, const address& sender, std::string type_name,
                            const spawn_options& o, const nlohmann::json& args) {
  envelope* e = make_envelope(remote_spawn{std::move(type_name), args, o.shard,
                                           static_cast<std::uint8_t>(o.where), o.mailbox_limit},
                              sender, address(engine, 0, 0, 0));
  e->flags |= flag_control;
  return e;
}

void shard::handle_remote_spawn(envelope* e) {
  const remote_spawn& m = e->as<remote_spawn>();
  const std::optional<actor_type> type = actor_type_named(m.type);
  if (!type) {
    queue_failure(
        *e, errc::not_found,
        "engine " + std::to_string(engine_) + " has no actor type named '" + m.type + "'");
  } else if (phase_ != shutdown_phase::running) {
    queue_failure(*e, errc::shutting_down, "the engine is shutting down");
  } else if (m.where > static_cast<std::uint8_t>(placement::least_loaded)) {
    queue_failure(*e, errc::misuse, "unknown placement " + std::to_string(m.where));
  } else {
    std::string why;
    const actor_type::made made = type->make(m.args, why);
    if (!made.actor) {
      queue_failure(*e, errc::failed, "cannot make a '" + m.type + "': " + why);
    } else {
      spawn_options o;
      o.shard = m.shard;
      o.where = static_cast<placement>(m.where);
      o.mailbox_limit = m.mailbox_limit;
      const address a = spawn_actor(this, nullptr, made.actor, made.factory, address{}, nullptr, o);
      send_reply(*e, make_envelope(address(a), e->target, e->sender));
    }
  }
}

result<address> system_impl::spawn_type(const std::string& type_name, const nlohmann::json& args,
                                        const spawn_options& o, const std::string& name) {
  const std::optional<actor_type> type = actor_type_named(type_name);
  if (!type) return error(errc::not_found, "no actor type named '" + type_name + "'");
  std::string why;
  const actor_type::made made = type->make(args, why);
  if (!made.actor) return error(errc::failed, "cannot make a '" + type_name + "': " + why);
  if (name.empty())
    return spawn_actor(nullptr, this, made.actor, made.factory, address{}, nullptr, o);
  return take_reply<address>(
      outside_ask(make_name_claim(nullptr, this, address{}, name, made.actor, made.factory, o),
                  std::chrono::seconds(10)));
}

}  // namespace troupe::internal
