#pragma once
// Messages on the wire between engines: each type that may cross is
// registered under a name, and the name picks its codec on the other side.
// Locally nothing is ever encoded.
//
//     struct add { int n; };                        // trivially copyable: its bytes
//     struct order { std::string item; int qty; };  // to_json/from_json: CBOR
//     void to_json(nlohmann::json& j, const order& o) { j = {{"item", o.item}, {"qty", o.qty}}; }
//     void from_json(const nlohmann::json& j, order& o) { ... }
//
//     troupe::register_message<add>("shop.add");
//     troupe::register_message<order>("shop.order");

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "troupe/internal/envelope.hpp"

namespace troupe {

namespace internal {

/// How one registered type crosses the wire.
struct wire_codec {
  std::string name;
  const message_type* type;
  /// Appends the payload's encoding to `out`.
  void (*encode)(const void* payload, std::string& out);
  /// A fresh envelope holding the decoded message, or null with `error`
  /// saying what is wrong with the bytes.
  envelope* (*decode)(const std::byte* bytes, std::size_t n, std::string& error);
  /// > 0: every encoding is the object's own bytes, this many of them (the
  /// frame writer then copies them without calling `encode`).
  std::size_t fixed_size = 0;
  /// Set when the module that registered it is unloaded: links that had
  /// learnt its name treat it as unknown from then on.
  bool retired = false;
  /// How it encodes: the bytes of a byte string, CBOR of the object's
  /// JSON, or the object's own bytes.
  enum class form : std::uint8_t { bytes, json, object } kind = form::object;
};

/// Adds `c`; throws std::invalid_argument if its name is taken by another
/// type. Any thread; meant for start-up and module loading.
void register_codec(wire_codec c);
// noexcept: a failure to set up the registry ends the process (codecs.cpp).
// NOLINTBEGIN(bugprone-exception-escape)
const wire_codec* codec_for(const message_type* t) noexcept;
const wire_codec* codec_named(std::string_view name) noexcept;
// NOLINTEND(bugprone-exception-escape)
/// Removes the codec named `name` (its module is being unloaded).
void retire_codec(const std::string& name);
inline bool live_codec(const wire_codec* c) noexcept {
  return c && !std::atomic_ref<const bool>(c->retired).load(std::memory_order_acquire);
}

template <class M>
concept json_message = requires(const M& m, M& out, nlohmann::json& j, const nlohmann::json& cj) {
  to_json(j, m);
  from_json(cj, out);
};

template <class M>
envelope* decode_with(M&& m) {
  return make_envelope(std::forward<M>(m), address{}, address{});
}

}  // namespace internal

/// Registers M to cross between engines under `name`. The codec follows
/// from the type: bytes for raw byte strings (std::string,
/// std::vector<std::byte>), CBOR for types with nlohmann-json
/// to_json/from_json, the object's bytes for trivially copyable types (both
/// engines must share the type's layout). Throws std::invalid_argument if
/// `name` belongs to another type.
template <class M>
void register_message(std::string name) {
  using internal::envelope;
  internal::wire_codec c{std::move(name), internal::type_id<M>(), nullptr, nullptr, 0, false};
  if constexpr (std::is_same_v<M, std::string> || std::is_same_v<M, std::vector<std::byte>>) {
    c.kind = internal::wire_codec::form::bytes;
    c.encode = [](const void* p, std::string& out) {
      const M& m = *static_cast<const M*>(p);
      out.append(reinterpret_cast<const char*>(m.data()), m.size());
    };
    c.decode = [](const std::byte* b, std::size_t n, std::string&) -> envelope* {
      return internal::decode_with(M(reinterpret_cast<const typename M::value_type*>(b),
                                     reinterpret_cast<const typename M::value_type*>(b) + n));
    };
  } else if constexpr (internal::json_message<M>) {
    c.kind = internal::wire_codec::form::json;
    c.encode = [](const void* p, std::string& out) {
      nlohmann::json j;
      to_json(j, *static_cast<const M*>(p));
      nlohmann::json::to_cbor(j, out);
    };
    c.decode = [](const std::byte* b, std::size_t n, std::string& error) -> envelope* {
      try {
        nlohmann::json j = nlohmann::json::from_cbor(reinterpret_cast<const std::uint8_t*>(b),
                                                     reinterpret_cast<const std::uint8_t*>(b) + n);
        M m{};
        from_json(j, m);
        return internal::decode_with(std::move(m));
      } catch (const std::exception& ex) {
        error = ex.what();
        return nullptr;
      }
    };
  } else {
    static_assert(std::is_trivially_copyable_v<M> && std::is_default_constructible_v<M>,
                  "register_message<M>: M must be trivially copyable, a byte string, or have "
                  "nlohmann-json to_json/from_json functions.");
    c.encode = [](const void* p, std::string& out) {
      out.append(static_cast<const char*>(p), sizeof(M));
    };
    c.fixed_size = sizeof(M);
    c.decode = [](const std::byte* b, std::size_t n, std::string& error) -> envelope* {
      if (n != sizeof(M)) {
        error = "expected " + std::to_string(sizeof(M)) + " bytes, got " + std::to_string(n);
        return nullptr;
      }
      M m;
      std::memcpy(static_cast<void*>(&m), b, sizeof(M));
      return internal::decode_with(std::move(m));
    };
  }
  internal::register_codec(std::move(c));
}

}  // namespace troupe
