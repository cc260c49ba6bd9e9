#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct lookup {
  int key;
};
struct compute {
  int key;
};
struct ping {};

struct store : troupe::actor<store, lookup> {
  int on(const lookup& m) { return m.key * 10; }
};

// Ordinary code, three calls deep, that does not know it runs in an actor.
int library_leaf(address store_addr, int key) {
  return troupe::blocking_ask<int>(store_addr, lookup{key}, 5s).value();
}
int library_middle(address store_addr, int key) { return library_leaf(store_addr, key) + 1; }

struct legacy : troupe::stackful_actor<legacy, compute, ping> {
  address store_addr;
  explicit legacy(address s) : store_addr(s) {}
  int on(const compute& m) {
    return library_middle(store_addr, m.key) + library_middle(store_addr, 1);
  }
  int on(const ping&) { return 1; }
};

struct pinger : troupe::actor<pinger, ping> {
  int on(const ping&) { return 7; }
};

struct slow_store : troupe::actor<slow_store, lookup> {
  troupe::task<int> on(const lookup& m) {
    co_await troupe::sleep_for{50ms};
    co_return m.key;
  }
};

}  // namespace

TEST_CASE("a stackful actor blocks in ask deep in its call stack and gets the reply",
          "[engine][stackful]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address s = sys.spawn<store>(troupe::spawn_options{.shard = 1});
  address l = sys.spawn<legacy>(troupe::spawn_options{.shard = 0}, s);
  CHECK(sys.ask<int>(l, compute{4}, 5s).value() == 41 + 11);
  // Same shard too.
  address s0 = sys.spawn<store>(troupe::spawn_options{.shard = 0});
  address l0 = sys.spawn<legacy>(troupe::spawn_options{.shard = 0}, s0);
  CHECK(sys.ask<int>(l0, compute{2}, 5s).value() == 21 + 11);
}

TEST_CASE("a blocked stackful actor does not block its shard", "[engine][stackful]") {
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  address slow = sys.spawn<slow_store>();
  address l = sys.spawn<legacy>(slow);
  address p = sys.spawn<pinger>();
  int computed = 0;
  std::thread t([&] { computed = sys.ask<int>(l, compute{3}, 5s).value(); });
  // While the fiber waits ~100ms for two slow lookups, the shard answers.
  int answered = 0;
  for (int i = 0; i < 200; ++i) answered += sys.ask<int>(p, ping{}, 5s).value() == 7;
  t.join();
  CHECK(answered == 200);
  CHECK(computed == 4 + 2);
}

TEST_CASE("blocking_ask outside a stackful actor is an error, not a hang", "[engine][stackful]") {
  auto r = troupe::blocking_ask<int>(address(1, 0, 0, 1), lookup{1}, 1s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::misuse);
}

TEST_CASE("a stackful actor whose handler throws fails the ask and the shard goes on",
          "[engine][stackful]") {
  struct thrower : troupe::stackful_actor<thrower, ping> {
    int on(const ping&) { throw std::runtime_error("fiber failure"); }
  };
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  address t = sys.spawn<thrower>();
  auto r = sys.ask<int>(t, ping{}, 5s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().text().find("fiber failure") != std::string::npos);
  address p = sys.spawn<pinger>();
  CHECK(sys.ask<int>(p, ping{}, 5s).value() == 7);
}
