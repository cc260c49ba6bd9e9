#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "troupe/testing.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct add {
  int n;
};
struct get {};
struct boom {};

struct counter : troupe::actor<counter, add, get, boom> {
  int total = 0;
  void on(const add& m) { total += m.n; }
  int on(const get&) { return total; }
  void on(const boom&) { throw std::runtime_error("kaboom"); }
};

/// Records, per sender, the sequence numbers it receives.
struct seq_msg {
  int sender;
  int seq;
};
struct report {};
struct order_checker : troupe::actor<order_checker, seq_msg, report> {
  std::vector<int> last = std::vector<int>(64, -1);
  int violations = 0;
  int received = 0;
  void on(const seq_msg& m) {
    if (m.seq != last[m.sender] + 1) ++violations;
    last[m.sender] = m.seq;
    ++received;
  }
  std::pair<int, int> on(const report&) { return {received, violations}; }
};

struct go {
  address to;
  int id;
  int count;
};
struct sequencer : troupe::actor<sequencer, go> {
  void on(const go& g) {
    for (int i = 0; i < g.count; ++i) tell(g.to, seq_msg{g.id, i});
  }
};

troupe::system_options threads(unsigned n) {
  troupe::system_options o;
  o.shards = n;
  return o;
}

}  // namespace

TEST_CASE("tell and ask reach an actor and the reply comes back", "[engine][system]") {
  troupe::system sys(threads(2));
  address c = sys.spawn<counter>();
  for (int i = 1; i <= 100; ++i) sys.tell(c, add{i});
  auto r = sys.ask<int>(c, get{}, 5s);
  REQUIRE(r.ok());
  CHECK(*r == 5050);
}

TEST_CASE_METHOD(troupe::testing::fixture,
                 "shard delivers messages from one sender in order on the same shard",
                 "[engine][order]") {
  address checker = spawn<order_checker>();
  address s = spawn<sequencer>();
  inject(address{}, s, go{checker, 0, 100000});
  expect<go>().to(s);
  CHECK(mail_count(checker) == 100000);
  for (int i = 0; i < 3; ++i) {
    expect<seq_msg>().with([i](const seq_msg& m) { return m.seq == i; }).from(s).to(checker);
  }
  CHECK(dispatch_all() == 100000 - 3);
  const auto seen = sys.ask<std::pair<int, int>>(checker, report{}, 1s).value();
  CHECK(seen.first == 100000);
  CHECK(seen.second == 0);
}

TEST_CASE("shard delivers messages from one sender in order across shards", "[engine][order]") {
  troupe::system sys(threads(2));
  address checker = sys.spawn<order_checker>(troupe::spawn_options{.shard = 1});
  address s = sys.spawn<sequencer>(troupe::spawn_options{.shard = 0});
  // 100k messages overflow the 8k lane: order must survive the spill.
  sys.tell(s, go{checker, 0, 100000});
  std::pair<int, int> seen{};
  for (int i = 0; i < 500 && seen.first < 100000; ++i) {
    seen = sys.ask<std::pair<int, int>>(checker, report{}, 5s).value();
    if (seen.first < 100000) std::this_thread::sleep_for(10ms);
  }
  CHECK(seen.first == 100000);
  CHECK(seen.second == 0);
}

TEST_CASE("many concurrent senders each keep their order", "[engine][order]") {
  troupe::system sys(threads(4));
  address checker = sys.spawn<order_checker>(troupe::spawn_options{.shard = 0});
  constexpr int senders = 32, per = 5000;
  for (int i = 0; i < senders; ++i) {
    address s = sys.spawn<sequencer>(troupe::spawn_options{.shard = i});
    sys.tell(s, go{checker, i, per});
  }
  // And outside threads too, each its own sender.
  std::vector<std::thread> outside;
  for (int t = 0; t < 4; ++t) {
    outside.emplace_back([&sys, checker, t] {
      for (int i = 0; i < per; ++i) sys.tell(checker, seq_msg{senders + t, i});
    });
  }
  for (auto& t : outside) t.join();
  const int expected = (senders + 4) * per;
  std::pair<int, int> seen{};
  for (int i = 0; i < 1000 && seen.first < expected; ++i) {
    seen = sys.ask<std::pair<int, int>>(checker, report{}, 5s).value();
    if (seen.first < expected) std::this_thread::sleep_for(10ms);
  }
  CHECK(seen.first == expected);
  CHECK(seen.second == 0);
}

