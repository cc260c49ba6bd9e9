#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "troupe/address.hpp"
#include "troupe/internal/envelope.hpp"
#include "troupe/internal/runtime.hpp"
#include "troupe/lifecycle.hpp"
#include "troupe/message.hpp"
#include "troupe/result.hpp"
#include "troupe/task.hpp"

namespace troupe {

namespace internal {
class shard;
struct actor_access;

template <class D, class M>
concept has_handler = requires(D& d, M& m) {
  d.on(m);
};

template <class D>
concept has_on_start = requires(D& d) {
  d.on_start();
};

template <class D, class M>
constexpr bool check_handler() {
  static_assert(
      message<M>,
      "A type listed in troupe::actor<Self, Msgs...> is not a message: a message must be "
      "an object type (no reference, array or const) that is nothrow move-constructible.");
  static_assert(has_handler<D, M>,
                "An actor lists a message type in troupe::actor<Self, Msgs...> but has no "
                "handler for it: add `void on(const M&)` (or one returning a reply or a "
                "troupe::task<R>) to the actor class.");
  return true;
}

/// Runs a coroutine handler to its end and tells the shard; the frame
/// destroys itself.
struct detached {
  struct promise_type : pooled_frame {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

/// Makes the fresh instance of an actor for a restart, from copies of the
/// arguments it was first spawned with.
template <class A>
struct default_factory final : actor_factory {
  actor_base* make() const override;
  static default_factory instance;
};
template <class A>
default_factory<A> default_factory<A>::instance;

template <class A, class... Args>
struct copy_factory final : actor_factory {
  explicit copy_factory(const Args&... a) : args(a...) {}
  actor_base* make() const override;
  void release() noexcept override { delete this; }
  static void* operator new(std::size_t n) { return pool_allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { pool_deallocate(p, n); }
  std::tuple<Args...> args;
};

/// A factory for A from `args`, or null when A cannot be made again from
/// them (an argument that cannot be copied): such an actor is not restarted.
template <class A, class... Args>
actor_factory* factory_for(const Args&... args) {
  if constexpr (sizeof...(Args) == 0) {
    return &default_factory<A>::instance;
  } else if constexpr ((std::is_copy_constructible_v<std::decay_t<Args>> && ...) &&
                       std::is_constructible_v<A, const std::decay_t<Args>&...>) {
    return new copy_factory<A, std::decay_t<Args>...>(args...);
  } else {
    return nullptr;
  }
}

template <class R>
struct is_result : std::false_type {};
template <class T>
struct is_result<result<T>> : std::true_type {};

/// A handler's return value as the reply; a handler that returns
/// result<T> answers with its T, or ends the ask with its error.
template <class R>
void reply_with(shard& s, const actor_base& a, const envelope& request, R&& value) {
  if (request.request == 0 || request.sender.is_null()) return;
  if (failing(a)) return;  // fail_with(): the ask ends with the failure instead
  if constexpr (is_result<std::decay_t<R>>::value) {
    if (value.ok()) {
      send_reply(s, request,
                 make_envelope(std::move(value.value()), request.target, request.sender));
    } else {
      send_reply(s, request,
                 make_envelope(ask_failure{value.err().code(), value.err().text()}, request.target,
                               request.sender));
    }
  } else {
    send_reply(s, request, make_envelope(std::forward<R>(value), request.target, request.sender));
  }
}

template <class T>
detached run_handler_task(actor_base* self, shard* s, envelope* e, task<T> t);

}  // namespace internal

/// The base of every actor: its mailbox, its place on a shard, and the
/// calls a handler may make (tell, ask, spawn, timers, stop).
///
/// Threads: an actor lives on one shard for its whole life; everything here
/// is called from its own handlers, on that shard's thread. The engine owns
/// the object (allocated with `spawn`, destroyed after it stops).
class actor_base {
 public:
  virtual ~actor_base() = default;
  actor_base(const actor_base&) = delete;
  actor_base& operator=(const actor_base&) = delete;

