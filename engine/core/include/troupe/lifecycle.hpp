#pragma once
// How actors end and what the engine tells others about it: supervision
// policies, the child-exited, poison and dead-letter notices.

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include "troupe/address.hpp"
#include "troupe/internal/envelope.hpp"

namespace troupe {

/// Why a message went to the dead letters.
enum class dead_reason : std::uint8_t {
  no_such_actor,  ///< the address never named a live actor here
  actor_stopped,  ///< the actor ended before handling it
  unhandled,      ///< the actor has no handler for its type
  shutting_down,  ///< the engine stopped first
  no_route,       ///< the address is on another engine and there is no link to it
  late_reply,     ///< a reply that came after its ask ended
  mailbox_full,   ///< the actor's bounded mailbox had no room
  unknown_type,   ///< its type is not registered for the wire (sending or receiving engine)
  peer_lost,      ///< queued for a link to another engine when the link died
  count_
};
const char* to_string(dead_reason r) noexcept;

/// What a supervisor does with a child whose handler threw.
enum class directive : std::uint8_t {
  restart,   ///< a fresh instance, same address, same mailbox
  stop,      ///< the child ends ("failed: ...")
  escalate,  ///< the child ends and its parent fails in turn
};

/// Which children a restart concerns.
enum class supervision_scope : std::uint8_t {
  one_for_one,  ///< only the one that failed
  all_for_one,  ///< the one that failed and all its siblings
};

/// A parent's rules for its children (Erlang's supervisor flags, Akka's
/// supervisor strategy). The default is Thespian's: restart, and give the
/// failing message once more to the fresh instance.
///
///     troupe::supervision_policy supervision() const override {
///       return {.scope = troupe::supervision_scope::all_for_one, .max_restarts = 3};
///     }
struct supervision_policy {
  directive on_failure = directive::restart;
  supervision_scope scope = supervision_scope::one_for_one;
  /// The message that failed goes once more to the fresh instance; when
  /// it fails again it returns to its sender as poison.
  bool retry_once = true;
  /// More than this many restarts of one child within `within`: the child
  /// ends ("restart limit reached") and the failure escalates.
  std::uint32_t max_restarts = 10;
  std::chrono::milliseconds within{1000};
  /// Delay before a restart: `backoff` for the first in a window, doubling
  /// up to `backoff_max`. Zero: restart at once. The mailbox keeps filling.
  std::chrono::microseconds backoff{0};
  std::chrono::microseconds backoff_max{0};
  /// Optional: picks the directive from the exception (rethrow it to look
  /// at it); when null, `on_failure` applies to every failure.
  directive (*decide)(std::exception_ptr failure) = nullptr;

  friend bool operator==(const supervision_policy&, const supervision_policy&) = default;
};

/// How an actor ended.
enum class exit_kind : std::uint8_t {
  normal,         ///< it called stop()
  requested,      ///< it handled an exit_request
  failed,         ///< a handler threw and the policy said stop or escalate
  restart_limit,  ///< it failed more often than its supervisor allows
  stopped,        ///< its supervisor ended it (its parent restarted or failed)
  shutdown,       ///< the engine stopped
};
const char* to_string(exit_kind k) noexcept;

/// Told to a parent when one of its children has ended (Thespian's
/// ChildActorExited). An actor that does not list it is not bothered.
struct child_exited {
  address child;
  exit_kind kind;
  /// "stopped", "failed: std::runtime_error: boom", ...
  std::string reason;
};

/// A message of any type, owned: the payload of poison and dead-letter
/// notices. Move-only.
class message_ref {
 public:
  message_ref() noexcept = default;
  explicit message_ref(internal::envelope* e) noexcept : e_(e) {}
  message_ref(message_ref&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  message_ref& operator=(message_ref&& o) noexcept {
    if (this != &o) {
      reset();
      e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
  }
  ~message_ref() { reset(); }

  /// The message if it is an M, else null.
  template <class M>
  const M* get() const noexcept {
    return e_ && e_->type == internal::type_id<M>() ? &e_->as<M>() : nullptr;
  }
  template <class M>
  bool is() const noexcept {
    return get<M>() != nullptr;
  }
  /// The message's type, e.g. "app::work".
  std::string type_name() const { return e_ ? internal::type_name(e_->type) : "none"; }
  explicit operator bool() const noexcept { return e_ != nullptr; }

 private:
  void reset() noexcept {
    if (e_) internal::destroy_envelope(std::exchange(e_, nullptr));
  }
  internal::envelope* e_ = nullptr;
};

/// A message that made its receiver fail (after the retry, if the policy
/// gives one), returned to its sender (Thespian's PoisonMessage). An ask
/// gets an errc::failed error instead.
struct poison {
  address target;      ///< the actor that failed handling it
  std::string reason;  ///< "std::runtime_error: boom"
  message_ref message;
};

/// What a registered dead-letter handler receives for each dead letter.
struct dead_letter {
  address target;
  address sender;
  dead_reason reason;
  message_ref message;
};

/// Told to the sender (when it is an actor that lists it) of a message that
/// found the receiver's bounded mailbox full.
struct undelivered {
  address target;
  dead_reason reason;
  message_ref message;
};

}  // namespace troupe
