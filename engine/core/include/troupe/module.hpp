#pragma once
// Actor modules: a shared object (.so) that registers actor types and
// message types by name when an engine loads it (troupe serve --module,
// the config's "modules", or system::load_module at run time).
//
//     #include <troupe/module.hpp>
//
//     struct greeter : troupe::actor<greeter, std::string> {
//       std::string on(const std::string& who) { return "hello, " + who; }
//     };
//
//     TROUPE_MODULE("greetings") {
//       registry.actor<greeter>("greetings.greeter");
//     }
//
// The module exports one C entry point, troupe_module_v1, which returns a
// descriptor: the module ABI it was built for, the engine version whose
// headers it was compiled with, its name and its registration function.
// The engine refuses a module built for another ABI or version.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "troupe/actor.hpp"
#include "troupe/version.hpp"
#include "troupe/wire.hpp"

namespace troupe {

namespace internal {

template <class A>
actor_type::made make_actor_from(const nlohmann::json& args, std::string& error) {
  if constexpr (std::is_constructible_v<A, const nlohmann::json&>) {
    try {
      return {new A(args), factory_for<A>(args)};
    } catch (const std::exception& ex) {
      error = ex.what();
      return {};
    }
  } else {
    if (!args.is_null()) {
      error = "it takes no arguments";
      return {};
    }
    return {new A(), factory_for<A>()};
  }
}

template <class A>
actor_type actor_type_of() {
  static_assert(
      std::is_base_of_v<actor_base, A> &&
          (std::is_default_constructible_v<A> || std::is_constructible_v<A, const nlohmann::json&>),
      "an actor type registered by name must be default-constructible or "
      "constructible from const nlohmann::json& (its arguments)");
  static const char tag = 0;
  actor_type t{&make_actor_from<A>, &tag};
  if constexpr (requires(const nlohmann::json& j) {
                  { A::capability_check(j, j) } -> std::convertible_to<bool>;
                }) {
    t.fits = [](const nlohmann::json& capabilities, const nlohmann::json& args) -> bool {
      try {
        return A::capability_check(capabilities, args);
      } catch (...) {
        return false;  // a check that throws does not fit
      }
    };
  }
  return t;
}

}  // namespace internal

/// Lets other engines, the configuration and the admin spawn A here by
/// `type_name` (system::spawn_on, system::spawn_type). A is
/// default-constructible, or constructible from `const nlohmann::json&`:
/// its arguments. A may have `static bool capability_check(const
/// nlohmann::json& capabilities, const nlohmann::json& args)`: placement
/// over the convention then puts it only on engines it accepts. Throws
/// std::invalid_argument if the name belongs to another class.
template <class A>
void register_actor(std::string type_name) {
  internal::register_actor_type(std::move(type_name), internal::actor_type_of<A>());
}

/// Bumped whenever what a module may rely on changes incompatibly.
inline constexpr std::uint32_t module_abi = 2;

/// What a module registers; applied by the engine only if every name is
/// free, so that a module loads whole or not at all.
class module_registry {
 public:
  /// An actor type spawned by name (see register_actor).
  template <class A>
  void actor(std::string type_name) {
    actors_.push_back({std::move(type_name), internal::actor_type_of<A>()});
  }
  /// A message type that may cross between engines under `wire_name`.
  template <class M>
  void message(std::string wire_name) {
    messages_.push_back({wire_name, [wire_name] { register_message<M>(wire_name); }});
  }

  struct actor_entry {
    std::string name;
    internal::actor_type type;
  };
  struct message_entry {
    std::string name;
    std::function<void()> apply;
  };
  const std::vector<actor_entry>& actors() const noexcept { return actors_; }
  const std::vector<message_entry>& messages() const noexcept { return messages_; }

 private:
  std::vector<actor_entry> actors_;
  std::vector<message_entry> messages_;
};

struct module_descriptor {
  std::uint32_t abi;
  const char* engine_version;
  const char* name;
  void (*register_types)(module_registry&);
};

/// What the engine knows of a loaded module.
struct module_info {
  std::string name;
  std::string path;
  /// SHA-256 of the file as it was loaded, in hex: the convention sends a
  /// module to an engine that lacks it, and that engine checks it.
  std::string sha256;
  std::vector<std::string> actor_types;
  std::vector<std::string> message_types;
};

}  // namespace troupe

/// Defines the module's entry point; the block that follows registers its
/// types through `registry`.
#define TROUPE_MODULE(NAME)                                                                       \
  static void troupe_module_register(::troupe::module_registry& registry);                        \
  extern "C" __attribute__((visibility("default"))) const ::troupe::module_descriptor*            \
  troupe_module_v1() {                                                                            \
    static const ::troupe::module_descriptor d{::troupe::module_abi, TROUPE_VERSION_STRING, NAME, \
                                               &troupe_module_register};                          \
    return &d;                                                                                    \
  }                                                                                               \
  static void troupe_module_register(::troupe::module_registry& registry)
