#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "troupe/testing.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct get {};
struct ping {};
struct wait_for_release {};

struct pinger : troupe::actor<pinger, ping> {
  int on(const ping&) { return 7; }
};

/// Holds one asker for an hour of virtual time: a reply that comes late,
/// with no thread and no flag.
struct slow_gate : troupe::actor<slow_gate, wait_for_release> {
  troupe::task<int> on(const wait_for_release&) {
    co_await troupe::sleep_for{1h};
    co_return 1;
  }
};

struct waiter : troupe::actor<waiter, get> {
  address gate_addr;
  int* got;
  waiter(address g, int* out) : gate_addr(g), got(out) {}
  troupe::task<> on(const get&) {
    auto r = co_await ask<int>(gate_addr, wait_for_release{}, 2h);
    *got = r.value() * 100;
  }
};

/// Asks `to` for get when told to go, and keeps the answer.
struct go {};
struct client : troupe::actor<client, go> {
  address to;
  int* got;
  client(address t, int* out) : to(t), got(out) {}
  troupe::task<> on(const go&) { *got = (co_await ask<int>(to, get{}, 1s)).value(); }
};

struct nested : troupe::actor<nested, get> {
  address p;
  explicit nested(address a) : p(a) {}
  troupe::task<int> twice() {
    int a = (co_await ask<int>(p, ping{}, 1s)).value();
    int b = (co_await ask<int>(p, ping{}, 1s)).value();
    co_return a + b;
  }
  troupe::task<int> on(const get&) { co_return co_await twice() + 1; }
};

}  // namespace

TEST_CASE_METHOD(troupe::testing::fixture,
                 "a suspended coroutine handler does not stall other actors on its shard",
                 "[engine][coroutine]") {
  int waited_for = 0;
  address g = spawn<slow_gate>();
  address w = spawn<waiter>(g, &waited_for);
  address p = spawn<pinger>();
  inject(address{}, w, get{});
  expect<get>().to(w);                       // w asks g, and waits
  expect<wait_for_release>().from(w).to(g);  // g sleeps an hour
  // While both wait, the one shard runs another actor, message by message.
  for (int i = 0; i < 1000; ++i) {
    inject(address{}, p, ping{});
    expect<ping>().to(p);
  }
  CHECK(waited_for == 0);
  CHECK(advance_time(1h) == 1);  // g wakes and answers
  expect<int>().with(1).from(g).to(w);
  CHECK(waited_for == 100);
}

TEST_CASE_METHOD(troupe::testing::fixture,
                 "a waiting coroutine handler keeps its actor's mailbox queued",
                 "[engine][coroutine]") {
  struct slow_counter : troupe::actor<slow_counter, get, ping> {
    int n = 0;
    troupe::task<int> on(const get&) {
      co_await troupe::sleep_for{20ms};
      co_return n;  // no ping may have been handled while we slept
    }
    void on(const ping&) { ++n; }
  };
  int first = -1;
  address c = spawn<slow_counter>();
  address q = spawn<client>(c, &first);
  inject(address{}, c, ping{});
  inject(address{}, q, go{});
  expect<ping>().to(c);
  expect<go>().to(q);
  expect<get>().from(q).to(c);  // c sleeps 20ms
  for (int i = 0; i < 10; ++i) inject(address{}, c, ping{});
  CHECK(mail_count(c) == 10);
  CHECK_FALSE(dispatch_message());  // c takes none of them while it waits
  CHECK(advance_time(20ms) == 1);
  expect<int>().with(1).from(c).to(q);
  CHECK(first == 1);
  CHECK(dispatch_all() == 10);  // now the pings
  CHECK(sys.ask<int>(c, get{}, 1s).value() == 11);
}

TEST_CASE("coroutine handlers compose: a task awaits a task that awaits asks",
          "[engine][coroutine]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address p = sys.spawn<pinger>(troupe::spawn_options{.shard = 1});
  address n = sys.spawn<nested>(troupe::spawn_options{.shard = 0}, p);
  CHECK(sys.ask<int>(n, get{}, 5s).value() == 15);
}

TEST_CASE("a coroutine handler that throws after suspending fails its ask", "[engine][coroutine]") {
  struct late_thrower : troupe::actor<late_thrower, get> {
    troupe::task<int> on(const get&) {
      co_await troupe::sleep_for{1ms};
      throw std::logic_error("late failure");
    }
  };
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  address a = sys.spawn<late_thrower>();
  auto r = sys.ask<int>(a, get{}, 5s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::failed);
  CHECK(r.err().text().find("late failure") != std::string::npos);
}

