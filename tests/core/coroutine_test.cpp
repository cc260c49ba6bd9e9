#include <catch2/catch.hpp>

#include <chrono>

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
