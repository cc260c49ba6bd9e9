#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

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
