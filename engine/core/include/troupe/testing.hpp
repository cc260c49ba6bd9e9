#pragma once
// A deterministic fixture for actor tests (CAF's test::fixture::deterministic
// is the model): one inline engine that runs nothing by itself. The test
// puts messages in mailboxes, runs them one at a time, says what the next
// one must be, and moves virtual time; a test reads like the protocol it
// checks, with no sleeps and no polling.
//
//     TEST_CASE_METHOD(troupe::testing::fixture, "a ping is answered with a pong", "[app]") {
//       troupe::address b = spawn<ponger>();
//       troupe::address a = spawn<pinger>(b);
//       inject(troupe::address{}, a, start{});
//       expect<start>().to(a);
//       expect<ping>().with(ping{1}).from(a).to(b);
//       expect<pong>().from(b).to(a);
//       CHECK(mail_count() == 0);
//     }
//
// The order. The *next message* is the first reply waiting for an actor's
// ask, else the first message in the mailbox of the first actor in the run
// queue; after each message an actor that has more goes to the back of the
// queue. So the order is fixed by what was sent when, never by a clock or a
// thread.
//
// What runs without being asked. Before each call looks at mailboxes or
// runs a message, the engine does its own work: messages told from outside
// (sys.tell) reach their mailboxes, spawns are installed (on_start runs),
// control messages (watches, children's exits, restarts) are handled, and
// timers due at now() fire. No handler for a message runs until the test
// dispatches it, and time moves only by advance_time() or set_time(). A
// coroutine handler resumed by a dispatched reply or by a timer that fires
// runs on, then and there, to its next co_await.
//
// A mismatch. expect() throws testing::expectation_failed, whose text names
// the expected and the actual message (type, sender, receiver, and values
// that can be printed with <<). It needs no test framework: Catch2 reports
// an exception that leaves a test case as a failure with that text, and
// REQUIRE_THROWS_WITH / REQUIRE_NOTHROW see it. allow() never throws.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <source_location>
#include <sstream>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

#include "troupe/address.hpp"
#include "troupe/internal/envelope.hpp"
#include "troupe/message.hpp"
#include "troupe/system.hpp"

namespace troupe::testing {

/// What expect() throws when the next message is not the one it names.
/// The text says where, what was expected, and what is next instead.
class expectation_failed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// A value that with() compares a message M to: not a predicate on M, and
/// `message == value` is a test of equality.
template <class V, class M>
concept match_value = !std::predicate<V, const M&> && requires(const M& m, const V& v) {
  { m == v } -> std::convertible_to<bool>;
};

/// A value that an ostream prints (failure texts show such values).
template <class T>
concept printable = requires(std::ostream& os, const T& t) {
  os << t;
};

template <class M>
class expectation;

/// One inline engine (system_options::inline_mode, forced on) that a test
/// drives by hand, one message at a time, on virtual time.
///
/// Threads: the fixture, and `sys`, are used from the thread that made the
/// fixture (a test case's) and no other. Ownership: the fixture owns the
/// engine. Its destructor runs no message still waiting: those in
/// mailboxes, and replies, become dead letters (shutting_down), since what
/// their handlers would touch may be gone (a test case's locals end before
/// its fixture). Then the engine stops as system::stop() does: actors get
/// their exit requests, and coroutine handlers still suspended resume (a
/// sleep ends, an ask fails); what those touch must outlive the fixture.
///
/// With Catch2, `TEST_CASE_METHOD(troupe::testing::fixture, ...)` makes
/// the members below callable by name; for other options, derive:
/// `struct my_fixture : troupe::testing::fixture { my_fixture() : fixture(my_options()) {} };`.
class fixture {
 public:
  /// Starts the engine with `options`, in inline mode whatever they say.
  /// Throws what troupe::system's constructor throws.
  explicit fixture(system_options options = {});
  ~fixture();
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  /// The engine: spawn, tell (from outside: the sender is null), counters,
  /// stop. Its ask() runs the engine on its own until the reply comes
  /// (every message, and virtual time up to the timeout): fine for a last
  /// check, but it takes the order out of the test's hands.
  troupe::system sys;

  /// Spawns an A from `args` (system::spawn) and installs it: its
  /// on_start has run when this returns, and what on_start sent waits in
  /// mailboxes. A: an actor class.
  template <class A, class... Args>
  address spawn(spawn_options o, Args&&... args) {
    const address a = sys.spawn<A>(o, std::forward<Args>(args)...);
    settle();
    return a;
  }
  template <class A, class... Args>
  address spawn(Args&&... args) {
    return spawn<A>(spawn_options{}, std::forward<Args>(args)...);
  }

  /// Puts `msg` from `from` (a null address: from outside) at the back of
  /// `to`'s mailbox and runs nothing. As with a tell, a message for no live
  /// actor (or a full bounded mailbox) is a dead letter. M: a message type.
  template <class M>
  void inject(const address& from, const address& to, M msg) {
    static_assert(message<M>,
                  "inject<M>: M must be a message type: an object type (no reference, array or "
                  "const) that is nothrow move-constructible.");
    inject_envelope(internal::make_envelope(std::move(msg), from, to));
  }

  /// Runs exactly the next message (see the order above); false if none
  /// was waiting. A handler that throws is handled by its supervisor, as
  /// always; nothing is thrown here.
  bool dispatch_message();
  /// Runs messages until none is waiting; time does not move. Returns how
  /// many ran. Actors that keep telling each other keep it running.
  std::size_t dispatch_all();

