#pragma once
// The envelope: one message in flight, with its routing header. Allocated
// from the pool with the payload placed right after the header, so one
// allocation carries both. Locally, a message is moved into its envelope
// once and handed to the handler from there: nothing is serialized.

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "troupe/address.hpp"
#include "troupe/internal/pool.hpp"
#include "troupe/result.hpp"

namespace troupe::internal {

/// The header every message travels with, in front of its payload.
inline constexpr std::size_t envelope_header_bytes = 56;

/// Where a payload of `align` sits behind the header, and how many bytes
/// (whole cache lines) an envelope for a payload of `size` takes. Whole
/// lines: an envelope crossing shards must not share a line with the one
/// its sender writes next. A payload of up to 8 bytes fits the first line.
constexpr std::size_t payload_offset(std::size_t align) noexcept {
  return align <= 8 ? envelope_header_bytes : 64;
}
constexpr std::size_t envelope_bytes(std::size_t size, std::size_t align) noexcept {
  return (payload_offset(align) + size + 63) & ~std::size_t{63};
}

/// What the engine knows of a message type: how to destroy it, its name,
/// and where its payload sits. One static instance per type; its address is
/// the type's identity.
struct message_type {
  const std::type_info* info;
  std::uint32_t offset;  ///< of the payload in its envelope
  std::uint32_t bytes;   ///< of the whole envelope, for the pool
  void (*destroy)(void* payload) noexcept;
};

template <class T>
void destroy_payload(void* p) noexcept {
  std::launder(static_cast<T*>(p))->~T();
}

template <class T>
inline constexpr message_type message_type_of{
    &typeid(T), static_cast<std::uint32_t>(payload_offset(alignof(T))),
    static_cast<std::uint32_t>(envelope_bytes(sizeof(T), alignof(T))), &destroy_payload<T>};

template <class T>
constexpr const message_type* type_id() noexcept {
  return &message_type_of<T>;
}

/// The readable name of a message type, e.g. "app::add".
std::string type_name(const message_type* t);
/// The demangled name of any type.
std::string type_name_of(const std::type_info& t);

enum envelope_flag : std::uint64_t {
  flag_reply = 1u << 0,    ///< answers request `request` of `target`
  flag_control = 1u << 1,  ///< for the shard itself, not an actor
  flag_retried = 1u << 2,  ///< failed once; the next failure makes it poison
};

struct envelope {
  envelope* next;  ///< intrusive link: mailbox, queues
  const message_type* type;
  address sender;
  address target;
  std::uint64_t request : 61;  ///< ask id; 0 for a tell
  std::uint64_t flags : 3;

  void* payload() noexcept { return reinterpret_cast<std::byte*>(this) + type->offset; }
  const void* payload() const noexcept {
    return reinterpret_cast<const std::byte*>(this) + type->offset;
  }
  template <class T>
  T& as() noexcept {
    return *std::launder(static_cast<T*>(payload()));
  }
  bool is_reply() const noexcept { return (flags & flag_reply) != 0; }
};
static_assert(sizeof(envelope) == envelope_header_bytes);

/// Moves `msg` into a fresh envelope. Any thread.
template <class T>
envelope* make_envelope(T&& msg, const address& sender, const address& target) {
  using M = std::remove_cvref_t<T>;
  static_assert(alignof(M) <= 16, "A message type may not need more than 16-byte alignment.");
  const message_type* type = type_id<M>();
  void* mem = pool_allocate(type->bytes);
  auto* e = ::new (mem) envelope{nullptr, type, sender, target, 0, 0};
  ::new (e->payload()) M(std::forward<T>(msg));
  return e;
}

/// Destroys the payload and frees the envelope. Any thread.
inline void destroy_envelope(envelope* e) noexcept {
  const message_type* type = e->type;
  type->destroy(e->payload());
  pool_deallocate(e, type->bytes);
}

/// The payload of an error reply: an ask that could not be answered.
struct ask_failure {
  errc code;
  std::string text;
};

/// Turns a reply envelope into a result, taking ownership of `e`.
template <class R>
result<R> take_reply(envelope* e) {
  if (e->type == type_id<R>()) {
    result<R> r(std::move(e->as<R>()));
    destroy_envelope(e);
    return r;
  }
  if (e->type == type_id<ask_failure>()) {
    auto& f = e->as<ask_failure>();
    result<R> r(error(f.code, std::move(f.text)));
    destroy_envelope(e);
    return r;
  }
  std::string text = "asked for a reply of type " + type_name(type_id<R>()) +
                     ", the handler answered with " + type_name(e->type);
  destroy_envelope(e);
  return error(errc::type_mismatch, std::move(text));
}

}  // namespace troupe::internal
