#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

using trace = std::vector<std::string>;

struct token {
  int hops;
};
struct tick {
  int n;
};
struct start {};

// A small world: a ring of relays, a timer-driven clock, a coroutine that
// sleeps, all logging what they see into one trace.
struct relay : troupe::actor<relay, token> {
  trace* log;
  int id;
  address next;
  relay(trace* l, int i) : log(l), id(i) {}
  void on(const token& t) {
    log->push_back("relay" + std::to_string(id) + " token " + std::to_string(t.hops));
    if (t.hops > 0 && next) tell(next, token{t.hops - 1});
  }
};
struct link {
  address next;
};
struct linked_relay : troupe::actor<linked_relay, token, link> {
  trace* log;
  int id;
  address next;
  linked_relay(trace* l, int i) : log(l), id(i) {}
  void on(const link& l) { next = l.next; }
  void on(const token& t) {
    log->push_back("relay" + std::to_string(id) + " token " + std::to_string(t.hops));
    if (t.hops > 0) tell(next, token{t.hops - 1});
  }
};
struct clock_actor : troupe::actor<clock_actor, start, tick> {
  trace* log;
  explicit clock_actor(trace* l) : log(l) {}
  void on(const start&) {
    wakeup_after(30ms, tick{3});
    wakeup_after(10ms, tick{1});
    wakeup_after(20ms, tick{2});
  }
  void on(const tick& t) { log->push_back("tick " + std::to_string(t.n)); }
};
struct sleeper : troupe::actor<sleeper, start> {
  trace* log;
  explicit sleeper(trace* l) : log(l) {}
  troupe::task<> on(const start&) {
    log->push_back("sleeper before");
    co_await troupe::sleep_for{15ms};
    log->push_back("sleeper after");
  }
};

trace run_world() {
  trace log;
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  std::vector<address> ring;
  for (int i = 0; i < 5; ++i) ring.push_back(sys.spawn<linked_relay>(&log, i));
  for (int i = 0; i < 5; ++i) sys.tell(ring[i], link{ring[(i + 1) % 5]});
  address c = sys.spawn<clock_actor>(&log);
  address s = sys.spawn<sleeper>(&log);
  sys.tell(c, start{});
  sys.tell(s, start{});
  sys.tell(ring[0], token{12});
  sys.tell(ring[3], token{4});
  sys.run_until_idle();
  sys.stop();
  auto st = sys.counters();
  log.push_back("sent " + std::to_string(st.sent) + " delivered " + std::to_string(st.delivered));
  return log;
}

}  // namespace

TEST_CASE("inline mode gives the same trace twice", "[engine][inline]") {
  trace a = run_world();
  trace b = run_world();
  REQUIRE(a.size() > 20);
  CHECK(a == b);
  // Virtual time orders timers and sleeps among themselves.
  auto pos = [&a](const std::string& s) { return std::find(a.begin(), a.end(), s) - a.begin(); };
  CHECK(pos("tick 1") < pos("sleeper after"));
  CHECK(pos("sleeper after") < pos("tick 2"));
  CHECK(pos("tick 2") < pos("tick 3"));
}

TEST_CASE("inline mode runs on the caller's thread with no worker threads", "[engine][inline]") {
  struct where : troupe::actor<where, start> {
    std::thread::id on(const start&) { return std::this_thread::get_id(); }
  };
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  address w = sys.spawn<where>();
  CHECK(sys.ask<std::thread::id>(w, start{}, 1s).value() == std::this_thread::get_id());
  CHECK(sys.shard_count() == 1);
}

TEST_CASE("inline ask with virtual time times out without waiting for real", "[engine][inline]") {
  struct never : troupe::actor<never, start> {
    troupe::task<int> on(const start&) {
      co_await troupe::sleep_for{1h};
      co_return 1;
    }
  };
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  address n = sys.spawn<never>();
  auto t0 = std::chrono::steady_clock::now();
  auto r = sys.ask<int>(n, start{}, 10min);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code() == troupe::errc::timeout);
}