  /// The next message must be an M, for the receiver given to
  /// expectation::to(); `.with()` and `.from()` narrow it. If it is, it
  /// runs; if not, nothing runs and expectation_failed is thrown, naming
  /// the expected and the actual message and `loc` (the caller's line).
  /// M: a message type; for a reply to an ask, the reply's type.
  template <class M>
  expectation<M> expect(std::source_location loc = std::source_location::current()) {
    static_assert(message<M>, "expect<M>: M must be a message type (troupe::message).");
    return expectation<M>(*this, true, loc);
  }
  /// The same, but a mismatch only makes to() return false; nothing runs.
  template <class M>
  expectation<M> allow(std::source_location loc = std::source_location::current()) {
    static_assert(message<M>, "allow<M>: M must be a message type (troupe::message).");
    return expectation<M>(*this, false, loc);
  }

  /// Messages waiting for the actor at `a` (its mailbox, and replies to
  /// its asks; not the one a waiting coroutine handler holds). 0 when no
  /// actor lives there.
  std::size_t mail_count(const address& a);
  /// Messages waiting for all actors.
  std::size_t mail_count();
  /// True while an actor lives at `a` (this incarnation of it).
  bool alive(const address& a);

  /// Moves virtual time on by `d`. Timers due by then fire in deadline
  /// order, each at its own time (a coroutine that sleeps again from a
  /// timer counts from there): a wakeup's message goes to its mailbox,
  /// unhandled; a sleep resumes its coroutine; an ask times out; a delayed
  /// restart happens. Returns how many fired (cancelled wakeups do not
  /// count). d >= 0.
  std::size_t advance_time(duration d);
  /// Moves virtual time to `t` the same way; std::invalid_argument if `t`
  /// is before now(). Returns how many timers fired.
  std::size_t set_time(std::chrono::steady_clock::time_point t);
  /// Virtual time: the engine's clock, which starts at the clock's epoch.
  std::chrono::steady_clock::time_point now() const;

 private:
  template <class M>
  friend class expectation;

  /// An expectation without its type: what evaluate() checks.
  struct clause {
    const std::type_info& type;
    const std::optional<address>& from;
    const void* with;                                     ///< the value test; null: any value
    bool (*test)(const void* with, const void* payload);  ///< applies `with`
    const std::string& with_text;                         ///< the expected value, if printable
    std::string (*show)(const void* payload);             ///< prints an M; null if it cannot
    bool required;                                        ///< expect (throws), not allow
    const std::source_location& loc;
  };
  /// Runs the next message if it matches `c` and is for `to`.
  bool evaluate(const clause& c, const address& to);
  void settle();
  void inject_envelope(internal::envelope* e);
};

/// One expect<M>() or allow<M>() clause being written: made by the
/// fixture and used in the same expression, step by step:
/// `expect<M>().with(v).from(a).to(b)`. Each step takes the clause and
/// returns it; to() evaluates it. It refers to its fixture, which must
/// outlive it. M: a message type.
template <class M>
class expectation {
 public:
  /// The message must equal `value` (`message == value`, e.g. an M, or an
  /// int for an M comparable with ints).
  template <match_value<M> V>
  expectation with(V value) && {
    if constexpr (printable<V>) {
      std::ostringstream os;
      os << value;
      with_text_ = "with value " + os.str();
    } else {
      with_text_ = "with the given value";
    }
    auto v = std::make_shared<V>(std::move(value));  // the value may be move-only
    with_ = [v](const M& m) { return static_cast<bool>(m == *v); };
    return std::move(*this);
  }
  /// The message must satisfy `pred` (called with the message, on this
  /// thread, while to() runs).
  template <std::predicate<const M&> P>
  expectation with(P pred) && {
    with_text_ = "matching the given predicate";
    auto p = std::make_shared<P>(std::move(pred));
    with_ = [p](const M& m) { return static_cast<bool>((*p)(m)); };
    return std::move(*this);
  }
  /// The message must come from `sender`; a null address: from outside.
  expectation from(const address& sender) && {
    from_ = sender;
    return std::move(*this);
  }
  /// The message must be for `receiver`. Evaluates the clause: when the
  /// next message matches it runs, and to() returns true. When not,
  /// nothing runs, and expect() throws expectation_failed, allow() returns
  /// false.
  bool to(const address& receiver) && {
    const fixture::clause c{typeid(M), from_,      with_ ? &with_ : nullptr,
                            &test,     with_text_, printable<M> ? &show : nullptr,
                            required_, loc_};
    return fix_->evaluate(c, receiver);
  }

 private:
  friend class fixture;
  expectation(fixture& f, bool required, std::source_location loc) noexcept
      : fix_(&f), required_(required), loc_(loc) {}

  static bool test(const void* with, const void* payload) {
    return (*static_cast<const std::function<bool(const M&)>*>(with))(
        *static_cast<const M*>(payload));
  }
  static std::string show(const void* payload) {
    if constexpr (printable<M>) {
      std::ostringstream os;
      os << *static_cast<const M*>(payload);
      return os.str();
    } else {
      return {};
    }
  }

  fixture* fix_;
  bool required_;
  std::source_location loc_;
  std::optional<address> from_;
  std::function<bool(const M&)> with_;
  std::string with_text_;
};

}  // namespace troupe::testing
