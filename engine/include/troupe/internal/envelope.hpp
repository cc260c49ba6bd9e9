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

/// What the engine knows of a message type: how to destroy it and its name.
/// One static instance per type; its address is the type's identity.
struct message_type {
  const std::type_info* info;
  std::size_t size;
  void (*destroy)(void* payload) noexcept;
};

template <class T>
void destroy_payload(void* p) noexcept {
  std::launder(static_cast<T*>(p))->~T();
}

template <class T>
inline constexpr message_type message_type_of{&typeid(T), sizeof(T), &destroy_payload<T>};

template <class T>
constexpr const message_type* type_id() noexcept {
  return &message_type_of<T>;
}

/// The readable name of a message type, e.g. "app::add".
std::string type_name(const message_type* t);
/// The demangled name of any type.
std::string type_name_of(const std::type_info& t);

enum envelope_flag : std::uint32_t {
  flag_reply = 1u << 0,    ///< answers request `request` of `target`
  flag_control = 1u << 1,  ///< for the shard itself, not an actor
};

struct alignas(16) envelope {
  envelope* next;  ///< intrusive link: mailbox, queues
  const message_type* type;
  address sender;
  address target;
  std::uint64_t request;  ///< ask id; 0 for a tell
  std::uint32_t flags;
  std::uint32_t bytes;  ///< allocation size, for the pool

  void* payload() noexcept { return reinterpret_cast<std::byte*>(this) + sizeof(envelope); }
  template <class T>
  T& as() noexcept {
    return *std::launder(static_cast<T*>(payload()));
  }
  bool is_reply() const noexcept { return (flags & flag_reply) != 0; }
};
static_assert(sizeof(envelope) == 64, "the envelope header is one cache line");

/// Moves `msg` into a fresh envelope. Any thread.
template <class T>
envelope* make_envelope(T&& msg, const address& sender, const address& target) {
  using M = std::remove_cvref_t<T>;
  static_assert(alignof(M) <= alignof(envelope),
                "A message type may not need more than 16-byte alignment.");
  // Whole cache lines: an envelope crossing shards must not share a line
  // with one its sender is writing next.
  const std::size_t bytes = (sizeof(envelope) + sizeof(M) + 63) & ~std::size_t{63};
  void* mem = pool_allocate(bytes);
  auto* e = ::new (mem)
      envelope{nullptr, type_id<M>(), sender, target, 0, 0, static_cast<std::uint32_t>(bytes)};
  ::new (e->payload()) M(std::forward<T>(msg));
  return e;
}

/// Destroys the payload and frees the envelope. Any thread.
inline void destroy_envelope(envelope* e) noexcept {
  e->type->destroy(e->payload());
  pool_deallocate(e, e->bytes);
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