  // Actor objects come from the pool; the virtual destructor hands the
  // dynamic size to the sized delete.
  static void* operator new(std::size_t n) { return internal::pool_allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { internal::pool_deallocate(p, n); }

  /// This actor's address.
  address self() const noexcept { return self_; }
  /// The sender of the message being handled (null if sent from outside).
  const address& sender() const noexcept { return current_->sender; }
  std::uint16_t shard_index() const noexcept { return self_.shard(); }
  std::size_t shard_count() const noexcept { return internal::shard_count(*home_shard()); }

  /// Sends `msg` to `to`; never blocks. Order is kept per sender/receiver.
  template <message M>
  void tell(const address& to, M msg) {
    internal::send(*home_shard(), internal::make_envelope(std::move(msg), self(), to));
  }

  /// Awaitable ask from a coroutine handler: `co_await ask<R>(to, msg, 1s)`
  /// gives result<R>: the reply, a timeout, or an error naming the cause.
  /// The actor takes no other message while it waits; its shard runs on.
  template <class R>
  class ask_awaiter final : internal::pending_ask {
   public:
    ask_awaiter(internal::shard* s, internal::envelope* req, duration timeout) noexcept
        : shard_(s), req_(req), timeout_(timeout) {}
    ask_awaiter(const ask_awaiter&) = delete;
    ~ask_awaiter() {
      if (req_) internal::destroy_envelope(req_);  // created but never awaited
    }
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      waiter_ = h;
      internal::start_ask(*shard_, *this, std::exchange(req_, nullptr), timeout_);
    }
    result<R> await_resume() { return internal::take_reply<R>(reply_); }

   private:
    void complete(internal::envelope* reply) noexcept override {
      reply_ = reply;
      waiter_.resume();
    }
    internal::shard* shard_;
    internal::envelope* req_;
    duration timeout_;
    internal::envelope* reply_ = nullptr;
    std::coroutine_handle<> waiter_;
  };

  // GCC 12 moves a temporary that lives across a co_await into the
  // coroutine frame byte by byte, which breaks types that point into
  // themselves (a short std::string does): with it, name such a message
  // first (`msg m{...}; co_await ask<R>(to, std::move(m), t);`) rather than
  // writing `co_await ask<R>(to, msg{...}, t)`.
  template <class R, message M>
  [[nodiscard]] ask_awaiter<R> ask(const address& to, M msg, duration timeout) {
    return ask_awaiter<R>(home_shard(), internal::make_envelope(std::move(msg), self(), to),
                          timeout);
  }

  /// Creates an actor of type A from `args` and returns its address at once;
  /// messages sent to it before it starts wait for it.
  /// The new actor is this one's child: this actor's supervision() decides
  /// what happens when it fails, and it ends before this one does.
  template <class A, class... Args>
  address spawn(spawn_options o, Args&&... args) {
    static_assert(std::is_base_of_v<actor_base, A>,
                  "spawn<A>: A must be an actor class, derived from troupe::actor<A, Msgs...>.");
    internal::actor_factory* f = internal::factory_for<A>(args...);
    const supervision_policy policy = supervision();
    return internal::spawn_actor(home_shard(), nullptr, new A(std::forward<Args>(args)...), f,
                                 self(), &policy, o);
  }
  template <class A, class... Args>
  address spawn(Args&&... args) {
    return spawn<A>(spawn_options{}, std::forward<Args>(args)...);
  }

  /// The actor named `name`: the one that lives, or a new A made from
  /// `args` (Thespian's globalName). Two spawns of one name, from any
  /// shards at once, yield one actor. Awaitable from a coroutine handler:
  /// `address a = (co_await spawn_named<A>("db", {})).value();`. A named
  /// actor is supervised by the root guardian, not by whoever named it
  /// first; its name is freed when it ends (a restart keeps it).
  template <class A, class... Args>
  [[nodiscard]] ask_awaiter<address> spawn_named(std::string name, spawn_options o,
                                                 Args&&... args) {
    static_assert(std::is_base_of_v<actor_base, A>,
                  "spawn_named<A>: A must be an actor class, derived from troupe::actor.");
    internal::actor_factory* f = internal::factory_for<A>(args...);
    internal::envelope* e = internal::make_name_claim(
        home_shard(), nullptr, self(), std::move(name), new A(std::forward<Args>(args)...), f, o);
    return ask_awaiter<address>(home_shard(), e, std::chrono::seconds(10));
  }

  /// A new actor of the type registered as `type_name` (register_actor) on
  /// engine `engine` (this one too), placed there by `o`. Awaitable from a
  /// coroutine handler; errc::not_found if that engine has no such type,
  /// errc::peer_lost if there is no link to it. Its supervisor is that
  /// engine's root guardian.
  [[nodiscard]] ask_awaiter<address> spawn_on(std::uint32_t engine, std::string type_name,
                                              spawn_options o = {},
                                              duration timeout = std::chrono::seconds(10)) {
    return ask_awaiter<address>(
        home_shard(), internal::make_remote_spawn(engine, self(), std::move(type_name), o),
        timeout);
  }

