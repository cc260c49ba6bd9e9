#include <catch2/catch.hpp>

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "troupe/testing.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;
using troupe::testing::expectation_failed;
using troupe::testing::fixture;

namespace {

struct start {
  int rounds;
};
struct ping {
  int n;
  bool operator==(const ping&) const = default;
};
struct pong {
  int n;
  bool operator==(const pong&) const = default;
};
std::ostream& operator<<(std::ostream& os, const ping& p) { return os << "ping{" << p.n << "}"; }
struct tick {
  int n;
  bool operator==(const tick&) const = default;
};

/// Answers each ping with a pong to whoever sent it.
struct ponger : troupe::actor<ponger, ping> {
  void on(const ping& p) { tell(sender(), pong{p.n}); }
};

/// Plays `rounds` of ping-pong with its peer, counting down.
struct pinger : troupe::actor<pinger, start, pong> {
  address peer;
  std::vector<int>* got;
  pinger(address p, std::vector<int>* g) : peer(p), got(g) {}
  void on(const start& s) { tell(peer, ping{s.rounds}); }
  void on(const pong& p) {
    got->push_back(p.n);
    if (p.n > 1) tell(peer, ping{p.n - 1});
  }
};

/// Answers an ask: the reply is the handler's return value.
struct echo : troupe::actor<echo, ping> {
  pong on(const ping& p) { return pong{p.n}; }
};

/// Asks its server and keeps the answer.
struct asker : troupe::actor<asker, start> {
  address server;
  int* answer;
  asker(address s, int* a) : server(s), answer(a) {}
  troupe::task<> on(const start& s) {
    ping p{s.rounds};
    auto r = co_await ask<pong>(server, std::move(p), 1s);
    *answer = r ? r.value().n : -1;
  }
};

/// Counts what it gets.
struct counter : troupe::actor<counter, int, ping> {
  std::vector<int>* seen;
  explicit counter(std::vector<int>* s) : seen(s) {}
  void on(const int& n) { seen->push_back(n); }
  void on(const ping& p) { seen->push_back(100 + p.n); }
};

/// Sets timers when started, and tells itself in on_start.
struct alarm : troupe::actor<alarm, start, tick> {
  std::vector<int>* fired;
  explicit alarm(std::vector<int>* f) : fired(f) {}
  void on_start() { tell(self(), start{0}); }
  void on(const start& s) {
    if (s.rounds == 0) return;
    wakeup_after(20ms, tick{2});
    wakeup_after(10ms, tick{1});
    const troupe::timer_id never = wakeup_after(15ms, tick{-1});
    cancel_timer(never);
  }
  void on(const tick& t) { fired->push_back(t.n); }
};

/// Sleeps on virtual time inside a coroutine handler.
struct sleeper : troupe::actor<sleeper, start> {
  std::vector<std::string>* log;
  explicit sleeper(std::vector<std::string>* l) : log(l) {}
  troupe::task<> on(const start&) {
    log->push_back("before");
    co_await troupe::sleep_for{5ms};
    log->push_back("after 5ms");
    co_await troupe::sleep_for{5ms};
    log->push_back("after 10ms");
  }
};

}  // namespace

TEST_CASE_METHOD(fixture, "the fixture runs one message at a time, in the order they were sent",
                 "[core]") {
  std::vector<int> seen;
  address c = spawn<counter>(&seen);
  CHECK(mail_count(c) == 0);
  inject(address{}, c, 1);
  inject(address{}, c, 2);
  inject(address{}, c, ping{3});
  CHECK(mail_count(c) == 3);
  CHECK(mail_count() == 3);
  CHECK(seen.empty());  // injected, not run

  CHECK(dispatch_message());
  CHECK(seen == std::vector<int>{1});
  CHECK(mail_count(c) == 2);
  CHECK(dispatch_message());
  CHECK(dispatch_message());
  CHECK(seen == std::vector<int>{1, 2, 103});
  CHECK(mail_count(c) == 0);
  CHECK_FALSE(dispatch_message());
}

