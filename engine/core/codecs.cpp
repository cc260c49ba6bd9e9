// The registry of message types by name (troupe/wire.hpp): how a message
// crosses to another engine, and the codecs of the core's own messages.
// The frames that carry them are the remote layer's (engine/remote/frame.hpp).

#include <bit>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <unordered_map>

#include "core/address_json.hpp"
#include "core/system_impl.hpp"
#include "troupe/lifecycle.hpp"
#include "troupe/message.hpp"

namespace troupe::internal {

namespace {

struct registry {
  std::shared_mutex lock;
  std::unordered_map<const message_type*, const wire_codec*> by_type;
  std::unordered_map<std::string_view, const wire_codec*> by_name;
  std::vector<std::unique_ptr<wire_codec>> owned;
};

registry& the_registry() {
  static registry r;
  return r;
}

// The engine's own messages cross like any other.
struct builtins {
  builtins() {
    register_message<done>("troupe.done");
    register_message<exit_request>("troupe.exit_request");
    register_message<address>("troupe.address");
    register_message<std::string>("troupe.string");
    register_message<std::vector<std::byte>>("troupe.bytes");
    register_message<bool>("troupe.bool");
    register_message<int>("troupe.int");
    register_message<std::int64_t>("troupe.int64");
    register_message<std::uint64_t>("troupe.uint64");
    register_message<double>("troupe.double");
  }
};

void ensure_builtins();

}  // namespace

}  // namespace troupe::internal

namespace troupe {
// ask_failure and terminated carry strings: CBOR through to_json/from_json.
namespace internal {
void to_json(nlohmann::json& j, const ask_failure& f) {
  j = {{"code", static_cast<int>(f.code)}, {"text", f.text}};
}
void from_json(const nlohmann::json& j, ask_failure& f) {
  f.code = static_cast<errc>(j.at("code").get<int>());
  f.text = j.at("text").get<std::string>();
}
}  // namespace internal
void to_json(nlohmann::json& j, const terminated& t) {
  const auto b = t.who.to_bytes();
  j = {{"who", nlohmann::json::binary(std::vector<std::uint8_t>(
                   reinterpret_cast<const std::uint8_t*>(b.data()),
                   reinterpret_cast<const std::uint8_t*>(b.data()) + b.size()))},
       {"reason", t.reason}};
}
void from_json(const nlohmann::json& j, terminated& t) {
  const auto& bin = j.at("who").get_binary();
  if (bin.size() != address::wire_size) throw std::invalid_argument("bad address in terminated");
  std::array<std::byte, address::wire_size> b;
  std::memcpy(b.data(), bin.data(), b.size());
  t.who = address::from_bytes(b);
  t.reason = j.at("reason").get<std::string>();
}
}  // namespace troupe

namespace troupe::internal {

namespace {
void ensure_builtins() {
  static const bool once = [] {
    builtins b;
    register_message<ask_failure>("troupe.ask_failure");
    register_message<terminated>("troupe.terminated");
    register_message<watch_request>("troupe.watch");
    register_message<remote_spawn>("troupe.spawn");
    register_message<name_lookup>("troupe.name_lookup");
    register_message<name_reserve>("troupe.name_reserve");
    register_message<name_bind>("troupe.name_bind");
    register_message<name_release>("troupe.name_release");
    register_message<name_forget>("troupe.name_forget");
    register_message<name_handoff>("troupe.name_handoff");
    return true;
  }();
  (void)once;
}
}  // namespace

void register_codec(wire_codec c) {
  registry& r = the_registry();
  std::unique_lock g(r.lock);
  if (auto it = r.by_name.find(c.name); it != r.by_name.end()) {
    if (it->second->type == c.type) return;  // the same registration again
    throw std::invalid_argument("message name '" + c.name + "' is already registered for " +
                                type_name(it->second->type) + ", not " + type_name(c.type));
  }
  if (auto it = r.by_type.find(c.type); it != r.by_type.end()) {
    throw std::invalid_argument(type_name(c.type) + " is already registered as '" +
                                it->second->name + "', not '" + c.name + "'");
  }
  auto owned = std::make_unique<wire_codec>(std::move(c));
  r.by_type[owned->type] = owned.get();
  r.by_name[owned->name] = owned.get();
  r.owned.push_back(std::move(owned));
}

void retire_codec(const std::string& name) {
  registry& r = the_registry();
  std::unique_lock g(r.lock);
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) return;
  const wire_codec* c = it->second;
  r.by_name.erase(it);
  r.by_type.erase(c->type);
  // The object stays (links may hold it); it only stops being used.
  std::atomic_ref<bool>(const_cast<wire_codec*>(c)->retired).store(true, std::memory_order_release);
}

// The frame path has no way to report a failure to register the built-in
// codecs or to take the registry's lock; either leaves no engine to run, so
// both lookups are noexcept and such a failure ends the process.
// NOLINTNEXTLINE(bugprone-exception-escape)
const wire_codec* codec_for(const message_type* t) noexcept {
  ensure_builtins();
  registry& r = the_registry();
  std::shared_lock g(r.lock);
  auto it = r.by_type.find(t);
  return it == r.by_type.end() ? nullptr : it->second;
}

// NOLINTNEXTLINE(bugprone-exception-escape): as codec_for
const wire_codec* codec_named(std::string_view name) noexcept {
  ensure_builtins();
  registry& r = the_registry();
  std::shared_lock g(r.lock);
  auto it = r.by_name.find(name);
  return it == r.by_name.end() ? nullptr : it->second;
}

}  // namespace troupe::internal

namespace troupe::internal {

// The directory's and remote spawn's messages between engines.
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
  if (!m.args.is_null()) j["args"] = m.args;
}
void from_json(const nlohmann::json& j, remote_spawn& m) {
  m.type = j.at("type").get<std::string>();
  m.shard = j.at("shard").get<std::int32_t>();
  m.where = j.at("where").get<std::uint8_t>();
  m.mailbox_limit = j.at("limit").get<std::uint32_t>();
  m.args = j.contains("args") ? j.at("args") : nlohmann::json();
}

}  // namespace troupe::internal