TEST_CASE_METHOD(troupe::testing::fixture,
                 "a reply that comes after its ask timed out is counted and discarded",
                 "[engine][ask]") {
  struct asker : troupe::actor<asker, get> {
    address g;
    int* got;
    asker(address a, int* out) : g(a), got(out) {}
    troupe::task<> on(const get&) {
      auto r = co_await ask<int>(g, wait_for_release{}, 5ms);
      *got = r.ok() ? 1 : (r.err().code() == troupe::errc::timeout ? -1 : -2);
    }
  };
  int got = 0;
  address g = spawn<slow_gate>();
  address a = spawn<asker>(g, &got);
  inject(address{}, a, get{});
  expect<get>().to(a);
  expect<wait_for_release>().from(a).to(g);  // g sleeps an hour
  CHECK(advance_time(5ms) == 1);             // the ask times out: a resumes with that
  CHECK(got == -1);
  CHECK(advance_time(1h) == 1);  // g wakes and answers, late
  CHECK(mail_count(a) == 1);
  expect<int>().with(1).from(g).to(a);  // the late reply: counted and discarded
  CHECK(got == -1);
  CHECK(sys.counters().dead(troupe::dead_reason::late_reply) == 1);
}

namespace {

constexpr const char* empty_task_text =
    "co_await on an empty troupe::task: it was moved from or already awaited";

troupe::task<int> seven() { co_return 7; }

/// Counts its own destruction, once, wherever it was moved to: as a
/// coroutine's parameter it lives in the frame and dies with it.
struct destruction_counter {
  int* destroyed;
  explicit destruction_counter(int* d) : destroyed(d) {}
  destruction_counter(destruction_counter&& o) noexcept
      : destroyed(std::exchange(o.destroyed, nullptr)) {}
  ~destruction_counter() {
    if (destroyed) ++*destroyed;
  }
};

troupe::task<int> counted(destruction_counter, bool fail) {
  if (fail) throw std::runtime_error("counted task failed");
  co_return 1;
}

}  // namespace

TEST_CASE("awaiting a moved-from task fails the awaiting handler with a sentence naming it",
          "[core]") {
  struct mover : troupe::actor<mover, get> {
    troupe::task<int> on(const get&) {
      auto t = seven();
      auto moved = std::move(t);
      const int first = co_await std::move(moved);
      // The misuse under test: `t` was moved from.
      co_return first + co_await std::move(t);  // NOLINT(bugprone-use-after-move)
    }
  };
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  address a = sys.spawn<mover>();
  auto r = sys.ask<int>(a, get{}, 5s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::failed);
  CHECK(r.err().text().find(empty_task_text) != std::string::npos);
}

TEST_CASE("awaiting a task a second time fails instead of returning a moved-from value", "[core]") {
  struct twice : troupe::actor<twice, get> {
    int* first_value;
    explicit twice(int* f) : first_value(f) {}
    troupe::task<int> on(const get&) {
      auto t = seven();
      *first_value = co_await std::move(t);
      co_return co_await std::move(t);  // NOLINT(bugprone-use-after-move)
    }
  };
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  int first_value = 0;
  address a = sys.spawn<twice>(&first_value);
  auto r = sys.ask<int>(a, get{}, 5s);
  CHECK(first_value == 7);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::failed);
  CHECK(r.err().text().find(empty_task_text) != std::string::npos);
}

TEST_CASE("an awaited task's frame is destroyed once, when its co_await ends", "[core]") {
  struct awaits : troupe::actor<awaits, get> {
    int* destroyed;
    explicit awaits(int* d) : destroyed(d) {}
    troupe::task<int> on(const get&) {
      auto t = counted(destruction_counter(destroyed), false);
      const int before = *destroyed;
      const int v = co_await std::move(t);
      co_return before * 100 + *destroyed * 10 + v;  // 0, then 1, then the value 1
    }
  };
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  int destroyed = 0;
  address a = sys.spawn<awaits>(&destroyed);
  CHECK(sys.ask<int>(a, get{}, 5s).value() == 11);
  CHECK(destroyed == 1);
}

TEST_CASE("a task that throws has its frame destroyed once and its exception rethrown", "[core]") {
  struct awaits_failure : troupe::actor<awaits_failure, get> {
    int* destroyed;
    explicit awaits_failure(int* d) : destroyed(d) {}
    troupe::task<int> on(const get&) {
      try {
        co_await counted(destruction_counter(destroyed), true);
      } catch (const std::runtime_error& e) {
        co_return std::string(e.what()) == "counted task failed" ? *destroyed : -1;
      }
      co_return -2;
    }
  };
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  int destroyed = 0;
  address a = sys.spawn<awaits_failure>(&destroyed);
  CHECK(sys.ask<int>(a, get{}, 5s).value() == 1);
  CHECK(destroyed == 1);
}

TEST_CASE("a task never awaited destroys its unstarted frame once, with the task", "[core]") {
  int destroyed = 0;
  {
    auto t = counted(destruction_counter(&destroyed), true);  // would throw if it ran
    auto moved = std::move(t);
    CHECK(destroyed == 0);
  }
  CHECK(destroyed == 1);
}
