#include <catch2/catch.hpp>

#include <coroutine>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/gate.hpp"
#include "troupe/actor.hpp"

using troupe::internal::detached;
using troupe::internal::gate;

namespace {

/// Suspends until the test resumes the handle it leaves in `slot`: work
/// that waits on something outside (a socket, a timer).
struct park {
  std::coroutine_handle<>* slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { *slot = h; }
  void await_resume() const noexcept {}
};

/// Background work as link_table runs it: a detached coroutine whose
/// entry into the gate lives in its frame.
detached background(gate::holder, std::coroutine_handle<>* slot) { co_await park{slot}; }

/// Awaits the gate's close() and notes when it resumed.
detached close_and_note(gate* g, std::vector<std::string>* log, std::string name) {
  co_await g->close();
  log->push_back(name);
}

/// A coroutine whose frame the test owns: it starts at once and stays
/// suspended at its end until the object is destroyed.
class owned {
 public:
  struct promise_type {
    owned get_return_object() noexcept {
      return owned(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  owned(owned&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  owned(const owned&) = delete;
  ~owned() {
    if (h_) h_.destroy();
  }
  bool done() const noexcept { return h_.done(); }

 private:
  explicit owned(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

owned wait_for_close(gate* g, bool* resumed) {
  co_await g->close();
  *resumed = true;
}

}  // namespace

TEST_CASE("a gate counts its entries and refuses new ones once closed", "[core]") {
  gate g;
  CHECK_FALSE(g.is_closed());
  REQUIRE(g.try_enter());
  g.enter();
  CHECK(g.count() == 2);
  g.close();
  CHECK(g.is_closed());
  CHECK_FALSE(g.try_enter());
  CHECK_FALSE(g.try_hold().has_value());
  CHECK_THROWS_WITH(g.enter(), "entering a closed troupe gate: its work is shutting down");
  CHECK_THROWS_AS(g.hold(), std::logic_error);
  CHECK(g.count() == 2);  // refused entries are not counted
  g.leave();
  g.leave();
  CHECK(g.count() == 0);
}

TEST_CASE("a gate holder leaves once, when the holder it was moved to is destroyed", "[core]") {
  gate g;
  {
    gate::holder a = g.hold();
    CHECK(g.count() == 1);
    gate::holder b = std::move(a);
    CHECK(g.count() == 1);
    std::optional<gate::holder> c = g.try_hold();
    REQUIRE(c.has_value());
    CHECK(g.count() == 2);
    b = std::move(*c);  // b's own entry leaves; it takes over c's
    CHECK(g.count() == 1);
  }
  CHECK(g.count() == 0);
}

TEST_CASE("awaiting close() on an empty gate does not suspend", "[core]") {
  gate g;
  std::vector<std::string> log;
  close_and_note(&g, &log, "closed");
  CHECK(log == std::vector<std::string>{"closed"});
  CHECK(g.is_closed());
}

TEST_CASE("close() resumes its waiter when the last background coroutine ends, not before",
          "[core]") {
  gate g;
  std::coroutine_handle<> first, second;
  background(g.hold(), &first);
  background(g.hold(), &second);
  CHECK(g.count() == 2);  // both suspended, each holding its entry

  std::vector<std::string> log;
  close_and_note(&g, &log, "closed");
  CHECK(log.empty());
  CHECK_FALSE(g.try_enter());

  first.resume();  // ends, and its frame with its entry
  CHECK(g.count() == 1);
  CHECK(log.empty());
  second.resume();
  CHECK(g.count() == 0);
  CHECK(log == std::vector<std::string>{"closed"});
}

TEST_CASE("every waiter on a gate's close() resumes, in the order it began to wait", "[core]") {
  gate g;
  std::coroutine_handle<> work;
  background(g.hold(), &work);
  std::vector<std::string> log;
  close_and_note(&g, &log, "a");
  close_and_note(&g, &log, "b");  // closing a closed gate only waits too
  close_and_note(&g, &log, "c");
  CHECK(log.empty());
  work.resume();
  CHECK(log == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("a coroutine destroyed while it awaits close() is not resumed", "[core]") {
  gate g;
  std::coroutine_handle<> work;
  background(g.hold(), &work);
  bool kept_resumed = false, dropped_resumed = false;
  owned kept = wait_for_close(&g, &kept_resumed);
  {
    owned dropped = wait_for_close(&g, &dropped_resumed);
    CHECK_FALSE(dropped.done());
  }  // its frame, and its place among the waiters, end here
  work.resume();
  CHECK(kept_resumed);
  CHECK(kept.done());
  CHECK_FALSE(dropped_resumed);
}

TEST_CASE("a coroutine resumed by a gate's close() may destroy the gate", "[core]") {
  struct owner_of_gate {
    std::unique_ptr<gate> g = std::make_unique<gate>();
  } owner;
  std::coroutine_handle<> work;
  background(owner.g->hold(), &work);
  struct closer {
    static detached run(owner_of_gate* o, bool* done) {
      co_await o->g->close();
      o->g.reset();  // the gate ends inside the leave() that resumed us
      *done = true;
    }
  };
  bool done = false;
  closer::run(&owner, &done);
  CHECK_FALSE(done);
  work.resume();
  CHECK(done);
  CHECK(owner.g == nullptr);
}
