#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct get {};
struct ping {};
struct wait_for_release {};

struct gate : troupe::actor<gate, wait_for_release> {
  // Holds one asker until the test thread opens it: a reply that comes
  // much later. (A message could not open it: the gate's mailbox queues
  // while its handler waits.)
  std::atomic<bool>* open;
  explicit gate(std::atomic<bool>* o) : open(o) {}
  troupe::task<int> on(const wait_for_release&) {
    for (int i = 0; i < 5000 && !open->load(); ++i) co_await troupe::sleep_for{1ms};
    co_return open->load() ? 1 : 0;
  }
};

struct pinger : troupe::actor<pinger, ping> {
  int on(const ping&) { return 7; }
};

struct waiter : troupe::actor<waiter, get> {
  address gate_addr;
  explicit waiter(address g) : gate_addr(g) {}
  troupe::task<int> on(const get&) {
    auto r = co_await ask<int>(gate_addr, wait_for_release{}, 10s);
    co_return r.value() * 100;
  }
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

TEST_CASE("a suspended coroutine handler does not stall other actors on its shard",
          "[engine][coroutine]") {
  troupe::system_options o;
  o.shards = 1;  // everything on one shard: a stall would block it all
  troupe::system sys(o);
  std::atomic<bool> open{false};
  address g = sys.spawn<gate>(&open);
  address w = sys.spawn<waiter>(g);
  address p = sys.spawn<pinger>();
  int waited_for = 0;
  std::thread asker([&] { waited_for = sys.ask<int>(w, get{}, 10s).value(); });
  // While `w` waits on the gate, the same shard answers 1000 asks to `p`.
  for (int i = 0; i < 1000; ++i) REQUIRE(sys.ask<int>(p, ping{}, 5s).value() == 7);
  open = true;
  asker.join();
  CHECK(waited_for == 100);
}

TEST_CASE("a waiting coroutine handler keeps its actor's mailbox queued", "[engine][coroutine]") {
  struct slow_counter : troupe::actor<slow_counter, get, ping> {
    std::atomic<bool>* entered;
    explicit slow_counter(std::atomic<bool>* e) : entered(e) {}
    int n = 0;
    troupe::task<int> on(const get&) {
      entered->store(true);
      co_await troupe::sleep_for{20ms};
      co_return n;  // no ping may have been handled while we slept
    }
    void on(const ping&) { ++n; }
  };
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  std::atomic<bool> entered{false};
  address c = sys.spawn<slow_counter>(&entered);
  sys.tell(c, ping{});
  int first = -1;
  std::thread t([&] { first = sys.ask<int>(c, get{}, 5s).value(); });
  for (int i = 0; i < 5000 && !entered.load(); ++i) std::this_thread::sleep_for(100us);
  for (int i = 0; i < 10; ++i) sys.tell(c, ping{});
  t.join();
  CHECK(first == 1);
  CHECK(sys.ask<int>(c, get{}, 5s).value() == 11);
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

TEST_CASE("a reply that comes after its ask timed out is counted and discarded", "[engine][ask]") {
  struct asker : troupe::actor<asker, get> {
    address g;
    explicit asker(address a) : g(a) {}
    troupe::task<int> on(const get&) {
      auto r = co_await ask<int>(g, wait_for_release{}, 5ms);
      co_return r.ok() ? 1 : (r.err().code() == troupe::errc::timeout ? -1 : -2);
    }
  };
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  std::atomic<bool> open{false};
  address g = sys.spawn<gate>(troupe::spawn_options{.shard = 1}, &open);
  address a = sys.spawn<asker>(troupe::spawn_options{.shard = 0}, g);
  CHECK(sys.ask<int>(a, get{}, 5s).value() == -1);
  open = true;
  for (int i = 0; i < 500 && sys.counters().dead(troupe::dead_reason::late_reply) == 0; ++i) {
    std::this_thread::sleep_for(2ms);
  }
  CHECK(sys.counters().dead(troupe::dead_reason::late_reply) == 1);
}
