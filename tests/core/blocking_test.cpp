#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/system_impl.hpp"
#include "troupe/blocking.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct get {};
struct ping {};
struct hold {};
struct query {};

/// Answers with a value made on a blocking thread, and whether that thread
/// was another than its shard's.
struct reader : troupe::actor<reader, get> {
  troupe::task<int> on(const get&) {
    const std::thread::id shard_thread = std::this_thread::get_id();
    auto job = [shard_thread] { return std::this_thread::get_id() != shard_thread ? 42 : -1; };
    int v = co_await troupe::run_blocking(std::move(job));
    // Back on the shard's thread.
    co_return std::this_thread::get_id() == shard_thread ? v : -2;
  }
};

struct thrower : troupe::actor<thrower, get> {
  troupe::task<std::string> on(const get&) {
    auto job = []() -> int { throw std::runtime_error("disk on fire"); };
    try {
      co_await troupe::run_blocking(std::move(job));
    } catch (const std::runtime_error& ex) {
      co_return std::string("caught: ") + ex.what();
    }
    co_return std::string("nothing thrown");
  }
};

/// Counts the jobs that run at once, over all its instances.
struct counting : troupe::actor<counting, get> {
  std::atomic<int>* running;
  std::atomic<int>* most;
  int n;
  counting(std::atomic<int>* r, std::atomic<int>* m, int i) : running(r), most(m), n(i) {}
  troupe::task<int> on(const get&) {
    auto job = [r = running, m = most, i = n] {
      const int now = r->fetch_add(1) + 1;
      int seen = m->load();
      while (now > seen && !m->compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(2ms);  // the blocking work itself
      r->fetch_sub(1);
      return i * 2;
    };
    co_return co_await troupe::run_blocking(std::move(job));
  }
};

/// Its job blocks until the test releases it; `started` (if set) says it runs.
struct holder : troupe::actor<holder, hold, query> {
  std::promise<void>* started;
  std::shared_future<void> release;
  int done = 0;
  holder(std::promise<void>* s, std::shared_future<void> r) : started(s), release(std::move(r)) {}
  troupe::task<std::string> on(const hold&) {
    auto job = [s = started, r = release] {
      if (s) s->set_value();
      return r.wait_for(10s) == std::future_status::ready ? 1 : 0;
    };
    try {
      done = co_await troupe::run_blocking(std::move(job));
    } catch (const std::runtime_error& ex) {
      co_return std::string(ex.what());
    }
    co_return std::string("ran");
  }
  int on(const query&) { return done; }
};

struct pinger : troupe::actor<pinger, ping> {
  int on(const ping&) { return 7; }
};

}  // namespace

TEST_CASE("a handler awaits run_blocking and gets the value, back on its shard", "[core]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address r = sys.spawn<reader>();
  CHECK(sys.ask<int>(r, get{}, 5s).value() == 42);
}

TEST_CASE("what the blocking work throws is rethrown in the awaiting handler", "[core]") {
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  address t = sys.spawn<thrower>();
  CHECK(sys.ask<std::string>(t, get{}, 5s).value() == "caught: disk on fire");
}

TEST_CASE("more blocking calls than the pool has threads all complete", "[core]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  std::atomic<int> running{0}, most{0};
  constexpr int calls = 32;  // eight times the pool's threads
  std::vector<address> actors;
  for (int i = 0; i < calls; ++i) actors.push_back(sys.spawn<counting>(&running, &most, i));
  std::vector<int> answers(calls, -1);
  std::vector<std::thread> askers;
  for (int i = 0; i < calls; ++i) {
    askers.emplace_back([&, i] {
      auto r = sys.ask<int>(actors[i], get{}, 10s);
      answers[i] = r ? r.value() : -1;
    });
  }
  for (auto& t : askers) t.join();
  for (int i = 0; i < calls; ++i) CHECK(answers[i] == i * 2);
  CHECK(most.load() <= static_cast<int>(troupe::internal::blocking_pool::default_threads));
}

TEST_CASE("a full blocking queue refuses a job with an error naming its limit", "[core]") {
  troupe::system_options o;
  o.shards = 1;  // one shard: the handlers run, and submit, in the order sent
  troupe::system sys(o);
  troupe::internal::system_access::impl(sys).blocking().configure(1, 2);
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  address first = sys.spawn<holder>(&started, released);
  address second = sys.spawn<holder>(nullptr, released);
  address third = sys.spawn<holder>(nullptr, released);
  address fourth = sys.spawn<holder>(nullptr, released);
  sys.tell(first, hold{});
  // The pool's one thread runs the first job: the queue is empty.
  REQUIRE(started.get_future().wait_for(5s) == std::future_status::ready);
  sys.tell(second, hold{});
  sys.tell(third, hold{});
  auto refused = sys.ask<std::string>(fourth, hold{}, 5s);
  release.set_value();
  REQUIRE(refused.ok());
  CHECK(refused.value() ==
        "troupe::run_blocking: 2 blocking jobs wait already (the queue's limit); try later");
  // A query waits in each mailbox until that actor's job has ended.
  CHECK(sys.ask<int>(first, query{}, 5s).value() == 1);
  CHECK(sys.ask<int>(second, query{}, 5s).value() == 1);
  CHECK(sys.ask<int>(third, query{}, 5s).value() == 1);
  CHECK(sys.ask<int>(fourth, query{}, 5s).value() == 0);
}

TEST_CASE("a shard runs its other actors while one awaits blocking work", "[core]") {
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  std::promise<void> started, release;
  address h = sys.spawn<holder>(&started, release.get_future().share());
  address p = sys.spawn<pinger>();
  std::string outcome;
  std::thread asker([&] {
    auto r = sys.ask<std::string>(h, hold{}, 10s);
    outcome = r ? r.value() : r.err().describe();
  });
  REQUIRE(started.get_future().wait_for(5s) == std::future_status::ready);
  for (int i = 0; i < 200; ++i) REQUIRE(sys.ask<int>(p, ping{}, 5s).value() == 7);
  release.set_value();
  asker.join();
  CHECK(outcome == "ran");
}

TEST_CASE("run_blocking outside a shard's thread is a logic error", "[core]") {
  auto job = [] { return 1; };
  CHECK_THROWS_AS((void)troupe::run_blocking(job), std::logic_error);
  CHECK_THROWS_WITH((void)troupe::run_blocking(job),
                    Catch::Contains("for a coroutine handler on a shard's thread"));
}

TEST_CASE("in inline mode run_blocking runs its job on the engine's thread", "[core]") {
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  address t = sys.spawn<thrower>();
  CHECK(sys.ask<std::string>(t, get{}, 5s).value() == "caught: disk on fire");
}