TEST_CASE("ask times out when no reply comes", "[engine][ask]") {
  struct silent : troupe::actor<silent, get> {
    troupe::task<int> on(const get&) {
      co_await troupe::sleep_for{10s};
      co_return 1;
    }
  };
  troupe::system sys(threads(2));
  address s = sys.spawn<silent>();
  auto t0 = std::chrono::steady_clock::now();
  auto r = sys.ask<int>(s, get{}, 100ms);
  auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::timeout);
  CHECK(r.err().text().find(s.to_string()) != std::string::npos);
  CHECK(waited >= 100ms);
  sys.stop();  // ends the sleeping handler early; its late reply is counted
  auto st = sys.counters();
  CHECK(st.sent == st.delivered + st.dead_letters);
}

TEST_CASE("ask to a stopped actor ends with dead_actor at once", "[engine][ask]") {
  troupe::system sys(threads(2));
  address c = sys.spawn<counter>();
  sys.tell(c, troupe::exit_request{});
  // The exit is handled before the ask (same sender, same order).
  auto r = sys.ask<int>(c, get{}, 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::dead_actor);
  CHECK(sys.counters().dead(troupe::dead_reason::actor_stopped) >= 1);
}

TEST_CASE("ask to an address that never existed ends with dead_actor", "[engine][ask]") {
  troupe::system sys(threads(2));
  auto r = sys.ask<int>(address(1, 1, 999, 7), get{}, 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::dead_actor);
  auto other_engine = sys.ask<int>(address(9, 0, 1, 1), get{}, 10s);
  CHECK(other_engine.err().code() == troupe::errc::dead_actor);
  CHECK(sys.counters().dead(troupe::dead_reason::no_route) == 1);
}

TEST_CASE("a message type the actor does not handle is dead-lettered as unhandled",
          "[engine][dead]") {
  struct other {};
  troupe::system sys(threads(2));
  address c = sys.spawn<counter>();
  sys.tell(c, other{});
  auto r = sys.ask<int>(c, other{}, 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::unhandled);
  CHECK(r.err().text().find("other") != std::string::npos);
  CHECK(sys.counters().dead(troupe::dead_reason::unhandled) == 2);
  // The actor is unharmed.
  sys.tell(c, add{2});
  CHECK(sys.ask<int>(c, get{}, 5s).value() == 2);
}

TEST_CASE("a handler that throws fails the ask with the reason, not a timeout", "[engine][ask]") {
  troupe::system sys(threads(2));
  address c = sys.spawn<counter>();
  auto r = sys.ask<troupe::done>(c, boom{}, 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::failed);
  CHECK(r.err().text().find("kaboom") != std::string::npos);
  // Other actors on the shard keep going.
  address d = sys.spawn<counter>();
  sys.tell(d, add{5});
  CHECK(sys.ask<int>(d, get{}, 5s).value() == 5);
}

TEST_CASE("a reply of the wrong type is an error that names both types", "[engine][ask]") {
  troupe::system sys(threads(1));
  address c = sys.spawn<counter>();
  auto r = sys.ask<std::string>(c, get{}, 5s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::type_mismatch);
  CHECK(r.err().text().find("int") != std::string::npos);
}

TEST_CASE("a stale address never reaches the actor that reuses its slot", "[engine][address]") {
  struct make {};
  struct factory : troupe::actor<factory, make> {
    address on(const make&) { return spawn<counter>(); }  // same shard: slots are reused
  };
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  address f = sys.spawn<factory>();
  address first = sys.ask<address>(f, make{}, 1s).value();
  sys.tell(first, troupe::exit_request{});
  sys.run_until_idle();
  address second = sys.ask<address>(f, make{}, 1s).value();
  CHECK(second.slot() == first.slot());
  CHECK(second.incarnation() == first.incarnation() + 1);
  sys.tell(first, add{100});
  sys.tell(second, add{1});
  CHECK(sys.ask<int>(second, get{}, 1s).value() == 1);
  CHECK(sys.counters().dead(troupe::dead_reason::actor_stopped) == 1);
}

TEST_CASE("placement spreads actors round-robin or to the least loaded shard", "[engine][spawn]") {
  troupe::system sys(threads(4));
  std::vector<int> per_shard(4);
  for (int i = 0; i < 8; ++i) {
    address a = sys.spawn<counter>(troupe::spawn_options{.where = troupe::placement::round_robin});
    ++per_shard[a.shard()];
  }
  CHECK(per_shard == std::vector<int>{2, 2, 2, 2});
  // Load shard 0, then ask for the least loaded: never shard 0.
  for (int i = 0; i < 20; ++i) sys.spawn<counter>(troupe::spawn_options{.shard = 0});
  sys.ask<int>(sys.spawn<counter>(troupe::spawn_options{.shard = 0}), get{}, 5s).value();
  address light =
      sys.spawn<counter>(troupe::spawn_options{.where = troupe::placement::least_loaded});
  CHECK(light.shard() != 0);
}