TEST_CASE_METHOD(fixture, "expect follows a ping-pong exchange message by message", "[core]") {
  std::vector<int> got;
  address b = spawn<ponger>();
  address a = spawn<pinger>(b, &got);
  inject(address{}, a, start{2});

  expect<start>().from(address{}).to(a);
  expect<ping>().with(ping{2}).from(a).to(b);
  expect<pong>().with(pong{2}).from(b).to(a);
  CHECK(got == std::vector<int>{2});
  expect<ping>().with([](const ping& p) { return p.n == 1; }).from(a).to(b);
  expect<pong>().from(b).to(a);
  CHECK(got == std::vector<int>{2, 1});
  CHECK(mail_count() == 0);
  CHECK_FALSE(dispatch_message());
}

TEST_CASE_METHOD(fixture, "allow runs the next message only when it matches", "[core]") {
  std::vector<int> seen;
  address c = spawn<counter>(&seen);
  address other = spawn<counter>(&seen);
  inject(address{}, c, ping{1});
  CHECK_FALSE(allow<int>().to(c));                 // wrong type
  CHECK_FALSE(allow<ping>().to(other));            // wrong receiver
  CHECK_FALSE(allow<ping>().from(other).to(c));    // wrong sender
  CHECK_FALSE(allow<ping>().with(ping{2}).to(c));  // wrong value
  CHECK(seen.empty());
  CHECK(mail_count(c) == 1);
  CHECK(allow<ping>().with(ping{1}).from(address{}).to(c));
  CHECK(seen == std::vector<int>{101});
  CHECK_FALSE(allow<ping>().to(c));  // nothing left
}

TEST_CASE_METHOD(fixture, "a mismatched expect fails naming both messages and runs nothing",
                 "[core]") {
  std::vector<int> got;
  address b = spawn<ponger>();
  address a = spawn<pinger>(b, &got);
  inject(a, b, ping{1});  // a pong{1} ends the game: nothing follows it

  // Wrong type: the text names the type expected and the one that is next.
  const std::string ping_name = "(anonymous namespace)::ping";
  const std::string pong_name = "(anonymous namespace)::pong";
  REQUIRE_THROWS_AS(expect<pong>().to(b), expectation_failed);
  REQUIRE_THROWS_WITH(expect<pong>().to(b),
                      Catch::StartsWith("testing_test.cpp:") &&
                          Catch::Contains("expected " + pong_name + " to " + b.to_string() +
                                          ", but the next message is " + ping_name + " from " +
                                          a.to_string() + " to " + b.to_string()));
  // Wrong receiver, sender or value; a message that prints is shown.
  REQUIRE_THROWS_WITH(expect<ping>().to(a),
                      Catch::Contains("expected " + ping_name + " to " + a.to_string() +
                                      ", but the next message is " + ping_name + " ping{1} from " +
                                      a.to_string() + " to " + b.to_string()));
  REQUIRE_THROWS_WITH(expect<ping>().from(b).to(b),
                      Catch::Contains("expected " + ping_name + " from " + b.to_string()));
  REQUIRE_THROWS_WITH(expect<ping>().with(ping{8}).to(b),
                      Catch::Contains("expected " + ping_name + " with value ping{8} to") &&
                          Catch::EndsWith("whose value does not match"));
  CHECK(mail_count(b) == 1);  // none of them ran it
  CHECK(got.empty());

  REQUIRE_NOTHROW(expect<ping>().with(ping{1}).from(a).to(b));
  REQUIRE_THROWS_WITH(expect<ping>().to(b),
                      Catch::Contains("but the next message is " + pong_name + " from " +
                                      b.to_string() + " to " + a.to_string()));
  expect<pong>().to(a);
  REQUIRE_THROWS_WITH(expect<ping>().to(b), Catch::EndsWith("but no message is waiting"));
}

TEST_CASE_METHOD(fixture, "replies to asks are dispatched like any other message", "[core]") {
  int answer = 0;
  address e = spawn<echo>();
  address q = spawn<asker>(e, &answer);
  inject(address{}, q, start{5});
  expect<start>().to(q);
  CHECK(mail_count(e) == 1);
  expect<ping>().with(ping{5}).from(q).to(e);
  CHECK(mail_count(q) == 1);  // the reply waits for the asker
  CHECK(answer == 0);
  expect<pong>().with(pong{5}).from(e).to(q);
  CHECK(answer == 5);
  // The ask's timeout has nothing left to do when its time comes.
  CHECK(advance_time(1s) == 0);
  CHECK(answer == 5);
}