  /// The same, with arguments for the type's constructor (register_actor).
  [[nodiscard]] ask_awaiter<address> spawn_type_on(std::uint32_t engine, std::string type_name,
                                                   const nlohmann::json& args, spawn_options o = {},
                                                   duration timeout = std::chrono::seconds(10)) {
    return ask_awaiter<address>(
        home_shard(), internal::make_remote_spawn(engine, self(), std::move(type_name), o, args),
        timeout);
  }

  /// The address of the actor named `name`, or errc::not_found. Answers
  /// seen on this shard are cached until that actor ends. Awaitable from a
  /// coroutine handler.
  task<result<address>> lookup_name(std::string name, duration timeout = std::chrono::seconds(5)) {
    if (auto hit = internal::cached_name(*home_shard(), name)) co_return *hit;
    internal::envelope* e = internal::make_name_lookup(home_shard(), nullptr, self(), name);
    result<address> r = co_await ask_awaiter<address>(home_shard(), e, timeout);
    if (r) internal::cache_name(*home_shard(), name, r.value());
    co_return r;
  }

  /// Delivers `payload` to this actor after `after` (Thespian's wakeupAfter).
  template <message M>
  timer_id wakeup_after(duration after, M payload) {
    return internal::start_timer(*home_shard(), after,
                                 internal::make_envelope(std::move(payload), self(), self()));
  }
  /// True if the timer had not fired yet; its payload is then discarded.
  bool cancel_timer(timer_id id) noexcept { return internal::cancel_timer(*home_shard(), id); }

  /// Asks to be told (troupe::terminated) when `target` ends: exactly once,
  /// and at once if it has already ended. List troupe::terminated among the
  /// actor's messages to handle it.
  void watch(const address& target) { internal::watch(*home_shard(), self(), target); }

  /// Fails this actor once the current handler returns, as if it had
  /// thrown (Erlang's exit(Reason)): its supervisor's policy applies, and
  /// the message goes back as poison with `reason`. No exception is
  /// thrown, so it costs far less than one.
  void fail_with(std::string reason) { internal::request_failure(*this, std::move(reason)); }

  /// Logs `text` as this actor's (with its address); in a convention that
  /// forwards logs (troupe::convention_options::forward_logs) its leader
  /// logs it too, with this engine's id.
  void write_log(log_level level, std::string text) {
    internal::actor_log(*home_shard(), self(), level, std::move(text));
  }

  /// Passes the message being handled on to `to`, once this handler
  /// returns, with its original sender: an ask is answered by `to`, and
  /// what this handler returns is not a reply. Routers and pools use it.
  void forward(const address& to) { internal::forward_current(*this, to); }

  /// Ends this actor once the current message is handled: its children
  /// end first, then it does. Messages still in its mailbox, and any sent
  /// later, go to the dead letters.
  void stop() noexcept { internal::request_stop(*this); }

  /// Dead letters of the whole engine come to this actor as
  /// troupe::dead_letter notices (Thespian's handleDeadLetters).
  void handle_dead_letters() { internal::set_dead_letter_handler(*home_shard(), self()); }

 protected:
  actor_base() = default;
  /// The policy for this actor's children, read when it spawns one.
  virtual supervision_policy supervision() const { return {}; }
  /// True if the actor has a handler for messages of type `t`.
  virtual bool accepts(const internal::message_type* t) const noexcept {
    (void)t;
    return false;
  }
  /// Runs the handler for `e`; false when this actor has none for its type.
  virtual bool dispatch(internal::envelope& e) = 0;
  /// Called on the actor's shard once it is installed, before any message.
  virtual void started() {}
  /// Stackful actors return where their fiber lives.
  virtual internal::fiber_state** fiber_slot() noexcept { return nullptr; }
  /// The actor's shard: the one whose thread runs its handlers, so the
  /// calling thread's shard (the object keeps no pointer of its own).
  static internal::shard* home_shard() noexcept { return internal::this_shard; }

 private:
  friend class internal::shard;
  friend struct internal::actor_access;

