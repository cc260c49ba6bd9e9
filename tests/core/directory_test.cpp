#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct get {};
struct fail {};  // a message type
struct quit {};

struct named : troupe::actor<named, get, fail, quit> {
  int n = 0;
  int on(const get&) { return ++n; }
  void on(const fail&) { throw std::runtime_error("named fails"); }
  void on(const quit&) { stop(); }
};

struct claim_all {
  int count;
  bool backwards;
  std::atomic<int>* ready;  ///< both racers start together
};
struct find {
  std::string name;
};

/// Claims names n0..n(count-1) one after another (or from the end) and
/// returns what it got, by name.
struct racer : troupe::actor<racer, claim_all, find> {
  troupe::task<std::vector<address>> on(const claim_all& m) {
    std::vector<address> got(m.count);
    m.ready->fetch_add(1);
    const auto limit = std::chrono::steady_clock::now() + 5s;
    while (m.ready->load() < 2 && std::chrono::steady_clock::now() < limit) {
    }
    for (int k = 0; k < m.count; ++k) {
      const int i = m.backwards ? m.count - 1 - k : k;
      auto r = co_await spawn_named<named>("n" + std::to_string(i), troupe::spawn_options{});
      got[i] = r ? r.value() : address{};
    }
    co_return got;
  }
  troupe::task<address> on(const find& m) {
    auto r = co_await lookup_name(m.name);
    co_return r ? r.value() : address{};
  }
};

}  // namespace

TEST_CASE("spawn with a name returns the living actor of that name", "[engine][names]") {
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  address a = sys.spawn_named<named>("db", {}).value();
  address b = sys.spawn_named<named>("db", {}).value();
  CHECK(a == b);
  CHECK(sys.counters().actors_live == 1);  // the second candidate was never installed
  CHECK(sys.lookup_name("db").value() == a);
  auto missing = sys.lookup_name("nobody");
  REQUIRE(!missing);
  CHECK(missing.err().code() == troupe::errc::not_found);
  CHECK(missing.err().text() == "no actor is named 'nobody'");
}

TEST_CASE("named spawns from two shards at the same time yield one actor each name",
          "[engine][names]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  constexpr int names = 200;
  address r0 = sys.spawn<racer>(troupe::spawn_options{.shard = 0});
  address r1 = sys.spawn<racer>(troupe::spawn_options{.shard = 1});
  // Both start at once, from opposite ends: they meet in the middle, where
  // claims of one name from both shards cross at the name's shard.
  std::vector<address> got0, got1;
  std::atomic<int> ready{0};
  std::thread t([&] {
    got0 = sys.ask<std::vector<address>>(r0, claim_all{names, false, &ready}, 30s).value();
  });
  got1 = sys.ask<std::vector<address>>(r1, claim_all{names, true, &ready}, 30s).value();
  t.join();
  REQUIRE(got0.size() == names);
  REQUIRE(got1.size() == names);
  CHECK(got0 == got1);
  CHECK(sys.counters().actors_live == names + 2);
  bool both_shards = false;
  for (int i = 0; i < names; ++i) {
    CHECK(got0[i]);
    CHECK(sys.lookup_name("n" + std::to_string(i)).value() == got0[i]);
    both_shards = both_shards || got0[i].shard() != got0[0].shard();
  }
  CHECK(both_shards);  // automatic placement: each racer's own shard won its end
}

TEST_CASE("a name is freed when its actor ends, kept when it restarts", "[engine][names]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address r = sys.spawn<racer>(troupe::spawn_options{.shard = 0});
  address a = sys.spawn_named<named>("svc", troupe::spawn_options{.shard = 1}).value();
  CHECK(sys.ask<address>(r, find{"svc"}, 5s).value() == a);  // now cached on shard 0

  sys.tell(a, fail{});  // restarted: same address, the name stays
  CHECK(sys.ask<int>(a, get{}, 5s).value() == 1);
  CHECK(sys.lookup_name("svc").value() == a);

  sys.tell(a, quit{});
  bool freed = false;
  for (int i = 0; i < 1000 && !freed; ++i) {
    freed = !sys.lookup_name("svc");
    if (!freed) std::this_thread::sleep_for(1ms);
  }
  REQUIRE(freed);
  address b = sys.spawn_named<named>("svc", {}).value();
  CHECK(b != a);
  // The cache on shard 0 forgot the old address.
  address seen;
  for (int i = 0; i < 1000 && seen != b; ++i) {
    seen = sys.ask<address>(r, find{"svc"}, 5s).value();
    if (seen != b) std::this_thread::sleep_for(1ms);
  }
  CHECK(seen == b);
}