TEST_CASE_METHOD(fixture, "a timer fires when virtual time reaches it, and not before", "[core]") {
  std::vector<int> fired;
  address a = spawn<alarm>(&fired);
  CHECK(mail_count(a) == 1);  // what on_start sent
  expect<start>().with([](const start& s) { return s.rounds == 0; }).from(a).to(a);
  inject(address{}, a, start{1});
  expect<start>().to(a);

  const auto t0 = now();
  CHECK(dispatch_all() == 0);  // timers wait for time
  CHECK(now() == t0);
  CHECK(advance_time(9ms) == 0);
  CHECK(mail_count(a) == 0);
  CHECK(advance_time(1ms) == 1);
  CHECK(now() == t0 + 10ms);
  CHECK(mail_count(a) == 1);
  CHECK(fired.empty());  // fired into the mailbox, not yet handled
  expect<tick>().with(tick{1}).from(a).to(a);
  CHECK(fired == std::vector<int>{1});
  // The cancelled one (15ms) does not count; 20ms does.
  CHECK(set_time(t0 + 25ms) == 1);
  CHECK(now() == t0 + 25ms);
  expect<tick>().with(tick{2}).to(a);
  CHECK(fired == std::vector<int>{1, 2});
  CHECK(mail_count() == 0);
  CHECK_THROWS_AS(set_time(t0), std::invalid_argument);
}

TEST_CASE_METHOD(fixture, "a coroutine that sleeps resumes as advance_time passes its wake-up",
                 "[core]") {
  std::vector<std::string> log;
  address s = spawn<sleeper>(&log);
  inject(address{}, s, start{0});
  inject(address{}, s, start{0});  // waits in the mailbox while the first sleeps
  expect<start>().to(s);
  CHECK(log == std::vector<std::string>{"before"});
  CHECK_FALSE(dispatch_message());  // the second start waits for the handler
  CHECK(mail_count(s) == 1);
  // One advance passes both sleeps: the second counts from the first's end.
  CHECK(advance_time(10ms) == 2);
  CHECK(log == std::vector<std::string>{"before", "after 5ms", "after 10ms"});
  expect<start>().to(s);
  CHECK(log.size() == 4);
  CHECK(log.back() == "before");
  // Sleeps left when the fixture ends would resume in its stop: the log
  // is gone by then, so this one sleeps its time out here.
  CHECK(advance_time(1h) == 2);
  CHECK(log.size() == 6);
}

TEST_CASE_METHOD(fixture, "spawn runs on_start, sys.tell reaches the mailbox, alive tracks the end",
                 "[core]") {
  std::vector<int> seen;
  address c = spawn<counter>(&seen);
  CHECK(alive(c));
  sys.tell(c, 4);  // from outside: it waits like an injected message
  CHECK(mail_count(c) == 1);
  CHECK(seen.empty());
  expect<int>().with(4).from(address{}).to(c);
  CHECK(seen == std::vector<int>{4});
  inject(address{}, c, troupe::exit_request{});
  expect<troupe::exit_request>().to(c);
  CHECK_FALSE(alive(c));
  CHECK(mail_count(c) == 0);
  inject(address{}, c, 5);  // to an actor that ended: a dead letter, as a tell
  CHECK_FALSE(dispatch_message());
  CHECK(sys.counters().dead(troupe::dead_reason::actor_stopped) == 1);
}

TEST_CASE("the fixture is inline whatever the options say, and keeps the others", "[core]") {
  troupe::system_options o;
  o.shards = 4;
  o.engine_id = 7;
  fixture fx(o);
  CHECK(fx.sys.shard_count() == 1);
  CHECK(fx.sys.engine_id() == 7);
  std::vector<int> seen;
  address c = fx.spawn<counter>(&seen);
  CHECK(c.engine() == 7);
}