TEST_CASE("actors spawn actors on other shards and talk to them at once", "[engine][spawn]") {
  struct parent : troupe::actor<parent, get> {
    troupe::task<int> on(const get&) {
      int sum = 0;
      for (int s = 0; s < 4; ++s) {
        address child = spawn<counter>(troupe::spawn_options{.shard = s});
        tell(child, add{s + 1});  // may arrive before the child is installed
        sum += (co_await ask<int>(child, get{}, 5s)).value();
      }
      co_return sum;
    }
  };
  troupe::system sys(threads(4));
  address p = sys.spawn<parent>();
  CHECK(sys.ask<int>(p, get{}, 10s).value() == 1 + 2 + 3 + 4);
}

TEST_CASE("one million actors are spawned and each is sent a message", "[engine][spawn][scale]") {
  struct tick {};
  struct ticked : troupe::actor<ticked, tick> {
    std::atomic<int>* hits;
    explicit ticked(std::atomic<int>* h) : hits(h) {}
    void on(const tick&) { hits->fetch_add(1, std::memory_order_relaxed); }
  };
  struct spawner : troupe::actor<spawner, add> {
    std::atomic<int>* hits;
    explicit spawner(std::atomic<int>* h) : hits(h) {}
    int on(const add& m) {
      for (int i = 0; i < m.n; ++i) tell(spawn<ticked>(hits), tick{});
      return m.n;
    }
  };
  constexpr int total = 1'000'000;
  std::atomic<int> hits{0};
  troupe::system sys(threads(2));
  address s0 = sys.spawn<spawner>(troupe::spawn_options{.shard = 0}, &hits);
  address s1 = sys.spawn<spawner>(troupe::spawn_options{.shard = 1}, &hits);
  sys.tell(s0, add{total / 2});
  sys.tell(s1, add{total / 2});
  for (int i = 0; i < 3000 && hits.load() < total; ++i) std::this_thread::sleep_for(10ms);
  CHECK(hits.load() == total);
  CHECK(sys.counters().actors_live == total + 2);
  sys.stop();
  auto st = sys.counters();
  CHECK(st.actors_live == 0);
  CHECK(st.sent == st.delivered + st.dead_letters);
}

TEST_CASE("shutdown accounts for every message: sent = delivered + dead-lettered",
          "[engine][shutdown]") {
  struct slow {};
  struct relay : troupe::actor<relay, add, slow> {
    address next;
    explicit relay(address n) : next(n) {}
    void on(const add& m) {
      if (next) tell(next, add{m.n});
    }
    troupe::task<> on(const slow&) { co_await troupe::sleep_for{1h}; }
  };
  troupe::system sys(threads(2));
  address sink = sys.spawn<counter>(troupe::spawn_options{.shard = 1});
  address r = sys.spawn<relay>(troupe::spawn_options{.shard = 0}, sink);
  sys.tell(r, slow{});  // parks r in an hour-long sleep: its mailbox keeps filling
  for (int i = 0; i < 10000; ++i) sys.tell(r, add{1});
  sys.tell(address(1, 0, 4242, 1), add{1});  // nobody there
  sys.stop();
  auto st = sys.counters();
  CHECK(st.sent > 10000);
  CHECK(st.sent == st.delivered + st.dead_letters);
  CHECK(st.dead(troupe::dead_reason::no_such_actor) == 1);
  CHECK(st.actors_live == 0);
  // After stop, sends are dead letters, not lost.
  sys.tell(sink, add{1});
  auto after = sys.counters();
  CHECK(after.dead(troupe::dead_reason::shutting_down) ==
        st.dead(troupe::dead_reason::shutting_down) + 1);
  CHECK(after.sent == after.delivered + after.dead_letters);
}

TEST_CASE("exit_request lets an actor clean up before it stops", "[engine][shutdown]") {
  struct tidy : troupe::actor<tidy, troupe::exit_request> {
    std::atomic<int>* cleaned;
    explicit tidy(std::atomic<int>* c) : cleaned(c) {}
    void on(const troupe::exit_request&) { cleaned->fetch_add(1); }
  };
  std::atomic<int> cleaned{0};
  {
    troupe::system sys(threads(2));
    for (int i = 0; i < 10; ++i) sys.spawn<tidy>(&cleaned);
  }  // the destructor stops the engine
  CHECK(cleaned.load() == 10);
}