  internal::envelope* mbox_head_ = nullptr;
  internal::envelope* mbox_tail_ = nullptr;
  actor_base* next_ready_ = nullptr;
  internal::envelope* current_ = nullptr;
  address self_;  // kept whole: every tell copies it as the sender in one move
  std::uint16_t state_ = 0;
  std::uint32_t queued_ = 0;  // messages in the mailbox (bounded mailboxes)
};

/// An actor class with typed handlers: list the message types it handles,
/// and give it one `on(const M&)` per type. A handler's return value is the
/// reply to an ask (void: troupe::done); a handler returning troupe::task<R>
/// is a coroutine and may co_await asks and sleeps. A message of a type not
/// listed is dead-lettered with reason "unhandled".
///
///     struct counter : troupe::actor<counter, add, get> {
///       int total = 0;
///       void on(const add& m) { total += m.n; }
///       int on(const get&) { return total; }
///     };
///
/// Derived: the actor class itself (CRTP). Msgs: distinct message types.
template <class Derived, class... Msgs>
class actor : public actor_base {
 protected:
  bool dispatch(internal::envelope& e) override {
    static_assert((internal::check_handler<Derived, Msgs>() && ...));
    if ((try_handle<Msgs>(e) || ...)) return true;
    if (e.type == internal::type_id<exit_request>()) {
      stop();
      return true;
    }
    return false;
  }

  void started() override {
    if constexpr (internal::has_on_start<Derived>) static_cast<Derived&>(*this).on_start();
  }

  bool accepts(const internal::message_type* t) const noexcept override {
    return ((t == internal::type_id<Msgs>()) || ...);
  }

 private:
  template <class M>
  bool try_handle(internal::envelope& e) {
    if (e.type != internal::type_id<M>()) return false;
    if constexpr (std::is_same_v<M, exit_request>) stop();
    Derived& self = static_cast<Derived&>(*this);
    M& msg = e.as<M>();
    using R = decltype(self.on(msg));
    internal::shard& s = *this->home_shard();
    if constexpr (std::is_void_v<R>) {
      self.on(msg);
      internal::reply_with(s, *this, e, done{});
    } else if constexpr (is_task<R>::value) {
      internal::begin_task(*this);
      internal::run_handler_task(this, &s, &e, self.on(msg));
    } else {
      internal::reply_with(s, *this, e, self.on(msg));
    }
    return true;
  }
};

namespace internal {

template <class A>
actor_base* default_factory<A>::make() const {
  return new A();
}

template <class A, class... Args>
actor_base* copy_factory<A, Args...>::make() const {
  return std::apply([](const Args&... a) { return new A(a...); }, args);
}

template <class T>
detached run_handler_task(actor_base* self, shard* s, envelope* e, task<T> t) {
  failure f;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(t);
      reply_with(*s, *self, *e, done{});
    } else {
      reply_with(*s, *self, *e, co_await std::move(t));
    }
  } catch (const std::exception& ex) {
    f = caught(&ex);
  } catch (...) {
    f = caught(nullptr);
  }
  end_task(*self, e, std::move(f));
}

}  // namespace internal

/// Awaitable from a coroutine handler: resumes after `d`; the shard runs
/// other actors meanwhile. Only on a shard's thread.
struct sleep_for {
  duration d;
  bool await_ready() const noexcept { return d <= duration::zero(); }
  void await_suspend(std::coroutine_handle<> h) const;
  void await_resume() const noexcept {}
};

/// An actor whose handlers run on a fiber (Boost.Context) of their own, so
/// that they may call blocking_ask() anywhere down an ordinary call stack.
/// It never blocks its shard's thread: a blocked fiber is parked and the
/// shard runs other actors. Same addresses, messages and lifecycle as actor.
template <class Derived, class... Msgs>
class stackful_actor : public actor<Derived, Msgs...> {
 public:
  ~stackful_actor() override { internal::destroy_fiber(fiber_); }

 protected:
  internal::fiber_state** fiber_slot() noexcept override { return &fiber_; }

 private:
  internal::fiber_state* fiber_ = nullptr;
};

/// From a stackful actor's handler, at any depth: sends `msg` as an ask and
/// blocks this actor (not its shard) until the reply, the timeout, or an
/// error. Elsewhere it returns errc::misuse at once.
template <class R, message M>
result<R> blocking_ask(const address& to, M msg, duration timeout) {
  struct waiter final : internal::pending_ask {
    internal::envelope* reply = nullptr;
    void complete(internal::envelope* r) noexcept override { reply = r; }
  } w;
  if (!internal::fiber_ask(w, internal::make_envelope(std::move(msg), address{}, to), timeout)) {
    return error(errc::misuse, "blocking_ask called outside a stackful actor's handler");
  }
  return internal::take_reply<R>(w.reply);
}

}  // namespace troupe
